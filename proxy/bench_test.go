package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshlens/meshlens/proxy/telemetry"
)

// The forwarding benchmarks send 1 KiB POSTs over HTTP/1.1 keep-alive
// through a proxy to an httptest backend that answers 1 KiB. Client,
// proxy and backend share the process, so ns/op and allocs/op include all
// three; compare meshproxy with the bare httputil.ReverseProxy (idle pool
// sized to the load), which has the same client and backend around it.

var benchBody = bytes.Repeat([]byte("x"), 1024)

func benchBackend(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(benchBody)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func runForwardBench(b *testing.B, addr string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + addr + "/users/42"
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	defer func() {
		// CPU time of the whole process (client, proxy, backend) per
		// request: steadier than wall time on a shared machine.
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(benchBody))
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					break
				}
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkForwardMeshproxy: meshproxy inbound with the real telemetry
// sink (HDR recording on; no collector so nothing leaves the process).
func BenchmarkForwardMeshproxy(b *testing.B) { benchMeshproxy(b, true) }

// BenchmarkForwardMeshproxyNoTelemetry: the same with a sink that drops
// every hop, to see what recording costs.
func BenchmarkForwardMeshproxyNoTelemetry(b *testing.B) { benchMeshproxy(b, false) }

type dropSink struct{}

func (dropSink) Finish(*telemetry.Hop) {}

func benchMeshproxy(b *testing.B, withTelemetry bool) {
	backend := benchBackend(b)
	cfg := inboundConfig("users", hostPort(b, backend))
	cfg.Inbound.Routes = []string{"/users/{id}"}
	cfg = cfg.Defaults()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	var sink telemetry.Sink = dropSink{}
	if withTelemetry {
		t, err := telemetry.New(cfg.Telemetry, cfg.Service, reg, log)
		if err != nil {
			b.Fatal(err)
		}
		sink = t
	}
	p, err := New(Options{Config: cfg, Logger: log, Registry: reg, Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(b.Context())
	runForwardBench(b, p.InboundAddr())
}

// BenchmarkForwardBareReverseProxy is the floor for a Go proxy that does
// nothing but forward.
func BenchmarkForwardBareReverseProxy(b *testing.B) {
	backend := benchBackend(b)
	target, _ := url.Parse(backend.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	defer tr.CloseIdleConnections()
	rp.Transport = tr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	defer srv.Close()
	runForwardBench(b, ln.Addr().String())
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
