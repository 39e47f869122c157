package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ratio(r float64) *float64 { return &r }

// testLogger writes through t.Log so a failing test shows what telemetry
// said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// newTest returns a started Telemetry with short retry waits, shut down when
// the test ends. tweaks run before Start.
func newTest(t *testing.T, cfg Config, tweaks ...func(*Telemetry)) *Telemetry {
	t.Helper()
	tel, err := New(cfg, "checkout", nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	tel.hist.baseWait, tel.hist.maxWait = 5*time.Millisecond, 40*time.Millisecond
	if tel.spans != nil {
		tel.spans.baseWait, tel.spans.maxWait = 5*time.Millisecond, 20*time.Millisecond
		tel.spans.delay = 20 * time.Millisecond
	}
	for _, f := range tweaks {
		f(tel)
	}
	if err := tel.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	})
	return tel
}

func hopKey(route, method, class string) model.HopKey {
	return model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "payments", Route: route, Method: method, StatusClass: class}
}

// histReceiver is a test collector for histogram batches: it decodes every
// batch with hdr.DecodeBatch and keeps the intervals by seq. fail, when it
// returns a status, answers that instead.
type histReceiver struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	fail      func() int
	batches   int
	traces    int            // span exports seen
	received  map[uint64]int // seq → times received
	intervals map[uint64]hdr.DecodedInterval
	instance  string
}

func newHistReceiver(t *testing.T) *histReceiver {
	r := &histReceiver{t: t, received: map[uint64]int{}, intervals: map[uint64]hdr.DecodedInterval{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *histReceiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if code := fail(); code != 0 {
			http.Error(w, "test says no", code)
			return
		}
	}
	if req.URL.Path == "/v1/traces" {
		r.mu.Lock()
		r.traces++
		r.mu.Unlock()
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != model.HistogramPath {
		r.t.Errorf("receiver: %s %s", req.Method, req.URL.Path)
		http.Error(w, "wrong endpoint", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != model.HistogramContentType {
		r.t.Errorf("receiver: Content-Type %q", ct)
	}
	if r.token != "" && req.Header.Get("Authorization") != "Bearer "+r.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.t.Errorf("receiver: gzip: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(io.LimitReader(body, model.MaxHistogramBatchBytes+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, err := hdr.DecodeBatch(raw, time.Now())
	if err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(b.Rejected) > 0 {
		r.t.Errorf("receiver: rejected parts: %v", b.Rejected)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	r.instance = b.Instance
	for _, iv := range b.Intervals {
		r.received[iv.Seq]++
		r.intervals[iv.Seq] = iv
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *histReceiver) setFail(f func() int) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// seqs returns how many distinct intervals arrived.
func (r *histReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.received)
}

// merged returns, per hop key, the total/upstream/overhead histograms of
// every interval received, merged.
func (r *histReceiver) merged() map[model.HopKey]*hopSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[model.HopKey]*hopSet{}
	for _, iv := range r.intervals {
		for _, h := range iv.Hops {
			s := out[h.Key]
			if s == nil {
				s = newHopSet()
				out[h.Key] = s
			}
			// DecodeBatch keeps the histograms sparse; the test compares
			// dense ones, decoded from the encodings it checked.
			var dense [3]*hdr.Histogram
			for i, enc := range h.Encoded {
				d, err := hdr.Decode(enc)
				if err != nil {
					r.t.Fatalf("hop %v: %v", h.Key, err)
				}
				dense[i] = d
			}
			s.merge(&hopSet{total: dense[0], upstream: dense[1], overhead: dense[2]})
		}
	}
	return out
}

// spanReceiver is a test OTLP/HTTP trace receiver that decodes requests
// with the generated OTLP types.
type spanReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	fail     int
	requests int
	resource map[string]string
	spans    []*tracepb.Span
}

func newSpanReceiver(t *testing.T) *spanReceiver {
	r := &spanReceiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *spanReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == model.HistogramPath {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		r.t.Errorf("span receiver: %s %s %q", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != 0 {
		http.Error(w, "test says no", r.fail)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		r.t.Errorf("span receiver: unmarshal: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.requests++
	for _, rs := range msg.ResourceSpans {
		r.resource = map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			r.resource[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *spanReceiver) got() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// blackHole is a TCP listener that accepts connections and never answers.
type blackHole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newBlackHole(t *testing.T) *blackHole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *blackHole) accepted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *blackHole) close() {
	b.ln.Close()
	<-b.done
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
}

// eventually polls cond every few milliseconds until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
