package hdrreceiver

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshlens/meshlens/model"
)

// TestHistogramsUnknownNestedFields: an unknown field anywhere in a batch —
// in an interval or in a hop, not only at the top — refuses the batch whole
// with a 400 naming the field, counted as bad_batch.
func TestHistogramsUnknownNestedFields(t *testing.T) {
	r, sink, _, ext := newTestReceiver(t, "")
	url := "http://" + r.cfg.Endpoint + model.HistogramPath
	good := string(mustJSON(t, batch(t, time.Now(), goodHop(t))))
	f := func(name, body, field string) {
		t.Helper()
		sink.Reset()
		before := testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("histograms", reasonBadBatch))
		resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), field) {
			t.Errorf("%s: %d %s; want 400 naming %q", name, resp.StatusCode, b, field)
		}
		if after := testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("histograms", reasonBadBatch)); after != before+1 {
			t.Errorf("%s: rejected{bad_batch} %v -> %v, want +1", name, before, after)
		}
		if sink.LogRecordCount() != 0 {
			t.Errorf("%s: %d hops taken, want none", name, sink.LogRecordCount())
		}
	}
	f("in an interval", strings.Replace(good, `"seq":`, `"sequence_typo":1,"seq":`, 1), "sequence_typo")
	f("in a hop", strings.Replace(good, `"hops":[{`, `"hops":[{"latency":1,`, 1), "latency")
}
