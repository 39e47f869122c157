package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/internal/testenv"
)

// collectorProc is a `meshlens collector` process on free loopback ports.
// Its ports and data directory stay the same across restarts.
type collectorProc struct {
	t                    *testing.T
	hdr, grpc, api, prom string
	dataDir, databaseURL string
	extra                []string
	cmd                  *exec.Cmd
	done                 chan struct{}
	logs                 *lockedBuffer
	started              bool // once: the ports are known to senders from then on
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newCollector(t *testing.T, databaseURL string, extra ...string) *collectorProc {
	t.Helper()
	c := &collectorProc{
		t: t, hdr: testhost.FreeAddr(t), grpc: testhost.FreeAddr(t), api: testhost.FreeAddr(t), prom: testhost.FreeAddr(t),
		dataDir: t.TempDir(), databaseURL: databaseURL, extra: extra, logs: &lockedBuffer{},
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("collector logs:\n%s", tail(c.logs.String(), 6000))
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// start runs the collector and waits until its query API and histogram
// receiver answer. A port found free can be taken by another test before
// the collector binds it: a first start that fails so goes again on new
// ports, a restart again on the same ones a moment later (up to 3 times).
func (c *collectorProc) start() {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		logged := len(c.logs.String())
		err := c.startOnce()
		if err == nil {
			c.started = true
			return
		}
		if !strings.Contains(c.logs.String()[logged:], "address already in use") || attempt == 3 {
			c.t.Fatal(err)
		}
		c.t.Logf("attempt %d: a port was taken; starting again", attempt)
		if c.started {
			time.Sleep(500 * time.Millisecond)
		} else {
			c.hdr, c.grpc, c.api, c.prom = testhost.FreeAddr(c.t), testhost.FreeAddr(c.t), testhost.FreeAddr(c.t), testhost.FreeAddr(c.t)
		}
	}
}

func (c *collectorProc) startOnce() error {
	args := []string{"collector", "--data-dir", c.dataDir,
		"--set", "receivers::meshlens_hdr::endpoint=" + c.hdr,
		"--set", "receivers::otlp::protocols::grpc::endpoint=" + c.grpc,
		"--set", "extensions::meshlens::metrics::endpoint=" + c.prom,
		"--set", "extensions::meshlens::api::endpoint=" + c.api,
		"--set", "service::telemetry::logs::level=warn"}
	if c.databaseURL != "" {
		args = append(args, "--database-url", c.databaseURL)
	}
	args = append(args, c.extra...)
	cmd := exec.Command(testenv.Tool(c.t, "meshlens"), args...)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.cmd, c.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			c.cmd = nil
			return fmt.Errorf("collector exited at start: %v\n%s", cmd.ProcessState, tail(c.logs.String(), 4000))
		default:
		}
		if httpStatus("http://"+c.api+"/healthz") == 200 && httpStatus("http://"+c.hdr+"/") == 404 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("collector not ready within 60s\n%s", tail(c.logs.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *collectorProc) kill() {
	c.t.Helper()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.cmd = nil
}

// stop asks the collector to shut down (SIGTERM) and kills it after 30s.
func (c *collectorProc) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.t.Errorf("collector did not stop within 30s of SIGTERM")
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	}
	c.cmd = nil
}

func httpStatus(u string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// migratedDatabase is a PostgreSQL database of the test's own with the
// schema applied by `meshlens migrate up`.
func migratedDatabase(t *testing.T) string {
	t.Helper()
	u := testenv.PostgresDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.Tool(t, "meshlens"), "migrate", "up", "--database-url", u).CombinedOutput()
	if err != nil {
		t.Fatalf("meshlens migrate up: %v\n%s", err, out)
	}
	return u
}

// withHost returns the URL u pointing at host:port addr instead.
func withHost(t *testing.T, u, addr string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = addr
	return p.String()
}

// pgQuery runs one query returning rows of (text, bigint).
func pgCounts(t *testing.T, u, sql string) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// behindToxiproxy starts a collector (not yet running) whose store is a
// fresh migrated database reached through Toxiproxy's proxy "pg", and
// returns it with the Toxiproxy and the database's direct URL.
func behindToxiproxy(t *testing.T, extra ...string) (*collectorProc, *toxiproxy, string) {
	t.Helper()
	db := migratedDatabase(t)
	u, _ := url.Parse(db)
	tp := startToxiproxy(t)
	listen := tp.proxy(t, "pg", u.Host)
	return newCollector(t, withHost(t, db, listen), extra...), tp, db
}

// toxiproxy is a toxiproxy-server process, driven through its HTTP API.
type toxiproxy struct {
	api string
}

func startToxiproxy(t *testing.T) *toxiproxy {
	t.Helper()
	addr := testhost.FreeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, testenv.Tool(t, "toxiproxy-server"), "-host", host, "-port", port)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("toxiproxy-server:\n%s", tail(logs.String(), 3000))
		}
	})
	tp := &toxiproxy{api: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for httpStatus(tp.api+"/version") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("toxiproxy-server not answering on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return tp
}

func (tp *toxiproxy) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, tp.api+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("toxiproxy %s %s: %s %s", method, path, resp.Status, raw.String())
	}
	if out != nil {
		if err := json.Unmarshal(raw.Bytes(), out); err != nil {
			t.Fatalf("toxiproxy %s %s: %v in %s", method, path, err, raw.String())
		}
	}
}

// proxy creates a proxy to upstream and returns the address it listens on.
func (tp *toxiproxy) proxy(t *testing.T, name, upstream string) string {
	t.Helper()
	listen := testhost.FreeAddr(t)
	var p struct {
		Listen string `json:"listen"`
	}
	tp.call(t, http.MethodPost, "/proxies", map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true}, &p)
	if p.Listen == "" {
		t.Fatalf("toxiproxy: proxy %s has no listen address", name)
	}
	return p.Listen
}

// setEnabled enables or disables a proxy: disabled, it closes every
// connection and refuses new ones, as a database that went away.
func (tp *toxiproxy) setEnabled(t *testing.T, name string, enabled bool) {
	t.Helper()
	tp.call(t, http.MethodPost, "/proxies/"+name, map[string]any{"enabled": enabled}, nil)
}

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
		time.Sleep(500 * time.Millisecond)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// TestStartOnTakenPort: a port taken between being found free and the
// collector binding it (here held on purpose) makes the first start go
// again on new ports.
func TestStartOnTakenPort(t *testing.T) {
	t.Parallel()
	c := newCollector(t, "")
	ln, err := net.Listen("tcp", c.grpc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := c.grpc
	c.start()
	if c.grpc == taken {
		t.Fatalf("the collector started on %s, which was taken", taken)
	}
	if !strings.Contains(c.logs.String(), "address already in use") {
		t.Error("the first attempt did not meet the taken port")
	}
}
