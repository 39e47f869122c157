package collector

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshlens/meshlens/collector/internal/testhost"
)

// running is an in-process meshlens collector on the embedded default
// config, every listener moved to a free loopback port.
type running struct {
	hdr, grpc, metrics, api string
	dataDir                 string
	stop                    func()
}

func startCollector(t *testing.T, sets ...string) *running {
	t.Helper()
	r := &running{
		hdr: testhost.FreeAddr(t), grpc: testhost.FreeAddr(t),
		metrics: testhost.FreeAddr(t), api: testhost.FreeAddr(t),
		dataDir: filepath.Join(t.TempDir(), "data"),
	}
	o := Options{DataDir: r.dataDir, Set: append([]string{
		"receivers::meshlens_hdr::endpoint=" + r.hdr,
		"receivers::otlp::protocols::grpc::endpoint=" + r.grpc,
		"extensions::meshlens::metrics::endpoint=" + r.metrics,
		"extensions::meshlens::api::endpoint=" + r.api,
		"service::telemetry::logs::level=warn",
	}, sets...)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("collector: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("collector did not stop within 30s")
		}
	}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("collector stopped at start: %v", err)
		default:
		}
		if code, _ := httpGet(t, "http://"+r.api+"/healthz", "", nil); code == 200 {
			if code, _ := httpGet(t, "http://"+r.hdr+"/", "", nil); code == 404 {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("collector not ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet GETs url and decodes a 200 JSON answer into out; a connection
// error is status 0.
func httpGet(t *testing.T, url, token string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v in %.300s", url, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// eventually retries check every 200ms until it returns nil or timeout
// passes, then fails with its last error.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
