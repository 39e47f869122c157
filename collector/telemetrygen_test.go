package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/meshlens/meshlens/collector/internal/spans"
	"github.com/meshlens/meshlens/collector/queryapi"
	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// tee forwards OTLP/HTTP requests to the collector and keeps a copy of each
// request the collector took (2xx).
type tee struct {
	target string
	mu     sync.Mutex
	taken  [][]byte // ExportTraceServiceRequest protobufs
}

func (tt *tee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+tt.target+r.URL.Path, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		raw := body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err == nil {
				raw, _ = io.ReadAll(zr)
			}
		}
		tt.mu.Lock()
		tt.taken = append(tt.taken, raw)
		tt.mu.Unlock()
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

func runTelemetrygen(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Tool(t, "telemetrygen"), append([]string{"traces"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("telemetrygen %v: %v\n%s", args, err, out)
	}
}

// TestTelemetrygen: real OTLP from telemetrygen, over HTTP (through the
// meshlens_hdr receiver on the OTLP/HTTP port) and gRPC (the otlp receiver):
// the spans stored are the spans sent, once each, credentials removed.
func TestTelemetrygen(t *testing.T) {
	c := startCollector(t)

	// HTTP, through a tee that keeps what the collector acknowledged.
	tt := &tee{target: c.hdr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tt}
	go srv.Serve(ln)
	defer srv.Close()
	runTelemetrygen(t, "--otlp-http", "--otlp-insecure", "--otlp-endpoint", ln.Addr().String(),
		"--traces", "40", "--workers", "2", "--rate", "0", "--child-spans", "3", "--service", "tg-http",
		"--telemetry-attributes", `http.request.header.authorization="Bearer tg-secret"`,
		"--telemetry-attributes", `http.request.header.x-request-id="tg-req"`)

	red := spans.NewRedactor(spans.DefaultRedact)
	want := map[string][]store.Span{}
	sent := 0
	tt.mu.Lock()
	for _, raw := range tt.taken {
		er := ptraceotlp.NewExportRequest()
		if err := er.UnmarshalProto(raw); err != nil {
			t.Fatalf("tee: %v", err)
		}
		res := spans.ConvertRows(er.Traces(), red, nil)
		converted, err := spanrows.Decode(res.Data, res.N)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range converted {
			want[s.TraceID] = append(want[s.TraceID], s)
			sent++
		}
	}
	tt.mu.Unlock()
	if len(want) != 80 || sent != 80*4 {
		t.Fatalf("telemetrygen sent %d traces, %d spans; want 80 and 320", len(want), sent)
	}
	api := "http://" + c.api
	for id, ws := range want {
		var got queryapi.Trace
		eventually(t, 30*time.Second, func() error {
			got = queryapi.Trace{}
			code, body := httpGet(t, api+"/api/v1/traces/"+id, "", &got)
			if code != 200 || len(got.Spans) < len(ws) {
				return fmt.Errorf("trace %s: %d, %d spans of %d (%.200s)", id, code, len(got.Spans), len(ws), body)
			}
			return nil
		})
		if len(got.Spans) != len(ws) {
			t.Fatalf("trace %s: %d spans stored, %d sent", id, len(got.Spans), len(ws))
		}
		sort.Slice(ws, func(i, j int) bool { return ws[i].SpanID < ws[j].SpanID })
		sort.Slice(got.Spans, func(i, j int) bool { return got.Spans[i].SpanID < got.Spans[j].SpanID })
		for i, w := range ws {
			g := got.Spans[i]
			if g.SpanID != w.SpanID || g.ParentSpanID != w.ParentSpanID || g.Service != w.Service || g.Name != w.Name ||
				g.Kind != w.Kind || !g.Start.Equal(w.Start) || g.DurationMicro != w.Duration.Microseconds() ||
				g.StatusCode != w.StatusCode || g.RequestID != "tg-req" || fmt.Sprint(g.Attributes) != fmt.Sprint(w.Attributes) {
				t.Errorf("trace %s span %d:\nstored %+v\nsent   %+v", id, i, g, w)
			}
			for k, v := range g.Attributes {
				if strings.Contains(v, "tg-secret") {
					t.Errorf("stored attribute %s=%q holds the credential", k, v)
				}
			}
		}
	}

	// gRPC, on the stock otlp receiver.
	runTelemetrygen(t, "--otlp-insecure", "--otlp-endpoint", c.grpc,
		"--traces", "25", "--rate", "0", "--child-spans", "1", "--service", "tg-grpc")
	eventually(t, 30*time.Second, func() error {
		var res struct {
			Data []struct {
				TraceID string `json:"traceID"`
				Spans   []struct {
					SpanID string `json:"spanID"`
				} `json:"spans"`
			} `json:"data"`
		}
		code, body := httpGet(t, api+"/api/traces?service=tg-grpc&limit=1000&lookback=1h", "", &res)
		n := 0
		for _, d := range res.Data {
			n += len(d.Spans)
		}
		if code != 200 || len(res.Data) != 25 || n != 50 {
			return fmt.Errorf("gRPC: %d, %d traces with %d spans stored, want 25 with 50 (%.200s)", code, len(res.Data), n, body)
		}
		return nil
	})
	var services struct {
		Services []queryapi.Service `json:"services"`
	}
	httpGet(t, api+"/api/v1/services", "", &services)
	names := map[string]bool{}
	for _, s := range services.Services {
		names[s.Name] = true
	}
	if !names["tg-http"] || !names["tg-grpc"] {
		t.Errorf("services %+v lack tg-http and tg-grpc", services.Services)
	}
}
