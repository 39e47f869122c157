package spancheck

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestFilter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := func(starts []pcommon.Timestamp, wantKept int, wantWhy string) {
		t.Helper()
		td := ptrace.NewTraces()
		ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i, st := range starts {
			s := ss.AppendEmpty()
			s.SetSpanID([8]byte{byte(i + 1)})
			s.SetStartTimestamp(st)
		}
		removed, why := Filter(td, now)
		if td.SpanCount() != wantKept || removed != len(starts)-wantKept {
			t.Errorf("kept %d, removed %d; want kept %d of %d", td.SpanCount(), removed, wantKept, len(starts))
		}
		if !strings.Contains(why, wantWhy) || (wantWhy == "") != (why == "") {
			t.Errorf("why %q, want one naming %q", why, wantWhy)
		}
	}
	ts := pcommon.NewTimestampFromTime
	f([]pcommon.Timestamp{ts(now), ts(now.Add(-48 * time.Hour)), ts(now.Add(59 * time.Minute))}, 3, "")
	f([]pcommon.Timestamp{ts(now), ts(now.Add(2 * time.Hour))}, 1, "past the receiver")
	f([]pcommon.Timestamp{math.MaxInt64, ts(now)}, 1, "past the receiver")
	f([]pcommon.Timestamp{math.MaxUint64}, 0, "past the receiver")
	f([]pcommon.Timestamp{0, ts(now)}, 2, "") // unset: kept (stored at the epoch, dropped by retention)
}
