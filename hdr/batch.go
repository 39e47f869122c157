package hdr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshlens/meshlens/model"
)

// Limits on the timestamps of a received interval, relative to the receiver's
// clock.
const (
	MaxIntervalLength = time.Hour
	MaxClockSkew      = 5 * time.Minute // how far in the future an interval may end
	MaxIntervalAge    = 24 * time.Hour  // how long ago an interval may start
)

// ErrBadBatch is wrapped by errors that reject a whole batch.
var ErrBadBatch = errors.New("bad histogram batch")

// DecodedHop is one hop of a received interval with its histograms decoded.
type DecodedHop struct {
	Key model.HopKey
	// Total, Upstream and Overhead are the hop's histograms decoded sparse
	// (DecodePacked): no dense counts array is ever allocated for them. They
	// may be handed on to several readers, so they are read only; Total's
	// TotalCount is the hop's request count.
	Total, Upstream, Overhead *Packed
	// Encoded holds the hop's three encodings as received (total, upstream,
	// overhead), each the encoding its histogram above was decoded from, so
	// a receiver can pass them on without encoding them again.
	Encoded [3]string
}

// DecodedInterval is one received interval whose hops passed validation.
type DecodedInterval struct {
	Seq        uint64
	Start, End time.Time
	Hops       []DecodedHop
}

// Rejection says why one part of a batch was not taken. Field is the path in
// the payload, e.g. "intervals[1].hops[3].total".
type Rejection struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (r Rejection) String() string { return r.Field + ": " + r.Reason }

// DecodedBatch is what DecodeBatch takes from a payload.
type DecodedBatch struct {
	Instance  string
	Service   string
	Intervals []DecodedInterval
	// Rejected lists the intervals and hops that were not taken; everything
	// else in the batch was.
	Rejected []Rejection
	// Hops counts the hops taken.
	Hops int
}

// DecodeBatch parses and validates a histogram batch (docs/histogram-wire.md).
//
// A batch that is not valid JSON, has unknown fields, lacks its instance or
// service, or holds no interval is rejected whole (an error wrapping
// ErrBadBatch). Otherwise it is taken in part: an interval with bad
// timestamps, or a hop with a bad key or histogram, is left out and listed in
// Rejected, and every valid hop beside it is taken.
func DecodeBatch(body []byte, now time.Time) (*DecodedBatch, error) {
	if len(body) > model.MaxHistogramBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadBatch, len(body), model.MaxHistogramBatchBytes)
	}
	var b model.HistogramBatch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBatch, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBadBatch)
	}
	switch {
	case b.Instance == "":
		return nil, fmt.Errorf("%w: instance: must not be empty", ErrBadBatch)
	case b.Service == "":
		return nil, fmt.Errorf("%w: service: must not be empty", ErrBadBatch)
	case len(b.Intervals) == 0:
		return nil, fmt.Errorf("%w: intervals: must not be empty", ErrBadBatch)
	}

	out := &DecodedBatch{Instance: b.Instance, Service: b.Service}
	for i, in := range b.Intervals {
		field := fmt.Sprintf("intervals[%d]", i)
		start, end := time.UnixMilli(in.StartUnixMs).UTC(), time.UnixMilli(in.EndUnixMs).UTC()
		if reason := checkInterval(start, end, now); reason != "" {
			out.Rejected = append(out.Rejected, Rejection{Field: field, Reason: reason})
			continue
		}
		di := DecodedInterval{Seq: in.Seq, Start: start, End: end}
		for j, hop := range in.Hops {
			hf := fmt.Sprintf("%s.hops[%d]", field, j)
			dh, rej := decodeHop(hf, hop)
			if rej != nil {
				out.Rejected = append(out.Rejected, *rej)
				continue
			}
			di.Hops = append(di.Hops, dh)
		}
		out.Hops += len(di.Hops)
		out.Intervals = append(out.Intervals, di)
	}
	return out, nil
}

func checkInterval(start, end, now time.Time) string {
	switch {
	case !end.After(start):
		return "end_unix_ms must be after start_unix_ms"
	case end.Sub(start) > MaxIntervalLength:
		return fmt.Sprintf("interval longer than %v", MaxIntervalLength)
	case end.After(now.Add(MaxClockSkew)):
		return fmt.Sprintf("end_unix_ms %s is in the future (receiver time %s)", end.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case start.Before(now.Add(-MaxIntervalAge)):
		return fmt.Sprintf("start_unix_ms %s is older than %v", start.Format(time.RFC3339), MaxIntervalAge)
	}
	return ""
}

func decodeHop(field string, hop model.HopHistograms) (DecodedHop, *Rejection) {
	if err := hop.HopKey.Validate(); err != nil {
		var fe *model.FieldError
		if errors.As(err, &fe) {
			return DecodedHop{}, &Rejection{Field: field + "." + fe.Field, Reason: fe.Reason}
		}
		return DecodedHop{}, &Rejection{Field: field, Reason: err.Error()}
	}
	dh := DecodedHop{Key: hop.HopKey, Encoded: [3]string{hop.Total, hop.Upstream, hop.Overhead}}
	for _, h := range []struct {
		name string
		enc  string
		dst  **Packed
	}{
		{"total", hop.Total, &dh.Total},
		{"upstream", hop.Upstream, &dh.Upstream},
		{"overhead", hop.Overhead, &dh.Overhead},
	} {
		// The sparse decode checks what Decode checks (size, base64,
		// header, payload) and rejects counts summing past int64, without
		// the dense counts array (~360 KB to allocate and clear for each
		// histogram in the meshlens geometry).
		p, lastLowest, err := decodePacked(h.enc)
		if err != nil {
			return DecodedHop{}, &Rejection{Field: field + "." + h.name, Reason: err.Error()}
		}
		// Max is the top of the last populated bucket, so a value recorded
		// at (or clamped to) the limit may report a Max up to one bucket
		// width above it: the histogram is in range when that bucket starts
		// at or below the limit (its values are equivalent to the limit).
		if p.TotalCount() > 0 && lastLowest > model.HighestTrackableMicros {
			return DecodedHop{}, &Rejection{Field: field + "." + h.name,
				Reason: fmt.Sprintf("value %dµs out of range (max %dµs)", p.Max(), int64(model.HighestTrackableMicros))}
		}
		*h.dst = p
	}
	if dh.Total.TotalCount() == 0 {
		return DecodedHop{}, &Rejection{Field: field + ".total", Reason: "empty histogram"}
	}
	return dh, nil
}
