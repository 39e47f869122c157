package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/model"
)

// TestOverloadRefusalsRetryable: a collector whose memory_limiter limit is
// below what it already uses refuses a burst of spans and histograms the way
// senders retry on: HTTP 503 with Retry-After, gRPC UNAVAILABLE. It keeps
// running and answering.
func TestOverloadRefusalsRetryable(t *testing.T) {
	t.Parallel()
	c := newCollector(t, "",
		"--set", "processors::memory_limiter::check_interval=100ms",
		"--set", "processors::memory_limiter::limit_mib=2",
		"--set", "processors::memory_limiter::spike_limit_mib=1")
	c.start()

	s := newSender("http://"+c.hdr, "e2e-overload", 1, 100, 1)
	spans, _ := s.batch()
	hb := testhost.Batch("e2e-proxy-1", "e2e-api", 1, time.Now().Add(-20*time.Second),
		testhost.Hop(t, model.HopKey{Service: "e2e-api", Direction: model.Inbound, Peer: "caller",
			Route: "/work", Method: "GET", StatusClass: "2xx"}, 1000, 2000, 3000))
	hist, err := json.Marshal(hb)
	if err != nil {
		t.Fatal(err)
	}

	post := func(path, contentType string, body []byte) (int, string) {
		resp, err := http.Post("http://"+c.hdr+path, contentType, bytes.NewReader(body))
		if err != nil {
			t.Errorf("POST %s: %v", path, err)
			return 0, ""
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	// The limiter checks every 100ms: wait until it refuses.
	eventually(t, 20*time.Second, func() error {
		if code, _ := post("/v1/traces", "application/x-protobuf", spans); code != http.StatusServiceUnavailable {
			return errorf("spans answered %d, want 503 once the memory limiter refuses", code)
		}
		return nil
	})

	// A burst of 64 concurrent requests, spans and histograms.
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			path, ct, body := "/v1/traces", "application/x-protobuf", spans
			if i%2 == 1 {
				path, ct, body = "/v1/histograms", model.HistogramContentType, hist
			}
			code, retryAfter := post(path, ct, body)
			mu.Lock()
			defer mu.Unlock()
			answers[path]++
			if code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
				t.Errorf("POST %s under overload: %d, want 503 or 429 (retryable)", path, code)
			}
			if retryAfter == "" {
				t.Errorf("POST %s: %d without Retry-After", path, code)
			}
		}(i)
	}
	wg.Wait()

	conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(spans); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const overloaded = `meshlens_collector_rejected_total{reason="overloaded",signal="spans"}`
	before := scrapeValue(t, c.prom, overloaded)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, req)
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("gRPC export under overload: %v (code %v), want UNAVAILABLE", err, code)
	}
	// The refusal is counted like those on 4318.
	if after := scrapeValue(t, c.prom, overloaded); after != before+float64(req.Traces().SpanCount()) {
		t.Errorf("%s went %v -> %v after a gRPC refusal of %d spans", overloaded, before, after, req.Traces().SpanCount())
	}
	if code := httpStatus("http://" + c.api + "/healthz"); code != 200 {
		t.Errorf("collector health after the burst: %d", code)
	}
	t.Logf("burst answered %v with 503 and Retry-After; gRPC: %v", answers, status.Code(err))
}

// scrapeValue reads one sample from the collector's /metrics (0 when it is
// absent).
func scrapeValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}
