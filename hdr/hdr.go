// Package hdr wraps hdrhistogram-go with the geometry meshlens uses and a
// decoder that checks a histogram's header before it allocates anything, so a
// hostile payload cannot make a receiver allocate gigabytes.
package hdr

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshlens/meshlens/model"
)

// Histogram is the HdrHistogram type meshlens records into.
type Histogram = hdrhistogram.Histogram

// New returns an empty histogram with the meshlens geometry: 1 µs to one
// hour, 3 significant figures.
func New() *Histogram {
	return hdrhistogram.New(model.LowestTrackableMicros, model.HighestTrackableMicros, model.SignificantFigures)
}

// Encode returns the V2 compressed encoding of h as base64 text.
func Encode(h *Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// Limits a decoded histogram's geometry must stay within. They admit every
// histogram meshlens writes and the usual geometries of other HdrHistogram
// implementations (microsecond or nanosecond values up to a day), while
// keeping the counts array a decode allocates under a few megabytes.
const (
	MaxEncodedBytes        = 1 << 20
	MaxHighestTrackable    = 86_400_000_000_000 // one day in nanoseconds
	MaxSignificantFigures  = 3
	maxLowestDiscernible   = 1_000_000
	v2CompressedCookieBase = 0x1c849304
	v2CookieBase           = 0x1c849303
	headerSize             = 40
)

// ErrCorrupt is wrapped by every decode error caused by the input.
var ErrCorrupt = errors.New("corrupt histogram")

// Decode parses the base64 V2 compressed encoding of a histogram. The header
// is checked against the limits above before the counts are read.
func Decode(s string) (*Histogram, error) {
	if err := checkEncoded(s); err != nil {
		return nil, err
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return h, nil
}

// checkEncoded checks the size, the base64 and the header of an encoded
// histogram before anything is allocated for its counts.
func checkEncoded(s string) error {
	if len(s) > MaxEncodedBytes {
		return fmt.Errorf("%w: %d bytes encoded, limit %d", ErrCorrupt, len(s), MaxEncodedBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: base64: %v", ErrCorrupt, err)
	}
	if err := checkHeader(raw); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

func checkHeader(raw []byte) error {
	compressed, err := envelope(raw)
	if err != nil {
		return err
	}
	z, err := headerReader(compressed)
	if err != nil {
		return fmt.Errorf("zlib: %v", err)
	}
	defer headerReaders.Put(z)
	var h [headerSize]byte
	if _, err := io.ReadFull(z, h[:]); err != nil {
		return fmt.Errorf("header truncated: %v", err)
	}
	_, _, err = parseHeader(h[:])
	return err
}

// envelope checks the 8-byte envelope of a V2 compressed histogram (cookie,
// compressed length) and returns the zlib stream it holds.
func envelope(raw []byte) ([]byte, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("%d bytes, shorter than the 8-byte envelope", len(raw))
	}
	cookie := int32(binary.BigEndian.Uint32(raw[0:4])) &^ 0xf0
	if cookie != v2CompressedCookieBase {
		return nil, fmt.Errorf("cookie %#x is not a V2 compressed histogram", uint32(cookie))
	}
	n := int32(binary.BigEndian.Uint32(raw[4:8]))
	if n < 0 || int(n) > len(raw)-8 {
		return nil, fmt.Errorf("compressed length %d does not fit in %d bytes", n, len(raw)-8)
	}
	return raw[8 : 8+n], nil
}

// headerReaders keeps zlib readers for checkHeader: a new one allocates
// about 40 KB of inflate state, while the header is only its first 40 bytes.
var headerReaders sync.Pool

// headerReader returns a pooled zlib reader reset onto compressed; the
// caller puts it back in headerReaders when done.
func headerReader(compressed []byte) (io.ReadCloser, error) {
	if z, ok := headerReaders.Get().(io.ReadCloser); ok {
		if err := resetZlib(z, bytes.NewReader(compressed)); err != nil {
			headerReaders.Put(z)
			return nil, err
		}
		return z, nil
	}
	return newZlib(bytes.NewReader(compressed))
}

// newZlib returns a zlib reader on r, which must start with a zlib header.
func newZlib(r io.Reader) (io.ReadCloser, error) { return zlib.NewReader(r) }

// resetZlib points a zlib reader from newZlib at r, keeping its inflate
// state's memory.
func resetZlib(z io.ReadCloser, r io.Reader) error { return z.(zlib.Resetter).Reset(r, nil) }

// Record adds one latency in microseconds to h, clamping it into the
// trackable range. It reports whether the value was clamped.
func Record(h *Histogram, micros int64) (clamped bool) {
	if micros < model.LowestTrackableMicros {
		micros = model.LowestTrackableMicros
	}
	if micros > model.HighestTrackableMicros {
		micros = model.HighestTrackableMicros
		clamped = true
	}
	// The value is within the histogram's range, so RecordValue cannot fail.
	_ = h.RecordValue(micros)
	return clamped
}
