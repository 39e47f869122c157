package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/freeport"
	"github.com/meshlens/meshlens/internal/testenv"
)

// loopbackSets moves every listener of the default config to a free
// loopback port.
func loopbackSets(t *testing.T) []string {
	t.Helper()
	var args []string
	for _, key := range []string{
		"receivers::meshlens_hdr::endpoint", "receivers::otlp::protocols::grpc::endpoint",
		"extensions::meshlens::metrics::endpoint", "extensions::meshlens::api::endpoint",
	} {
		addr, err := freeport.Addr()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--set", key+"="+addr)
	}
	return append(args, "--set", "service::telemetry::logs::level=error")
}

// collectorStderr runs `meshlens collector args...` in process until it
// returns or ctx ends, and returns its exit code and what it wrote to
// stderr.
func collectorStderr(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stderr
	os.Stderr = f
	code := runCollector(ctx, args)
	os.Stderr = saved
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b)
}

// TestCollectorStoreFlags: --database-url, or MESHLENS_DATABASE_URL without
// it, selects PostgreSQL (here an unmigrated schema, which the collector
// refuses, naming the fix); the flag wins over the variable; with neither,
// the SQLite store and the queue go to --data-dir.
func TestCollectorStoreFlags(t *testing.T) {
	unmigrated := testenv.PostgresSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Setenv("MESHLENS_DATABASE_URL", unmigrated)
	code, stderr := collectorStderr(t, ctx, append([]string{"--data-dir", t.TempDir()}, loopbackSets(t)...)...)
	if code != 1 || !strings.Contains(stderr, "meshlens migrate up --database-url") {
		t.Fatalf("MESHLENS_DATABASE_URL on an unmigrated schema: exit %d, stderr %q; want 1 naming meshlens migrate up", code, stderr)
	}

	t.Setenv("MESHLENS_DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing")
	code, stderr = collectorStderr(t, ctx, append([]string{"--data-dir", t.TempDir(), "--database-url", unmigrated}, loopbackSets(t)...)...)
	if code != 1 || !strings.Contains(stderr, "meshlens migrate up --database-url") {
		t.Fatalf("--database-url over MESHLENS_DATABASE_URL: exit %d, stderr %q; want 1 naming meshlens migrate up", code, stderr)
	}

	t.Setenv("MESHLENS_DATABASE_URL", "")
	dir := filepath.Join(t.TempDir(), "data")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	sets := loopbackSets(t)
	var grpcAddr string
	for _, a := range sets {
		if v, ok := strings.CutPrefix(a, "receivers::otlp::protocols::grpc::endpoint="); ok {
			grpcAddr = v
		}
	}
	go func() { done <- runCollector(runCtx, append([]string{"--data-dir", dir}, sets...)) }()
	deadline := time.After(30 * time.Second)
	for {
		_, errDB := os.Stat(filepath.Join(dir, "meshlens.db"))
		_, errQueue := os.Stat(filepath.Join(dir, "queue"))
		// Stopped before it has started (the store opens before the
		// receivers listen), the collector would rightly exit 1.
		started := false
		if conn, err := net.DialTimeout("tcp", grpcAddr, time.Second); err == nil {
			conn.Close()
			started = true
		}
		if errDB == nil && errQueue == nil && started {
			break
		}
		select {
		case code := <-done:
			stop()
			t.Fatalf("collector with --data-dir stopped with exit %d before creating %s/meshlens.db and %s/queue", code, dir, dir)
		case <-deadline:
			stop()
			<-done
			t.Fatalf("--data-dir %s: no meshlens.db and queue after 30s (%v, %v)", dir, errDB, errQueue)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("collector with --data-dir: exit %d after shutdown, want 0", code)
	}
}
