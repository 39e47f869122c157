package storeexporter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"

	"github.com/meshlens/meshlens/collector/internal/spans"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// spanRequest is the traces exporter's request: the spans already converted
// to the store's rows (spanrows), with the services and edges they reveal.
// The conversion runs once, when the spans arrive, before the sending
// queue: the persistent queue writes the rows as they are and reads them
// back without decoding, the batcher merges requests by appending bytes,
// and the PostgreSQL store COPYs the rows as they are. Credentials are
// redacted before anything reaches the disk.
type spanRequest struct {
	rows []byte
	// buf, when set, is the pooled buffer rows live in, owned by this
	// request alone: MergeSplit takes one for a batch, the push gives it
	// back once written.
	buf *[]byte
	// frame, for a request fresh from newSpanRequest, is the queue
	// encoding's magic followed by rows, in one buffer (see Marshal).
	frame    []byte
	n        int // rows
	invalid  int // spans left out for an empty ID, counted when written
	sum      spanrows.Summary
	services []store.Service
	edges    []store.Edge
}

var _ xexporterhelper.Request = (*spanRequest)(nil)

func (r *spanRequest) ItemsCount() int { return r.n }

func (r *spanRequest) BytesSize() int { return len(r.rows) }

// MergeSplit appends r2 to r, then cuts r into requests of at most maxSize
// (rows or bytes), the last one holding the rest. Services and edges stay
// with the last request: seeing them early is harmless.
func (r *spanRequest) MergeSplit(_ context.Context, maxSize int, szt exporterhelper.RequestSizerType, r2 xexporterhelper.Request) ([]xexporterhelper.Request, error) {
	if r2 != nil {
		o, ok := r2.(*spanRequest)
		if !ok {
			return nil, fmt.Errorf("meshlens_store: cannot merge a %T into a span request", r2)
		}
		need := len(r.rows) + len(o.rows)
		switch {
		case szt == exporterhelper.RequestSizerTypeBytes && maxSize > need:
			need = maxSize
		case szt == exporterhelper.RequestSizerTypeItems && maxSize > r.n+o.n && r.n+o.n > 0:
			need = min(need/(r.n+o.n)*maxSize, maxPooledBatch) // a full batch
		}
		r.own(need)
		r.add(o)
		o.release()
	}
	size := func() int {
		if szt == exporterhelper.RequestSizerTypeBytes {
			return len(r.rows)
		}
		return r.n
	}
	if maxSize <= 0 || size() <= maxSize {
		return []xexporterhelper.Request{r}, nil
	}
	bySize := szt == exporterhelper.RequestSizerTypeBytes
	var out []xexporterhelper.Request
	for size() > maxSize {
		// Take whole rows from the front while they fit; a single row
		// larger than maxSize bytes goes alone rather than be dropped.
		cut, taken := 0, 0
		for rest := r.rows; len(rest) > 0; {
			_, next, err := spanrows.Next(rest)
			if err != nil {
				return nil, fmt.Errorf("meshlens_store: split a span request: %w", err)
			}
			end := len(r.rows) - len(next)
			if bySize && end > maxSize && taken > 0 || !bySize && taken == maxSize {
				break
			}
			cut, taken, rest = end, taken+1, next
		}
		// Each part takes the whole summary (see spanrows.Summary).
		sum := spanrows.Summary{Days: slices.Clip(r.sum.Days), Ops: slices.Clip(r.sum.Ops)}
		out = append(out, &spanRequest{rows: r.rows[:cut:cut], n: taken, sum: sum})
		r.rows, r.n = r.rows[cut:], r.n-taken
		r.buf = nil // shared now: left to the garbage collector
	}
	return append(out, r), nil
}

// add appends o to r, which must own its buffer (own); o is left as it is.
func (r *spanRequest) add(o *spanRequest) {
	r.rows = append(r.rows, o.rows...)
	*r.buf = r.rows
	r.n += o.n
	r.invalid += o.invalid
	r.sum.Merge(o.sum)
	r.services = mergeServices(r.services, o.services)
	r.edges = mergeEdges(r.edges, o.edges)
}

// batchBufs are the buffers of merged requests, reused from batch to
// batch instead of grown anew for each. A few are enough (one per batch
// being filled or written); a sync.Pool would lose them at every garbage
// collection, several a second here.
var batchBufs = make(chan *[]byte, 8)

// maxPooledBatch keeps a buffer grown for one huge batch out of the pool.
const maxPooledBatch = 32 << 20

// own moves r's rows into a pooled buffer of its own, of at least size
// bytes, unless they are in one already.
func (r *spanRequest) own(size int) {
	if r.buf != nil {
		return
	}
	var b *[]byte
	select {
	case b = <-batchBufs:
	default:
		b = new([]byte)
	}
	*b = append(slices.Grow((*b)[:0], size), r.rows...)
	r.buf, r.rows, r.frame = b, *b, nil
}

// release gives r's pooled buffer back; r is empty after.
func (r *spanRequest) release() {
	if r.buf != nil && cap(*r.buf) <= maxPooledBatch {
		*r.buf = (*r.buf)[:0]
		select {
		case batchBufs <- r.buf:
		default:
		}
	}
	*r = spanRequest{}
}

func mergeServices(a, b []store.Service) []store.Service {
next:
	for _, s := range b {
		for i := range a {
			if a[i].Name == s.Name {
				a[i].Widen(s)
				continue next
			}
		}
		a = append(a, s)
	}
	return a
}

func mergeEdges(a, b []store.Edge) []store.Edge {
next:
	for _, e := range b {
		for i := range a {
			if a[i].Caller == e.Caller && a[i].Callee == e.Callee {
				a[i].Widen(e)
				continue next
			}
		}
		a = append(a, e)
	}
	return a
}

// spanEncoding is how the persistent queue stores a span request:
//
//	"\x00MLS" and a format version (the rows of spanrows as of
//	migrations/0001; 1: without the summary, 2: with it)
//	the rows
//	the rest of the request:
//	    uvarint rows, uvarint invalid spans
//	    uvarint services, each: name, first and last seen (varint Unix
//	        ns), a byte has_proxy
//	    uvarint edges, each: caller, callee, first and last seen
//	    (version 2) the rows' spanrows.Summary: uvarint days, each a
//	        varint; uvarint operations, each: service, name, kind
//	uint32 little-endian: the length of the rest of the request
//
// Strings are a uvarint length and the bytes. The rest comes after the rows
// so that a request fresh from the conversion, whose rows follow the magic
// in its own buffer (frame), is encoded in place, without copying its rows.
// A queue written by an older build holds the collector's encoding of
// ptrace.Traces instead (exporterhelper's); those are converted when read.
type spanEncoding struct {
	redactor *spans.Redactor
}

var spanMagic = []byte("\x00MLS\x02")

// spanMagicV1 starts requests queued by a build that kept no summary: the
// store reads it off their rows.
var spanMagicV1 = []byte("\x00MLS\x01")

func (spanEncoding) Marshal(_ context.Context, req xexporterhelper.Request) ([]byte, error) {
	r, ok := req.(*spanRequest)
	if !ok {
		return nil, fmt.Errorf("meshlens_store: cannot encode a %T", req)
	}
	var b []byte
	if r.framed() {
		// Appends after the rows, into the spare room the conversion left:
		// the request is not merged or written after it is queued.
		b = r.frame
	} else {
		b = make([]byte, 0, len(spanMagic)+len(r.rows)+64+64*(len(r.services)+len(r.edges)))
		b = append(b, spanMagic...)
		b = append(b, r.rows...)
	}
	at := len(b)
	b = binary.AppendUvarint(b, uint64(r.n))
	b = binary.AppendUvarint(b, uint64(r.invalid))
	b = binary.AppendUvarint(b, uint64(len(r.services)))
	for _, s := range r.services {
		b = appendString(b, s.Name)
		b = binary.AppendVarint(b, s.FirstSeen.UnixNano())
		b = binary.AppendVarint(b, s.LastSeen.UnixNano())
		if s.HasProxy {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.edges)))
	for _, e := range r.edges {
		b = appendString(b, e.Caller)
		b = appendString(b, e.Callee)
		b = binary.AppendVarint(b, e.FirstSeen.UnixNano())
		b = binary.AppendVarint(b, e.LastSeen.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(r.sum.Days)))
	for _, d := range r.sum.Days {
		b = binary.AppendVarint(b, d)
	}
	b = binary.AppendUvarint(b, uint64(len(r.sum.Ops)))
	for _, op := range r.sum.Ops {
		b = appendString(b, op.Service)
		b = appendString(b, op.Name)
		b = appendString(b, op.Kind)
	}
	return binary.LittleEndian.AppendUint32(b, uint32(len(b)-at)), nil
}

// framed reports whether r.rows are still the rows of r.frame, right
// after the magic.
func (r *spanRequest) framed() bool {
	return len(r.frame) == len(spanMagic)+len(r.rows) && len(r.rows) > 0 && &r.frame[len(spanMagic)] == &r.rows[0]
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errBadSpanRequest = errors.New("meshlens_store: queued span request is corrupt")

// Unmarshal takes the rows as a view of data, without copying them.
func (enc spanEncoding) Unmarshal(data []byte) (context.Context, xexporterhelper.Request, error) {
	ctx := context.Background()
	v2 := bytes.HasPrefix(data, spanMagic)
	if !v2 && !bytes.HasPrefix(data, spanMagicV1) {
		return enc.fromTraces(data)
	}
	if len(data) < len(spanMagic)+4 {
		return ctx, nil, errBadSpanRequest
	}
	restLen := uint64(binary.LittleEndian.Uint32(data[len(data)-4:]))
	if restLen > uint64(len(data)-len(spanMagic)-4) {
		return ctx, nil, errBadSpanRequest
	}
	rowsEnd := len(data) - 4 - int(restLen)
	d := decoder{b: data[rowsEnd : len(data)-4]}
	r := &spanRequest{rows: data[len(spanMagic):rowsEnd:rowsEnd], n: int(d.uvarint()), invalid: int(d.uvarint())}
	for range d.count() {
		s := store.Service{Name: d.string(), FirstSeen: d.time(), LastSeen: d.time(), HasProxy: d.byte() == 1}
		r.services = append(r.services, s)
	}
	for range d.count() {
		r.edges = append(r.edges, store.Edge{Caller: d.string(), Callee: d.string(), FirstSeen: d.time(), LastSeen: d.time()})
	}
	if v2 {
		for range d.count() {
			r.sum.Days = append(r.sum.Days, d.varint())
		}
		for range d.count() {
			r.sum.Ops = append(r.sum.Ops, spanrows.Op{Service: d.string(), Name: d.string(), Kind: d.string()})
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadSpanRequest
	}
	if d.err != nil {
		return ctx, nil, d.err
	}
	return ctx, r, nil
}

// fromTraces reads a request queued by a build that queued ptrace.Traces.
func (enc spanEncoding) fromTraces(data []byte) (context.Context, xexporterhelper.Request, error) {
	ctx, td, err := pdatareq.UnmarshalTraces(data)
	if errors.Is(err, pdatareq.ErrInvalidFormat) {
		ctx = context.Background()
		td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
	}
	if err != nil {
		return context.Background(), nil, fmt.Errorf("meshlens_store: queued request is neither span rows nor traces: %w", err)
	}
	return ctx, newSpanRequest(td, enc.redactor), nil
}

// newSpanRequest converts td. The rows follow the queue encoding's magic in
// their buffer, with room after them for the rest, so that Marshal need
// not copy them.
func newSpanRequest(td ptrace.Traces, red *spans.Redactor) *spanRequest {
	need := len(spanMagic) + td.SpanCount()*spans.RowGuess + 256
	var b []byte
	if p, ok := frameBufs.Get().(*[]byte); ok && cap(*p) >= need {
		b = (*p)[:0]
	} else {
		b = make([]byte, 0, need)
	}
	b = append(b, spanMagic...)
	res := spans.ConvertRows(td, red, b)
	return &spanRequest{frame: res.Data, rows: res.Data[len(spanMagic):], n: res.N, invalid: res.Invalid, sum: res.Summary, services: res.Services, edges: res.Edges}
}

// frameBufs are the buffers of requests the write-through has written,
// for the next conversions: at 10,000 spans/s a fresh one per request is
// 2-3 MB of garbage a second. A request that goes to the sending queue
// keeps its buffer.
var frameBufs sync.Pool // of *[]byte

// maxPooledFrame keeps a buffer grown for one huge request out of the pool.
const maxPooledFrame = 4 << 20

// recycle gives the buffer of a request fresh from newSpanRequest back for
// the next conversion, once its rows are written; r is empty after.
func (r *spanRequest) recycle() {
	if r.buf == nil && r.frame != nil && cap(r.frame) <= maxPooledFrame {
		b := r.frame[:0]
		frameBufs.Put(&b)
	}
	*r = spanRequest{}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errBadSpanRequest
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count is a uvarint bounded by what is left, for a loop.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) time() time.Time {
	v := d.varint()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}
