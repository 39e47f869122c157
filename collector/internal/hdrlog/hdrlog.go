// Package hdrlog carries validated HDR histogram intervals through the
// collector's logs pipeline. The meshlens_hdr receiver turns each accepted
// hop of a batch into one log record; the meshlens exporters read them back.
// Going through a standard pipeline signal is what lets histograms use the
// exporters' persistent sending queue, the memory limiter and fan-out like
// any other telemetry.
//
// One record per hop: resource attributes service.name (the proxy's service)
// and meshlens.instance; record timestamp = interval start, attributes
// meshlens.seq, meshlens.interval_end_unix_nano and the hop key; body a map
// with the three base64 V2 HdrHistogram encodings total, upstream, overhead.
//
// The receiver has decoded those histograms already; it passes them along in
// the context of ConsumeLogs (WithDecoded), and an exporter in the same
// process takes them from there (DecodedFrom, Decoded.Packed) rather than
// decoding the encodings again.
package hdrlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// ScopeName marks the scope that holds histogram records; logs from any
// other scope are not histograms.
const ScopeName = "meshlens/hdr"

// Attribute keys.
const (
	AttrService     = "service.name"
	AttrInstance    = "meshlens.instance"
	AttrSeq         = "meshlens.seq"
	AttrCount       = "meshlens.count"
	AttrEnd         = "meshlens.interval_end_unix_nano"
	AttrHopService  = "meshlens.hop.service"
	AttrDirection   = "meshlens.hop.direction"
	AttrPeer        = "meshlens.hop.peer"
	AttrRoute       = "meshlens.hop.route"
	AttrMethod      = "meshlens.hop.method"
	AttrStatusClass = "meshlens.hop.status_class"
)

// Hop is one hop of one interval as carried in a record.
type Hop struct {
	Instance   string
	Service    string // the sending proxy's service
	Seq        uint64
	Start, End time.Time
	Key        model.HopKey
	Count      int64 // requests in Total
	// Base64 V2 compressed HdrHistogram encodings, microseconds.
	Total, Upstream, Overhead string
}

// FromBatch converts the accepted part of a decoded batch into logs.
func FromBatch(b *hdr.DecodedBatch) (plog.Logs, error) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(AttrService, b.Service)
	rl.Resource().Attributes().PutStr(AttrInstance, b.Instance)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	recs := sl.LogRecords()
	recs.EnsureCapacity(b.Hops)
	for _, in := range b.Intervals {
		for _, h := range in.Hops {
			total, err := encoded(h.Encoded[0], h.Total)
			if err != nil {
				return ld, err
			}
			upstream, err := encoded(h.Encoded[1], h.Upstream)
			if err != nil {
				return ld, err
			}
			overhead, err := encoded(h.Encoded[2], h.Overhead)
			if err != nil {
				return ld, err
			}
			r := recs.AppendEmpty()
			r.SetTimestamp(pcommon.NewTimestampFromTime(in.Start))
			a := r.Attributes()
			a.EnsureCapacity(8)
			a.PutInt(AttrSeq, int64(in.Seq))
			a.PutInt(AttrCount, h.Total.TotalCount())
			a.PutInt(AttrEnd, in.End.UnixNano())
			a.PutStr(AttrHopService, h.Key.Service)
			a.PutStr(AttrDirection, string(h.Key.Direction))
			a.PutStr(AttrPeer, h.Key.Peer)
			a.PutStr(AttrRoute, h.Key.Route)
			a.PutStr(AttrMethod, h.Key.Method)
			a.PutStr(AttrStatusClass, h.Key.StatusClass)
			body := r.Body().SetEmptyMap()
			body.EnsureCapacity(3)
			body.PutStr("total", total)
			body.PutStr("upstream", upstream)
			body.PutStr("overhead", overhead)
		}
	}
	return ld, nil
}

// encoded is the encoding a histogram was decoded from when the decoder kept
// it (encoding again costs a zlib writer per histogram, most of the
// receiver's CPU), else a new encoding.
func encoded(received string, p *hdr.Packed) (string, error) {
	if received != "" {
		return received, nil
	}
	return hdr.EncodePacked(p)
}

// Decoded holds the histograms of a batch as hdr.DecodeBatch decoded them,
// by encoding, for the consumers its records reach in this process: the
// receiver passes them in the context of ConsumeLogs (WithDecoded), and a
// consumer that needs the histograms of a record (Packed) takes them from
// there instead of decoding the record's encodings again. A record that
// comes another way (a persistent queue, a batch processor, another
// receiver) is decoded as before. The histograms are shared: read only.
type Decoded struct {
	batch *hdr.DecodedBatch
	once  sync.Once
	byEnc map[string]*hdr.Packed
}

type decodedKey struct{}

// WithDecoded returns ctx carrying the histograms of b, the batch the logs
// passed along with ctx were made from (FromBatch).
func WithDecoded(ctx context.Context, b *hdr.DecodedBatch) context.Context {
	return context.WithValue(ctx, decodedKey{}, &Decoded{batch: b})
}

// DecodedFrom returns the histograms ctx carries, or nil; Packed works on
// nil too.
func DecodedFrom(ctx context.Context) *Decoded {
	d, _ := ctx.Value(decodedKey{}).(*Decoded)
	return d
}

// Packed returns the histogram of an encoding read from a record (Hop.Total,
// Upstream, Overhead): the one decoded with the batch when d holds it, else
// a new hdr.DecodePacked. Keyed by the encoding itself, a hit is always the
// histogram the encoding holds, whatever happened to the records on the way.
func (d *Decoded) Packed(enc string) (*hdr.Packed, error) {
	if d != nil {
		d.once.Do(d.index)
		if p, ok := d.byEnc[enc]; ok {
			return p, nil
		}
	}
	return hdr.DecodePacked(enc)
}

// index maps the batch's encodings to their histograms, on first use: a
// pipeline without a consumer of histograms pays nothing for it.
func (d *Decoded) index() {
	d.byEnc = make(map[string]*hdr.Packed, 3*d.batch.Hops)
	for _, in := range d.batch.Intervals {
		for _, h := range in.Hops {
			for i, p := range [3]*hdr.Packed{h.Total, h.Upstream, h.Overhead} {
				if h.Encoded[i] != "" && p != nil {
					d.byEnc[h.Encoded[i]] = p
				}
			}
		}
	}
}

// ErrNotHistogram is wrapped by Each for a record in the histogram scope that
// lacks what a histogram record must have.
var ErrNotHistogram = errors.New("not a meshlens histogram record")

// Each calls fn for every histogram record in ld; records of other scopes
// are skipped. A malformed record stops the walk with an error wrapping
// ErrNotHistogram.
func Each(ld plog.Logs, fn func(Hop) error) error {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		ra := rl.Resource().Attributes()
		service, instance := str(ra, AttrService), str(ra, AttrInstance)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			if sl.Scope().Name() != ScopeName {
				continue
			}
			if service == "" || instance == "" {
				return fmt.Errorf("%w: resource lacks %s or %s", ErrNotHistogram, AttrService, AttrInstance)
			}
			recs := sl.LogRecords()
			for k := 0; k < recs.Len(); k++ {
				h, err := hop(recs.At(k))
				if err != nil {
					return err
				}
				h.Service, h.Instance = service, instance
				if err := fn(h); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func hop(r plog.LogRecord) (Hop, error) {
	a := r.Attributes()
	seq, ok := a.Get(AttrSeq)
	if !ok || seq.Type() != pcommon.ValueTypeInt {
		return Hop{}, fmt.Errorf("%w: %s missing", ErrNotHistogram, AttrSeq)
	}
	end, ok := a.Get(AttrEnd)
	if !ok || end.Type() != pcommon.ValueTypeInt {
		return Hop{}, fmt.Errorf("%w: %s missing", ErrNotHistogram, AttrEnd)
	}
	if r.Body().Type() != pcommon.ValueTypeMap {
		return Hop{}, fmt.Errorf("%w: body is not a map", ErrNotHistogram)
	}
	body := r.Body().Map()
	var count int64
	if c, ok := a.Get(AttrCount); ok && c.Type() == pcommon.ValueTypeInt {
		count = c.Int()
	}
	h := Hop{
		Count: count,
		Seq:   uint64(seq.Int()),
		Start: r.Timestamp().AsTime().UTC(),
		End:   time.Unix(0, end.Int()).UTC(),
		Key: model.HopKey{
			Service:     str(a, AttrHopService),
			Direction:   model.Direction(str(a, AttrDirection)),
			Peer:        str(a, AttrPeer),
			Route:       str(a, AttrRoute),
			Method:      str(a, AttrMethod),
			StatusClass: str(a, AttrStatusClass),
		},
		Total:    str(body, "total"),
		Upstream: str(body, "upstream"),
		Overhead: str(body, "overhead"),
	}
	if err := h.Key.Validate(); err != nil {
		return Hop{}, fmt.Errorf("%w: %v", ErrNotHistogram, err)
	}
	if h.Total == "" {
		return Hop{}, fmt.Errorf("%w: body.total missing", ErrNotHistogram)
	}
	return h, nil
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.Str()
}
