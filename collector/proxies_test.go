package collector

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/queryapi"
	"github.com/meshlens/meshlens/internal/testenv"
)

// sidecar is a meshproxy process beside one app.
type sidecar struct {
	inbound, outbound, admin string
}

func startSidecar(t *testing.T, service, app, collectorURL string, upstreams ...string) *sidecar {
	t.Helper()
	s := &sidecar{inbound: testhost.FreeAddr(t), outbound: testhost.FreeAddr(t), admin: testhost.FreeAddr(t)}
	args := []string{"--service", service, "--inbound", s.inbound, "--outbound", s.outbound, "--admin", s.admin,
		"--app", app, "--collector", collectorURL, "--flush-interval", "1s", "--log-level", "warn"}
	for _, u := range upstreams {
		args = append(args, "--upstream", u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, testenv.Tool(t, "meshproxy"), args...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Cancel = func() error { return cmd.Process.Signal(interruptSignal) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("meshproxy %s:\n%s", service, logs.String())
		}
	})
	eventually(t, 20*time.Second, func() error {
		if code, body := httpGet(t, "http://"+s.admin+"/ready", "", nil); code != 200 {
			return fmt.Errorf("meshproxy %s not ready: %d %s", service, code, body)
		}
		return nil
	})
	return s
}

// app answers /work; with a next hop it first calls it through its own
// sidecar's outbound listener, passing on the trace context and request ID
// as an instrumented app would.
func app(t *testing.T, name string, outbound func() string, next string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if next != "" {
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+outbound()+"/work", nil)
			req.Host = next
			for _, h := range []string{"traceparent", "tracestate", "x-request-id"} {
				if v := r.Header.Get(h); v != "" {
					req.Header.Set(h, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				http.Error(w, name+": next hop "+resp.Status, http.StatusBadGateway)
				return
			}
		}
		fmt.Fprintf(w, "%s done\n", name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestThreeHops: real meshproxy sidecars, A → B → C. A request is found by
// its request ID with the spans of every hop; the services, edges and
// latencies the proxies' histograms carry reach the query API and /metrics.
func TestThreeHops(t *testing.T) {
	c := startCollector(t)
	collectorURL := "http://" + c.hdr

	var sa, sb *sidecar
	appC := app(t, "c", nil, "")
	appB := app(t, "b", func() string { return sb.outbound }, "svc-c")
	appA := app(t, "a", func() string { return sa.outbound }, "svc-b")
	scC := startSidecar(t, "svc-c", appC.Listener.Addr().String(), collectorURL)
	sb = startSidecar(t, "svc-b", appB.Listener.Addr().String(), collectorURL, "svc-c="+scC.inbound)
	sa = startSidecar(t, "svc-a", appA.Listener.Addr().String(), collectorURL, "svc-b="+sb.inbound)

	const n = 20
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+sa.inbound+"/work", nil)
		req.Header.Set("x-request-id", fmt.Sprintf("three-hops-%d", i))
		req.Header.Set("Authorization", "Bearer app-secret-token")
		req.Header.Set("Cookie", "session=app-secret-cookie")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("x-request-id") != fmt.Sprintf("three-hops-%d", i) {
			t.Fatalf("request %d: %d %s (x-request-id %q)", i, resp.StatusCode, body, resp.Header.Get("x-request-id"))
		}
	}

	api := "http://" + c.api
	var tr queryapi.Trace
	eventually(t, 30*time.Second, func() error {
		tr = queryapi.Trace{} // omitted fields must not keep a previous answer's values
		code, body := httpGet(t, api+"/api/v1/requests/three-hops-7", "", &tr)
		if code != 200 || len(tr.Spans) < 5 {
			return fmt.Errorf("request three-hops-7: %d, %d spans (%.300s)", code, len(tr.Spans), body)
		}
		return nil
	})
	var hops []string
	byID := map[string]queryapi.Span{}
	for _, s := range tr.Spans {
		hops = append(hops, s.Service+"/"+s.Kind)
		byID[s.SpanID] = s
		if s.TraceID != tr.TraceID || s.RequestID != "three-hops-7" {
			t.Errorf("span %+v: not of trace %s / request three-hops-7", s, tr.TraceID)
		}
		for k, v := range s.Attributes {
			if strings.Contains(v, "app-secret") {
				t.Errorf("span %s/%s stores a credential in %s", s.Service, s.Kind, k)
			}
		}
	}
	sort.Strings(hops)
	if got := strings.Join(hops, ","); got != "svc-a/client,svc-a/server,svc-b/client,svc-b/server,svc-c/server" {
		t.Fatalf("request three-hops-7 has spans %s, want A's and B's server and client spans and C's server span", got)
	}
	// Every span but the root hangs off another span of the trace.
	roots := 0
	for _, s := range tr.Spans {
		if _, ok := byID[s.ParentSpanID]; !ok {
			roots++
		}
	}
	if roots != 1 {
		for _, s := range tr.Spans {
			t.Logf("%s/%s span %s parent %q", s.Service, s.Kind, s.SpanID, s.ParentSpanID)
		}
		t.Errorf("%d spans without a parent in the trace, want 1 (the trace is not linked)", roots)
	}
	var byTrace queryapi.Trace
	if code, _ := httpGet(t, api+"/api/v1/traces/"+tr.TraceID, "", &byTrace); code != 200 || len(byTrace.Spans) != len(tr.Spans) {
		t.Errorf("trace %s: %d with %d spans, want %d", tr.TraceID, code, len(byTrace.Spans), len(tr.Spans))
	}

	// Discovery and latency from the histograms (flushed every second).
	eventually(t, 30*time.Second, func() error {
		var es struct{ Edges []queryapi.Edge }
		httpGet(t, api+"/api/v1/edges", "", &es)
		var got []string
		for _, e := range es.Edges {
			got = append(got, e.Caller+"->"+e.Callee)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "svc-a->svc-b,svc-b->svc-c" {
			return fmt.Errorf("edges %v, want svc-a->svc-b, svc-b->svc-c", got)
		}
		var l queryapi.Latency
		httpGet(t, api+"/api/v1/latency?service=svc-b&edge=svc-a->svc-b&from=10m", "", &l)
		if l.Requests != n || l.LatencyMs["p50"] <= 0 {
			return fmt.Errorf("svc-b inbound from svc-a: %d requests (want %d), p50 %v", l.Requests, n, l.LatencyMs["p50"])
		}
		// A service is first seen as its caller's peer (has_proxy false)
		// until its own sidecar's histograms arrive.
		var ss struct{ Services []queryapi.Service }
		httpGet(t, api+"/api/v1/services", "", &ss)
		if len(ss.Services) != 3 {
			return fmt.Errorf("services %+v, want svc-a, svc-b, svc-c", ss.Services)
		}
		for _, s := range ss.Services {
			if !s.HasProxy {
				return fmt.Errorf("service %s: has_proxy false, every service here has a sidecar", s.Name)
			}
		}
		return nil
	})
	_, metrics := httpGet(t, "http://"+c.metrics+"/metrics", "", nil)
	for _, want := range []string{
		`meshlens_requests_total{direction="outbound",method="GET",peer="svc-c",route="/work",service="svc-b",status_class="2xx"} 20`,
		`meshlens_requests_total{direction="inbound",method="GET",peer="svc-a",route="/work",service="svc-b",status_class="2xx"} 20`,
		`meshlens_edge_info{callee="svc-c",caller="svc-b"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	checkClassicNames(t, c.metrics)

	// The latency histograms carry exemplars naming traces that were
	// stored: svc-b's inbound hops are in the traces of these requests.
	var exemplars map[string]string
	eventually(t, 30*time.Second, func() error {
		var err error
		exemplars, err = exemplarTraces(t, c.metrics)
		if err != nil {
			return err
		}
		if exemplars["svc-b"] == "" {
			return fmt.Errorf("no exemplar with a trace ID on svc-b's meshlens_request_duration_seconds (%v)", exemplars)
		}
		return nil
	})
	var ex queryapi.Trace
	if code, body := httpGet(t, api+"/api/v1/traces/"+exemplars["svc-b"], "", &ex); code != 200 || len(ex.Spans) == 0 || !strings.HasPrefix(ex.Spans[0].RequestID, "three-hops-") {
		t.Errorf("exemplar trace %s: %d, %d spans (%.200s); want a stored trace of one of the requests", exemplars["svc-b"], code, len(ex.Spans), body)
	}
}
