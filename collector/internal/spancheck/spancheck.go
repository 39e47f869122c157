// Package spancheck refuses spans that start far in the future (past
// MaxFuture from the receiver's clock, up to the year 2262 where
// nanoseconds overflow). Stored, such a span lands in a partition of its own
// day, which at the edge of the nanosecond range cannot be created: the
// write fails on every retry and holds the store queue. The receivers take
// them out at ingest, answer with what they left out and count it.
package spancheck

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaxFuture is how far past the receiver's clock a span may start (clock
// skew between senders and the collector).
const MaxFuture = time.Hour

// Reason is the rejected_total reason of a span left out here.
const Reason = "bad_timestamp"

// Filter removes from td every span that starts more than MaxFuture after
// now, and returns how many it removed and why the first one was.
func Filter(td ptrace.Traces, now time.Time) (removed int, why string) {
	limit := pcommon.NewTimestampFromTime(now.Add(MaxFuture))
	bad := func(s ptrace.Span) bool { return s.StartTimestamp() > limit }
	if !anyBad(td, bad) {
		return 0, ""
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sss.At(j).Spans().RemoveIf(func(s ptrace.Span) bool {
				if !bad(s) {
					return false
				}
				if removed == 0 {
					why = reason(s, now)
				}
				removed++
				return true
			})
		}
	}
	return removed, why
}

// anyBad reports whether a span of td is bad: the common case, none, costs
// one pass and no change to td.
func anyBad(td ptrace.Traces, bad func(ptrace.Span) bool) bool {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				if bad(ss.At(k)) {
					return true
				}
			}
		}
	}
	return false
}

func reason(s ptrace.Span, now time.Time) string {
	return fmt.Sprintf("span %s: start_time_unix_nano %d is more than %v past the receiver's clock (%s)",
		s.SpanID(), uint64(s.StartTimestamp()), MaxFuture, now.UTC().Format(time.RFC3339))
}
