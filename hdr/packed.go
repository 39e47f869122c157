package hdr

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"
	"unsafe"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshlens/meshlens/model"
)

// Packed is HdrHistogram's sparse variant: the same buckets without a dense
// counts array, for merging many histograms in memory.
type Packed = hdrhistogram.PackedHistogram

// NewPacked returns an empty sparse histogram with the meshlens geometry.
func NewPacked() *Packed {
	return hdrhistogram.NewPacked(model.LowestTrackableMicros, model.HighestTrackableMicros, model.SignificantFigures)
}

// DecodePacked is Decode into a sparse histogram: the same checks of size,
// base64 and header before anything is allocated for the counts, without
// the dense counts array. It inflates the encoding once, with a pooled zlib
// reader, and reads the payload straight into the sparse histogram.
//
// Unlike hdrhistogram-go's own DecodePacked, which saturates the total, a
// payload whose bucket counts sum past the int64 range is rejected, as Decode
// rejects it; and the header's integer-to-double conversion ratio, which
// meshlens never uses, is not kept.
func DecodePacked(s string) (*Packed, error) {
	p, _, err := decodePacked(s)
	return p, err
}

// decodePacked is DecodePacked that also returns the lowest value of the
// last populated bucket (0 when empty): the bucket Max reports the top of.
func decodePacked(s string) (p *Packed, lastLowest int64, err error) {
	if len(s) > MaxEncodedBytes {
		return nil, 0, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrCorrupt, len(s), MaxEncodedBytes)
	}
	d := decoders.Get().(*decoder)
	defer d.release()
	// Read-only view of s: base64 decoding does not write to its source.
	src := unsafe.Slice(unsafe.StringData(s), len(s))
	d.raw = grow(d.raw, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(d.raw, src)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: base64: %v", ErrCorrupt, err)
	}
	p, lastLowest, err = d.decode(d.raw[:n])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return p, lastLowest, nil
}

// decoder is the reusable state of one decode.
type decoder struct {
	src     bytes.Reader
	z       io.ReadCloser // zlib reader, reset onto each input
	raw     []byte        // the base64-decoded encoding
	payload []byte        // the inflated counts
	// scratch is filled with each payload before it is copied out; it has
	// the geometry scratchGeometry.
	scratch         *Packed
	scratchGeometry geometry
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// maxPooledBuffer bounds the buffers a pooled decoder keeps: an encoding
// meshlens writes is a few hundred bytes, a hostile one up to a megabyte.
const maxPooledBuffer = 64 << 10

func (d *decoder) release() {
	if cap(d.raw) > maxPooledBuffer {
		d.raw = nil
	}
	if cap(d.payload) > maxPooledBuffer {
		d.payload = nil
	}
	if d.scratch != nil && d.scratch.GetMemorySize() > maxPooledBuffer {
		d.scratch = nil
	}
	d.src.Reset(nil)
	decoders.Put(d)
}

// grow returns b resliced to n bytes, reallocated if its capacity is short.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// geometry is what a histogram's header says about its buckets, with the
// figures the bucket index arithmetic needs (HdrHistogram's, as
// hdrhistogram-go computes them for a decoded header).
type geometry struct {
	digits          int32
	lowest, highest int64
	unitMagnitude   uint  // floor(log2(lowest))
	halfMagnitude   uint  // log2 of the sub-buckets in half a bucket
	countsLen       int64 // buckets in the flat counts index
}

// halfMagnitudes[d] is log2 of half the sub-bucket count for d significant
// digits: the smallest power of two holding 2·10^d values, halved.
var halfMagnitudes = [MaxSignificantFigures + 1]uint{0, 4, 7, 10}

// parseHeader checks the 40-byte inner header of a V2 histogram against the
// limits and returns its payload length and geometry.
func parseHeader(h []byte) (payloadLen int32, g geometry, err error) {
	if c := int32(binary.BigEndian.Uint32(h[0:4])) &^ 0xf0; c != v2CookieBase {
		return 0, g, fmt.Errorf("inner cookie %#x is not V2", uint32(c))
	}
	payloadLen = int32(binary.BigEndian.Uint32(h[4:8]))
	g.digits = int32(binary.BigEndian.Uint32(h[12:16]))
	g.lowest = int64(binary.BigEndian.Uint64(h[16:24]))
	g.highest = int64(binary.BigEndian.Uint64(h[24:32]))
	switch {
	case g.digits < 1 || g.digits > MaxSignificantFigures:
		return 0, g, fmt.Errorf("significant figures %d outside 1..%d", g.digits, MaxSignificantFigures)
	case g.lowest > maxLowestDiscernible:
		return 0, g, fmt.Errorf("lowest discernible value %d above %d", g.lowest, maxLowestDiscernible)
	case g.highest < 2 || g.highest > MaxHighestTrackable:
		return 0, g, fmt.Errorf("highest trackable value %d outside 2..%d", g.highest, int64(MaxHighestTrackable))
	}
	if g.lowest < 1 {
		// As hdrhistogram-go reads it: old Go writers put 0 there for the
		// geometry of 1.
		g.lowest = 1
	}
	g.unitMagnitude = uint(bits.Len64(uint64(g.lowest)) - 1)
	g.halfMagnitude = halfMagnitudes[g.digits]
	// Buckets double until the first value they cannot hold is above the
	// highest trackable value (the limits keep every shift in range).
	subBuckets := int64(1) << (g.halfMagnitude + 1)
	buckets := int64(1)
	for untrackable := subBuckets << g.unitMagnitude; untrackable <= g.highest; untrackable <<= 1 {
		buckets++
	}
	g.countsLen = (buckets + 1) * (subBuckets / 2)
	return payloadLen, g, nil
}

// valueAt is the lowest value of the bucket at flat counts index i.
func (g *geometry) valueAt(i int64) int64 {
	half := int64(1) << g.halfMagnitude
	bucket := i>>g.halfMagnitude - 1
	sub := i&(half-1) + half
	if bucket < 0 {
		sub -= half
		bucket = 0
	}
	return sub << (uint(bucket) + g.unitMagnitude)
}

// errTrailing: the zlib stream holds more than the payload length says.
var errTrailing = errors.New("data after the payload")

// decode inflates raw, the envelope of a V2 compressed histogram, and reads
// it into a new sparse histogram.
func (d *decoder) decode(raw []byte) (*Packed, int64, error) {
	compressed, err := envelope(raw)
	if err != nil {
		return nil, 0, err
	}
	d.src.Reset(compressed)
	if d.z == nil {
		if d.z, err = newZlib(&d.src); err != nil {
			return nil, 0, fmt.Errorf("zlib: %v", err)
		}
	} else if err := resetZlib(d.z, &d.src); err != nil {
		return nil, 0, fmt.Errorf("zlib: %v", err)
	}
	var h [headerSize]byte
	if _, err := io.ReadFull(d.z, h[:]); err != nil {
		return nil, 0, fmt.Errorf("header truncated: %v", err)
	}
	payloadLen, g, err := parseHeader(h[:])
	if err != nil {
		return nil, 0, err
	}
	// A valid payload holds at most one varint (9 bytes) per bucket.
	if payloadLen < 0 || int64(payloadLen) > g.countsLen*9 {
		return nil, 0, fmt.Errorf("payload length %d outside 0..%d", payloadLen, g.countsLen*9)
	}
	d.payload = grow(d.payload, int(payloadLen))
	if _, err := io.ReadFull(d.z, d.payload); err != nil {
		return nil, 0, fmt.Errorf("payload truncated: %v", err)
	}
	// The stream must end here; reading its end checks the checksum.
	var one [1]byte
	if n, err := io.ReadFull(d.z, one[:]); n > 0 {
		return nil, 0, errTrailing
	} else if err != io.EOF {
		return nil, 0, fmt.Errorf("zlib: %v", err)
	}
	return d.fill(&g)
}

// fill reads the payload (zig-zag LEB128 counts, negative for runs of empty
// buckets) into a new sparse histogram of geometry g. The counts go into the
// decoder's scratch histogram first, whose arrays are kept from decode to
// decode, and the result is a copy of it made to size: recording into a new
// histogram would grow its arrays a dozen times.
func (d *decoder) fill(g *geometry) (*Packed, int64, error) {
	if d.scratch == nil || d.scratchGeometry != *g {
		d.scratch, d.scratchGeometry = hdrhistogram.NewPacked(g.lowest, g.highest, int(g.digits)), *g
	} else {
		d.scratch.Reset()
	}
	p, payload := d.scratch, d.payload
	var i, total, lastLowest int64
	for pos := 0; pos < len(payload); {
		count, n, err := zigZag(payload[pos:])
		if err != nil {
			return nil, 0, err
		}
		pos += n
		if count < 0 {
			zeros := -count // <= 0 only for MinInt64
			if zeros <= 0 || zeros > g.countsLen-i {
				return nil, 0, fmt.Errorf("run of %d empty buckets at index %d passes the %d buckets", zeros, i, g.countsLen)
			}
			i += zeros
			continue
		}
		if i >= g.countsLen {
			return nil, 0, fmt.Errorf("count at index %d past the %d buckets", i, g.countsLen)
		}
		if count > 0 {
			if count > math.MaxInt64-total {
				return nil, 0, fmt.Errorf("bucket counts sum past %d (int64) at index %d", int64(math.MaxInt64), i)
			}
			total += count
			lastLowest = g.valueAt(i)
			// In range and no overflow, as checked: RecordValues cannot fail.
			if err := p.RecordValues(lastLowest, count); err != nil {
				return nil, 0, err
			}
		}
		i++
	}
	return p.Clone(), lastLowest, nil
}

// zigZag reads one zig-zag LEB128 varint of at most 9 bytes (the ninth
// holding 8 bits), as HdrHistogram writes them.
func zigZag(b []byte) (int64, int, error) {
	var v uint64
	for k := 0; k < 9; k++ {
		if k >= len(b) {
			return 0, 0, fmt.Errorf("varint truncated after %d bytes", len(b))
		}
		c := b[k]
		if k == 8 {
			v |= uint64(c) << 56
			return int64(v>>1) ^ -int64(v&1), 9, nil
		}
		v |= uint64(c&0x7f) << (7 * k)
		if c&0x80 == 0 {
			return int64(v>>1) ^ -int64(v&1), k + 1, nil
		}
	}
	panic("unreachable")
}

// EncodePacked returns the V2 compressed encoding of p as base64 text, byte
// for byte what Encode gives for the dense histogram with the same counts.
func EncodePacked(p *Packed) (string, error) {
	b, err := p.Encode()
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// RecordPacked is Record for a sparse histogram: one latency in
// microseconds, clamped into the trackable range; it reports whether the
// value was clamped.
func RecordPacked(p *Packed, micros int64) (clamped bool) {
	if micros < model.LowestTrackableMicros {
		micros = model.LowestTrackableMicros
	}
	if micros > model.HighestTrackableMicros {
		micros = model.HighestTrackableMicros
		clamped = true
	}
	// The value is within the histogram's range, so RecordValue cannot fail.
	_ = p.RecordValue(micros)
	return clamped
}
