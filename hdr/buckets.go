package hdr

// The query-side fast decode of stored histograms (store/rollup): a stored
// rollup or compaction is read straight into its populated buckets, with a
// pooled inflater and pooled buffers, and merged into a dense accumulator.
// It takes only what meshlens itself writes — the meshlens geometry, counts
// that sum within int64 — and leaves everything else (other geometries,
// corrupt input) to DecodePacked, which then decides: the caller falls back
// to it whenever DecodeBuckets reports false, so the result and the errors
// are exactly DecodePacked's.

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/meshlens/meshlens/model"
)

// Buckets is a histogram with the meshlens geometry as its populated buckets,
// in ascending order: each bucket's index in the dense counts array and its
// count. It is what a merge needs, without the dense counts array or the
// sparse histogram's insert path, in 6 bytes a bucket while the counts fit
// in 32 bits (8 more for each once one does not). The zero value is empty;
// Reset keeps the storage.
type Buckets struct {
	index  []uint16 // the meshlens geometry has fewer than 65536 buckets
	narrow []uint32 // the counts, while each fits
	wide   []int64  // the counts, once one does not (narrow is then unused)
	total  int64
}

// Len is the number of populated buckets.
func (b *Buckets) Len() int { return len(b.index) }

// At returns the dense index and the count of the i-th populated bucket.
func (b *Buckets) At(i int) (index int, count int64) {
	if b.wide != nil {
		return int(b.index[i]), b.wide[i]
	}
	return int(b.index[i]), int64(b.narrow[i])
}

// TotalCount is the number of values in b.
func (b *Buckets) TotalCount() int64 { return b.total }

// Reset empties b, keeping its storage.
func (b *Buckets) Reset() { b.index, b.narrow, b.wide, b.total = b.index[:0], b.narrow[:0], nil, 0 }

func (b *Buckets) append(idx int, c int64) {
	b.index = append(b.index, uint16(idx))
	switch {
	case b.wide != nil:
		b.wide = append(b.wide, c)
	case c <= math.MaxUint32:
		b.narrow = append(b.narrow, uint32(c))
	default:
		b.wide = make([]int64, len(b.narrow), cap(b.index))
		for i, n := range b.narrow {
			b.wide[i] = int64(n)
		}
		b.wide = append(b.wide, c)
	}
}

// MergeInto adds b's counts to h, a histogram with the meshlens geometry
// (New). As Histogram.Merge and Packed.MergeInto, a bucket whose count would
// push h's total past math.MaxInt64 is dropped; dropped is its total.
func (b *Buckets) MergeInto(h *Histogram) (dropped int64) {
	for i := range b.index {
		idx, c := b.At(i)
		if h.RecordValues(BucketValue(idx), c) != nil {
			dropped += c
		}
	}
	return dropped
}

// Clone returns a copy of b sized to fit, for keeping beyond the next Reset.
func (b *Buckets) Clone() *Buckets {
	c := &Buckets{index: slices.Clone(b.index), total: b.total}
	if b.wide != nil {
		c.wide = slices.Clone(b.wide)
	} else {
		c.narrow = slices.Clone(b.narrow)
	}
	return c
}

// SizeBytes is about the memory b holds.
func (b *Buckets) SizeBytes() int { return 2*cap(b.index) + 4*cap(b.narrow) + 8*cap(b.wide) + 80 }

// geometry of the meshlens histograms, as the dense histogram has it.
var (
	// meshlensCountsLen is the length of the dense counts array of New().
	meshlensCountsLen int
	// meshlensLimitIndex is the bucket of model.HighestTrackableMicros: a histogram
	// with a bucket above it holds values meshlens never records.
	meshlensLimitIndex int
)

// Index arithmetic of the meshlens geometry (lowest 1, 3 significant
// figures): sub-buckets of 2048, half 1024, unit magnitude 0.
const (
	bucketsHalfMagnitude = 10
	bucketsHalfCount     = 1 << bucketsHalfMagnitude
)

func init() {
	h := New()
	counts := h.Export().Counts
	meshlensCountsLen = len(counts)
	Record(h, model.HighestTrackableMicros)
	for i, c := range h.Export().Counts {
		if c != 0 {
			meshlensLimitIndex = i
		}
	}
}

// BucketValue is the lowest value of the bucket at a flat counts index
// of the meshlens geometry (the library's valueFromFlatIndex).
func BucketValue(idx int) int64 {
	bucket := (idx >> bucketsHalfMagnitude) - 1
	sub := int64(idx&(bucketsHalfCount-1)) + bucketsHalfCount
	if bucket < 0 {
		sub -= bucketsHalfCount
		bucket = 0
	}
	return sub << uint(bucket)
}

// bucketsDecoder is the pooled state of one decode: the base64-decoded bytes,
// an inflater and the inflated payload.
type bucketsDecoder struct {
	raw     []byte
	src     bytes.Reader
	z       io.ReadCloser
	payload []byte
}

var bucketsDecoders = sync.Pool{New: func() any { return new(bucketsDecoder) }}

// DecodeBuckets decodes the base64 V2 compressed encoding s into b (its
// previous content is replaced, its storage reused). It reports false, with
// b in an undefined state, for anything it does not take — another geometry,
// counts summing past int64, a value above the meshlens limit, or corrupt
// input: decode those with DecodePacked, which gives the verdict. When it
// reports true, b holds exactly the buckets DecodePacked would.
func DecodeBuckets(s string, b *Buckets) bool {
	b.Reset()
	if len(s) > MaxEncodedBytes || len(s) == 0 {
		return false
	}
	d := bucketsDecoders.Get().(*bucketsDecoder)
	defer bucketsDecoders.Put(d)
	// The string is only read.
	src := unsafe.Slice(unsafe.StringData(s), len(s))
	if n := base64.StdEncoding.DecodedLen(len(s)); cap(d.raw) < n {
		d.raw = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(d.raw[:cap(d.raw)], src)
	if err != nil || n < 8 {
		return false
	}
	raw := d.raw[:n]
	if int32(binary.BigEndian.Uint32(raw[0:4]))&^0xf0 != v2CompressedCookieBase {
		return false
	}
	clen := int32(binary.BigEndian.Uint32(raw[4:8]))
	if clen < 0 || int(clen) > len(raw)-8 {
		return false
	}
	d.src.Reset(raw[8 : 8+clen])
	if d.z == nil {
		if d.z, err = zlib.NewReader(&d.src); err != nil {
			d.z = nil
			return false
		}
	} else if err := d.z.(zlib.Resetter).Reset(&d.src, nil); err != nil {
		return false
	}
	var h [headerSize]byte
	if _, err := io.ReadFull(d.z, h[:]); err != nil {
		return false
	}
	payloadLen := int32(binary.BigEndian.Uint32(h[4:8]))
	switch {
	case int32(binary.BigEndian.Uint32(h[0:4]))&^0xf0 != v2CookieBase,
		int32(binary.BigEndian.Uint32(h[12:16])) != model.SignificantFigures,
		int64(binary.BigEndian.Uint64(h[16:24])) > model.LowestTrackableMicros, // below 1 reads as 1
		int64(binary.BigEndian.Uint64(h[24:32])) != model.HighestTrackableMicros,
		payloadLen < 0 || int64(payloadLen) > int64(meshlensCountsLen)*9:
		return false
	}
	if cap(d.payload) < int(payloadLen) {
		d.payload = make([]byte, int(payloadLen))
	}
	p := d.payload[:payloadLen]
	if _, err := io.ReadFull(d.z, p); err != nil {
		return false
	}
	// Then the end of the stream, which also checks the zlib checksum: a
	// truncated stream ends with io.ErrUnexpectedEOF, trailing data with
	// more bytes.
	var one [1]byte
	for {
		n, err := d.z.Read(one[:])
		if n > 0 || (err != nil && err != io.EOF) {
			return false
		}
		if err == io.EOF {
			break
		}
	}
	return fillBuckets(p, b)
}

// fillBuckets reads a V2 payload (zero runs and counts, ZigZag LEB128) as
// the library's fillSparseFromPayload does, refusing what it would refuse.
func fillBuckets(payload []byte, b *Buckets) bool {
	var idx int
	var total int64
	for pos := 0; pos < len(payload); {
		count, n, ok := bucketsZigZag(payload[pos:])
		if !ok {
			return false
		}
		pos += n
		if count < 0 {
			zeros := -count
			if zeros <= 0 || zeros > int64(meshlensCountsLen-idx) {
				return false
			}
			idx += int(zeros)
			continue
		}
		if idx >= meshlensCountsLen {
			return false
		}
		if count > 0 {
			if idx > meshlensLimitIndex || count > math.MaxInt64-total {
				return false
			}
			b.append(idx, count)
			total += count
		}
		idx++
	}
	b.total = total
	return true
}

// bucketsZigZag reads one LEB128 ZigZag value as the library does: at most 9
// bytes, the ninth contributing all 8 bits.
func bucketsZigZag(buf []byte) (int64, int, bool) {
	var v uint64
	for i := 0; i < 9; i++ {
		if i >= len(buf) {
			return 0, 0, false
		}
		c := buf[i]
		if i == 8 {
			v |= uint64(c) << 56
			return int64((v >> 1) ^ -(v & 1)), 9, true
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return int64((v >> 1) ^ -(v & 1)), i + 1, true
		}
	}
	panic("unreachable")
}

// Sum is a dense accumulator of histograms with the meshlens geometry, for
// merging many of them by bucket index and encoding the result: it tracks
// the range of buckets it touched, so that encoding and Reset cost that
// range only. The zero value is not ready: use NewSum.
type Sum struct {
	counts []int64
	lo, hi int // touched buckets; lo > hi when empty
	total  int64
}

// NewSum returns an empty Sum.
func NewSum() *Sum {
	return &Sum{counts: make([]int64, meshlensCountsLen), lo: meshlensCountsLen, hi: -1}
}

// Reset empties s.
func (s *Sum) Reset() {
	if s.lo <= s.hi {
		clear(s.counts[s.lo : s.hi+1])
	}
	s.lo, s.hi, s.total = meshlensCountsLen, -1, 0
}

// TotalCount is the number of values in s.
func (s *Sum) TotalCount() int64 { return s.total }

func (s *Sum) add(idx int, c int64) (dropped int64) {
	if c <= 0 {
		return 0
	}
	if c > math.MaxInt64-s.total {
		return c // as Histogram.RecordValues refuses it
	}
	s.counts[idx] += c
	s.total += c
	s.lo, s.hi = min(s.lo, idx), max(s.hi, idx)
	return 0
}

// AddBuckets adds b. As Histogram.Merge, a bucket whose count would push the
// total past math.MaxInt64 is dropped; dropped is its total.
func (s *Sum) AddBuckets(b *Buckets) (dropped int64) {
	n := len(b.index)
	if n == 0 {
		return 0
	}
	if b.total > math.MaxInt64-s.total {
		// Near the limit: bucket by bucket, as the dense histogram does.
		for i := range n {
			idx, c := b.At(i)
			dropped += s.add(idx, c)
		}
		return dropped
	}
	// b's counts are positive and sum to b.total, so none can overflow.
	counts := s.counts[:meshlensCountsLen]
	if b.wide != nil {
		for i, idx := range b.index {
			counts[idx] += b.wide[i]
		}
	} else {
		narrow := b.narrow[:n]
		for i, idx := range b.index {
			counts[idx] += int64(narrow[i])
		}
	}
	s.total += b.total
	s.lo, s.hi = min(s.lo, int(b.index[0])), max(s.hi, int(b.index[n-1]))
	return 0
}

// AddHistogram adds h (any geometry: a bucket is added at the meshlens
// bucket of its lowest value, as Histogram.Merge records it), for what the
// fast decode does not take.
func (s *Sum) AddHistogram(h *Histogram) (dropped int64) {
	m := New()
	dropped = m.Merge(h)
	for idx, c := range m.Export().Counts {
		if c != 0 {
			dropped += s.add(idx, c)
		}
	}
	return dropped
}

// AddSum adds o.
func (s *Sum) AddSum(o *Sum) (dropped int64) {
	for idx := o.lo; idx <= o.hi; idx++ {
		if c := o.counts[idx]; c != 0 {
			dropped += s.add(idx, c)
		}
	}
	return dropped
}

// Buckets sets b to the populated buckets of s, sized to fit.
func (s *Sum) Buckets(b *Buckets) {
	b.Reset()
	n := 0
	for idx := s.lo; idx <= s.hi; idx++ {
		if s.counts[idx] != 0 {
			n++
		}
	}
	if cap(b.index) < n {
		b.index, b.narrow = make([]uint16, 0, n), make([]uint32, 0, n)
	}
	for idx := s.lo; idx <= s.hi; idx++ {
		if c := s.counts[idx]; c != 0 {
			b.append(idx, c)
		}
	}
	b.total = s.total
}

// Histogram returns s as a dense histogram (New's geometry).
func (s *Sum) Histogram() *Histogram {
	h := New()
	for idx := s.lo; idx <= s.hi; idx++ {
		if c := s.counts[idx]; c != 0 {
			_ = h.RecordValues(BucketValue(idx), c) // within range and total
		}
	}
	return h
}

// sumEncoder is the pooled state of one Encode.
type sumEncoder struct {
	payload []byte
	z       *zlib.Writer
	zbuf    bytes.Buffer
	out     []byte
}

var sumEncoders = sync.Pool{New: func() any { return new(sumEncoder) }}

// Encode returns the V2 compressed encoding of s as base64 text: the header
// and payload Encode writes for a dense histogram with the same counts,
// deflated at zlib.BestSpeed rather than BestCompression (4 to 5 times
// faster for a compaction, about 2% larger). An empty s encodes as such a
// histogram does too.
func (s *Sum) Encode() (string, error) {
	e := sumEncoders.Get().(*sumEncoder)
	defer sumEncoders.Put(e)
	// The payload, as the library's fillBufferFromCountsArray writes it:
	// counts up to the last populated bucket, a run of two or more zeros as
	// its negated length.
	p := e.payload[:0]
	limit := s.hi + 1
	if limit <= 0 {
		limit = 1 // the empty histogram's single zero
	}
	for idx := 0; idx < limit; {
		c := s.counts[idx]
		idx++
		if c == 0 {
			zeros := int64(1)
			for idx < limit && s.counts[idx] == 0 {
				zeros++
				idx++
			}
			if zeros > 1 {
				c = -zeros
			}
		}
		p = sumPutZigZag(p, c)
	}
	e.payload = p
	var h [headerSize]byte
	binary.BigEndian.PutUint32(h[0:], uint32(v2CookieBase|0x10))
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	binary.BigEndian.PutUint32(h[12:], uint32(model.SignificantFigures))
	binary.BigEndian.PutUint64(h[16:], uint64(model.LowestTrackableMicros))
	binary.BigEndian.PutUint64(h[24:], uint64(model.HighestTrackableMicros))
	binary.BigEndian.PutUint64(h[32:], math.Float64bits(1))
	e.zbuf.Reset()
	if e.z == nil {
		z, err := zlib.NewWriterLevel(&e.zbuf, zlib.BestSpeed)
		if err != nil {
			return "", err
		}
		e.z = z
	} else {
		e.z.Reset(&e.zbuf)
	}
	if _, err := e.z.Write(h[:]); err != nil {
		return "", err
	}
	if _, err := e.z.Write(p); err != nil {
		return "", err
	}
	if err := e.z.Close(); err != nil {
		return "", err
	}
	comp := e.zbuf.Bytes()
	out := append(e.out[:0], 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(out[0:], uint32(v2CompressedCookieBase|0x10))
	binary.BigEndian.PutUint32(out[4:], uint32(len(comp)))
	out = append(out, comp...)
	e.out = out
	return base64.StdEncoding.EncodeToString(out), nil
}

// sumPutZigZag appends v as the library's ZigZag LEB128 (at most 9 bytes, the
// ninth holding 8 bits).
func sumPutZigZag(b []byte, v int64) []byte {
	u := uint64((v << 1) ^ (v >> 63))
	for i := 0; i < 8; i++ {
		if u>>7 == 0 {
			return append(b, byte(u))
		}
		b = append(b, byte(u&0x7f|0x80))
		u >>= 7
	}
	return append(b, byte(u))
}
