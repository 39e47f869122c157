package dashboards

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/freeport"
)

// The sample mesh of the end-to-end test and the helpers that run real
// processes for it.

// mesh is the sample mesh: apps and their sidecars.
type mesh struct {
	entry        string // the frontend sidecar's inbound address
	sent, failed atomic.Int64
}

// startMesh starts frontend → checkout → payments → ledger. Each app passes
// the trace context and request ID on to the calls it makes, through its
// sidecar's outbound listener; ledger runs no sidecar.
func startMesh(t *testing.T, ctx context.Context, dir, meshproxy, collector string) *mesh {
	t.Helper()
	type svc struct {
		name              string
		inbound, outbound string
		calls             string // the service it calls, "" for none
		errRate           float64
		appLatency        time.Duration
	}
	svcs := []*svc{
		{name: "frontend", calls: "checkout", appLatency: time.Millisecond},
		{name: "checkout", calls: "payments", errRate: 0.05, appLatency: 2 * time.Millisecond},
		{name: "payments", calls: "ledger", errRate: 0.02, appLatency: 3 * time.Millisecond},
	}
	ledger := serveApp(t, "ledger", "", "", 0.01, 2*time.Millisecond)
	for _, s := range svcs {
		s.inbound, s.outbound = freeAddr(t), freeAddr(t)
	}
	upstreams := map[string]string{"checkout": svcs[1].inbound, "payments": svcs[2].inbound, "ledger": ledger}
	for _, s := range svcs {
		app := serveApp(t, s.name, s.outbound, s.calls, s.errRate, s.appLatency)
		startProcess(t, ctx, dir, "meshproxy-"+s.name, meshproxy, "--service", s.name,
			"--inbound", s.inbound, "--app", app, "--outbound", s.outbound,
			"--upstream", s.calls+"="+upstreams[s.calls],
			"--admin", freeAddr(t), "--collector", collector, "--flush-interval", "1s", "--log-level", "warn")
	}
	for _, s := range svcs {
		waitTCP(t, ctx, s.inbound)
		waitTCP(t, ctx, s.outbound)
	}
	return &mesh{entry: svcs[0].inbound}
}

// serveApp is one service's app: it waits a little (with a long tail),
// calls the next service through its sidecar when it has one, and fails
// now and then.
func serveApp(t *testing.T, name, outbound, calls string, errRate float64, latency time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := latency + time.Duration(rand.ExpFloat64()*float64(latency))
		time.Sleep(d)
		if calls != "" {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+outbound+r.URL.Path, nil)
			req.Host = calls
			for _, h := range []string{"traceparent", "tracestate", "x-request-id"} {
				if v := r.Header.Get(h); v != "" {
					req.Header.Set(h, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				http.Error(w, name+": call "+calls+": "+err.Error(), http.StatusBadGateway)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				http.Error(w, name+": "+calls+" failed", http.StatusBadGateway)
				return
			}
		}
		if rand.Float64() < errRate {
			http.Error(w, name+": injected failure", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintf(w, "%s ok\n", name)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// load sends rps requests per second to the mesh until stopped (or ctx
// ends), on two routes.
func (m *mesh) load(ctx context.Context, rps int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			path := "/cart"
			if i%3 == 0 {
				path = "/checkout"
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.entry+path, nil)
				resp, err := client.Do(req)
				m.sent.Add(1)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					m.failed.Add(1)
				}
			}()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			client.CloseIdleConnections()
		})
	}
}

func (m *mesh) counts() (sent, failed int64) { return m.sent.Load(), m.failed.Load() }

// startProcess starts a program in its own process group, its output in a
// log file, and stops it (SIGTERM, then SIGKILL) when the test ends,
// printing the log tail if the test failed.
func startProcess(t *testing.T, ctx context.Context, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
	_ = ctx
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func waitHTTP(t *testing.T, ctx context.Context, u string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 60 s", u)
}

func waitTCP(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not listening within 30 s", addr)
}
