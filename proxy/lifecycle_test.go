package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// namedBackend answers with its name; requests to /slow wait for release.
func namedBackend(t *testing.T, name string, release <-chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func getBody(t *testing.T, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReloadKeepsInFlight(t *testing.T) {
	release := make(chan struct{})
	one := namedBackend(t, "one", release)
	two := namedBackend(t, "two", nil)
	cfg := outboundConfig("web", UpstreamConfig{Name: "svc", Endpoints: []string{hostPort(t, one)}})
	p := startProxy(t, cfg)
	c := client(t)
	url := "http://" + p.OutboundAddr()

	inflight := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", url+"/slow", nil)
		req.Host = "svc"
		resp, err := c.Do(req)
		if err != nil {
			inflight <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- string(b)
	}()
	waitFor(t, func() bool {
		return counterValue(t, p.reg, "meshproxy_requests_in_flight", map[string]string{"direction": "outbound"}) == 1
	})

	next := p.Config()
	next.Upstreams = []UpstreamConfig{{Name: "svc", Endpoints: []string{hostPort(t, two)}, Protocol: ProtocolAuto}, {Name: "extra", Endpoints: []string{hostPort(t, two)}, Protocol: ProtocolAuto}}
	if err := p.Reload(next); err != nil {
		t.Fatal(err)
	}
	if _, body := getBody(t, c, url+"/", "svc"); body != "two" {
		t.Errorf("after reload got %q, want two", body)
	}
	if _, body := getBody(t, c, url+"/", "extra"); body != "two" {
		t.Errorf("new upstream got %q", body)
	}
	close(release)
	if got := <-inflight; got != "one" {
		t.Errorf("in-flight request got %q, want one", got)
	}

	// A reload that fails validation keeps the running config.
	bad := p.Config()
	bad.Upstreams = append([]UpstreamConfig(nil), bad.Upstreams...)
	bad.Upstreams[0].Endpoints = []string{"not-an-address"}
	if err := p.Reload(bad); err == nil || !strings.Contains(err.Error(), "upstreams[0].endpoints[0]") {
		t.Errorf("bad reload: %v", err)
	}
	moved := p.Config()
	moved.Outbound = &OutboundConfig{Listen: "127.0.0.1:1"}
	if err := p.Reload(moved); err == nil || !strings.Contains(err.Error(), "outbound.listen") {
		t.Errorf("listener change: %v", err)
	}
	if _, body := getBody(t, c, url+"/", "svc"); body != "two" {
		t.Errorf("after refused reload got %q", body)
	}
	if ok, failed := counterValue(t, p.reg, "meshproxy_config_reloads_total", map[string]string{"result": "success"}),
		counterValue(t, p.reg, "meshproxy_config_reloads_total", map[string]string{"result": "failure"}); ok != 1 || failed != 2 {
		t.Errorf("reloads counted ok=%v failed=%v", ok, failed)
	}
}

func TestConfigFileWatch(t *testing.T) {
	one := namedBackend(t, "one", nil)
	two := namedBackend(t, "two", nil)
	path := filepath.Join(t.TempDir(), "meshproxy.yaml")
	write := func(endpoint string) {
		body := "service: web\noutbound:\n  listen: 127.0.0.1:0\nupstreams:\n  - name: svc\n    endpoints: [" + endpoint + "]\n"
		if err := os.WriteFile(path+".tmp", []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(hostPort(t, one))
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxyWith(t, cfg, Options{ConfigPath: path, WatchInterval: 20 * time.Millisecond})
	c := client(t)
	url := "http://" + p.OutboundAddr() + "/"
	if _, body := getBody(t, c, url, "svc"); body != "one" {
		t.Fatalf("got %q", body)
	}
	write(hostPort(t, two) + ", " + hostPort(t, two))
	waitFor(t, func() bool { _, b := getBody(t, c, url, "svc"); return b == "two" })

	os.WriteFile(path, []byte("service: web\nnonsense: [\n"), 0o600)
	waitFor(t, func() bool {
		return counterValue(t, p.reg, "meshproxy_config_reloads_total", map[string]string{"result": "failure"}) >= 1
	})
	if _, body := getBody(t, c, url, "svc"); body != "two" {
		t.Errorf("bad file replaced the config: %q", body)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closingSink records that Shutdown was called after the last hop.
type closingSink struct {
	*recordingSink
	closed   atomic.Bool
	hopsSeen atomic.Int64
}

func (s *closingSink) Shutdown(ctx context.Context) error {
	s.hopsSeen.Store(int64(s.count()))
	s.closed.Store(true)
	return nil
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	backend := namedBackend(t, "app", release)
	cfg := inboundConfig("users", hostPort(t, backend)).Defaults()
	cfg.Admin = "127.0.0.1:0"
	sink := &closingSink{recordingSink: newRecordingSink()}
	p, err := New(Options{Config: cfg, Logger: testLogger(t), Registry: newRegistry(), Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	url := "http://" + p.InboundAddr()
	var wg sync.WaitGroup
	results := make([]string, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(url + "/slow")
			if err != nil {
				results[i] = err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results[i] = string(b)
		}()
	}
	waitFor(t, func() bool {
		return counterValue(t, p.reg, "meshproxy_requests_in_flight", map[string]string{"direction": "inbound"}) == 3
	})

	done := make(chan error, 1)
	go func() { done <- p.Shutdown(context.Background()) }()
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + p.AdminAddr() + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	select {
	case err := <-done:
		t.Fatalf("shutdown returned before in-flight requests ended: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	wg.Wait()
	for i, r := range results {
		if r != "app" {
			t.Errorf("request %d got %q", i, r)
		}
	}
	if !sink.closed.Load() || sink.hopsSeen.Load() != 3 {
		t.Errorf("sink closed %v after %d hops, want after 3", sink.closed.Load(), sink.hopsSeen.Load())
	}
	if _, err := c.Get(url + "/"); err == nil {
		t.Errorf("listener still accepts after shutdown")
	}
}

func TestShutdownDeadline(t *testing.T) {
	backend := namedBackend(t, "app", make(chan struct{})) // never released
	cfg := inboundConfig("users", hostPort(t, backend))
	cfg.Timeouts.Drain = 200 * time.Millisecond
	cfg = cfg.Defaults()
	p, err := New(Options{Config: cfg, Logger: testLogger(t), Registry: newRegistry(), Sink: newRecordingSink()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	go func() {
		if resp, err := c.Get("http://" + p.InboundAddr() + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool {
		return counterValue(t, p.reg, "meshproxy_requests_in_flight", map[string]string{"direction": "inbound"}) == 1
	})
	start := time.Now()
	err = p.Shutdown(context.Background())
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("shutdown after %v: %v", time.Since(start), err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	backend := newEchoBackend(t)
	cfg := inboundConfig("users", hostPort(t, backend.Server))
	cfg.Admin = "127.0.0.1:0"
	cfg.Telemetry.Token = "s3cret-token"
	stats := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"hops":[]}`) })
	p := startProxyWith(t, cfg, Options{AdminHandlers: map[string]http.Handler{"GET /stats": stats}})
	c := client(t)
	getBody(t, c, "http://"+p.InboundAddr()+"/x", "users")
	admin := "http://" + p.AdminAddr()
	for path, want := range map[string]string{
		"/live":    "live",
		"/ready":   "ready",
		"/stats":   `{"hops":[]}`,
		"/config":  "token: REDACTED",
		"/metrics": `meshproxy_requests_total{direction="inbound"} 1`,
	} {
		code, body := getBody(t, c, admin+path, "")
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
		if strings.Contains(body, "s3cret") {
			t.Errorf("%s leaks the token", path)
		}
	}
}
