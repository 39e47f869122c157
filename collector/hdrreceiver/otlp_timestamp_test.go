package hdrreceiver

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestOTLPFarFutureSpans: spans starting far in the future are left out
// and counted; the answer is a partial success naming them, or a 400 when
// nothing was taken.
func TestOTLPFarFutureSpans(t *testing.T) {
	r, _, sink, ext := newTestReceiver(t, "")
	url := "http://" + r.cfg.Endpoint + "/v1/traces"
	now := time.Now()
	request := func(starts ...pcommon.Timestamp) []byte {
		td := ptrace.NewTraces()
		ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i, st := range starts {
			sp := ss.AppendEmpty()
			sp.SetTraceID([16]byte{3, byte(i)})
			sp.SetSpanID([8]byte{4, byte(i)})
			sp.SetStartTimestamp(st)
			sp.SetEndTimestamp(st)
		}
		b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		return b
	}
	post := func(body []byte) (int, string) {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	counted := func() float64 {
		return testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("spans", "bad_timestamp"))
	}
	before := counted()
	ok := pcommon.NewTimestampFromTime(now)
	code, body := post(request(ok, math.MaxInt64, pcommon.NewTimestampFromTime(now.Add(3*time.Hour))))
	if code != 200 || !strings.Contains(body, `"rejectedSpans":"2"`) || !strings.Contains(body, "start_time_unix_nano") {
		t.Errorf("one good, two far-future spans: %d %s; want 200 with a partial success rejecting 2", code, body)
	}
	if sink.SpanCount() != 1 {
		t.Errorf("%d spans reached the pipeline, want 1", sink.SpanCount())
	}
	if got := counted(); got != before+2 {
		t.Errorf("rejected{spans,bad_timestamp} %v -> %v, want +2", before, got)
	}
	code, body = post(request(math.MaxUint64))
	if code != 400 || !strings.Contains(body, "nothing taken") {
		t.Errorf("only a far-future span: %d %s; want 400 naming it", code, body)
	}
	if sink.SpanCount() != 1 {
		t.Errorf("a far-future span reached the pipeline")
	}
}
