package spans

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// Rows is what one OTLP payload yields in the store's row format.
type Rows struct {
	// Data holds N rows (spanrows), one per span with both IDs.
	Data []byte
	N    int
	// Summary holds the days and operations of the rows.
	Summary  spanrows.Summary
	Services []store.Service
	Edges    []store.Edge
	// Invalid counts spans left out for an empty trace or span ID.
	Invalid int
}

// RowGuess is about what a span with a few attributes takes as a row.
const RowGuess = 256

// ConvertRows turns td into the store's rows (spanrows), appended to b,
// and the discoveries they carry: each span's service, and for a client
// (outbound) span with a known peer the peer and the edge service → peer;
// for a server span with a known peer the edge peer → service. Peers seen
// only here have HasProxy false. Each span is written straight into its
// row, with no store.Span, attribute map or string in between.
func ConvertRows(td ptrace.Traces, red *Redactor, b []byte) Rows {
	var res Rows
	if need := td.SpanCount() * RowGuess; cap(b)-len(b) < need {
		nb := make([]byte, len(b), len(b)+need)
		copy(nb, b)
		b = nb
	}
	var d discoveries
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := serviceName(rs)
		stored := spanrows.Clean(service) // as the rows hold it
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				sp := ss.At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					res.Invalid++
					continue
				}
				var peer string
				b, peer = appendRow(b, sp, service, red)
				res.N++
				res.Summary.Note(int64(sp.StartTimestamp()), stored, spanrows.Clean(sp.Name()), kind(sp.Kind()))
				d.span(sp.Kind(), service, peer, time.Unix(0, int64(sp.StartTimestamp())).UTC())
			}
		}
	}
	res.Data = b
	res.Services, res.Edges = d.result()
	return res
}

// appendRow appends sp's row to b and returns the span's peer (PeerKeys).
// The attributes are read in one pass: the request ID and the peer are
// picked out of it, and the other attributes, less the redacted ones, go
// into the row's attributes object.
func appendRow(b []byte, sp ptrace.Span, service string, red *Redactor) ([]byte, string) {
	attrs := sp.Attributes()
	var requestID, peer string
	requestRank, peerRank := len(RequestIDKeys), len(PeerKeys)
	for k, v := range attrs.All() {
		if r := requestIDPick.rank(k); r >= 0 && r < requestRank {
			if s := firstString(v); s != "" {
				requestID, requestRank = s, r
			}
		}
		if r := peerPick.rank(k); r >= 0 && r < peerRank {
			if s := firstString(v); s != "" {
				peer, peerRank = s, r
			}
		}
	}
	tid, sid, pid := sp.TraceID(), sp.SpanID(), sp.ParentSpanID()
	b = spanrows.BeginRow(b)
	b = spanrows.AppendHex(b, tid[:])
	b = spanrows.AppendHex(b, sid[:])
	if pid.IsEmpty() {
		b = spanrows.AppendText(b, "")
	} else {
		b = spanrows.AppendHex(b, pid[:])
	}
	b = spanrows.AppendText(b, service)
	b = spanrows.AppendText(b, sp.Name())
	b = spanrows.AppendText(b, kind(sp.Kind()))
	start, end := sp.StartTimestamp(), sp.EndTimestamp()
	b = spanrows.AppendInt8(b, int64(start))
	var dur int64
	if end > start {
		dur = int64(end - start)
	}
	b = spanrows.AppendInt8(b, dur)
	b = spanrows.AppendText(b, status(sp.Status().Code()))
	b = spanrows.AppendText(b, sp.Status().Message())
	b = spanrows.AppendText(b, requestID)
	b, o := spanrows.BeginObject(b)
	var num [24]byte
	for k, v := range attrs.All() {
		if red.Redacted(k) {
			continue
		}
		switch v.Type() {
		case pcommon.ValueTypeStr:
			b = o.Member(b, k, v.Str())
		case pcommon.ValueTypeInt:
			b = o.Member(b, k, unsafeString(strconv.AppendInt(num[:0], v.Int(), 10)))
		case pcommon.ValueTypeBool:
			b = o.Member(b, k, strconv.FormatBool(v.Bool()))
		default:
			b = o.Member(b, k, v.AsString())
		}
	}
	return o.End(b), peer
}
