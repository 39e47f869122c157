package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/freeport"
)

// buildBinary builds meshproxy once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshproxy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestBadConfigRefusedOnOneLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("service: web\noutbound:\n  listen: 127.0.0.1:0\nupstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\n  - name: b\n    endpoints: [nope]\n"), 0o600)
	for _, args := range [][]string{
		{"--config", cfg},
		{"--service", "web", "--outbound", "127.0.0.1:0", "--upstream", "b=nope"},
		{"--config", cfg, "--service", "x"},
		{"--service", "web"},
	} {
		var stderr bytes.Buffer
		code := run(args, &stderr)
		msg := strings.TrimRight(stderr.String(), "\n")
		if code != 2 || msg == "" || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
		if args[0] == "--config" && len(args) == 2 && !strings.Contains(msg, "upstreams[1].endpoints[0]") {
			t.Errorf("error does not name the field: %q", msg)
		}
	}
}

// TestServeReloadAndStop runs the binary: it forwards, reloads on SIGHUP,
// and exits 0 on SIGTERM after draining.
func TestServeReloadAndStop(t *testing.T) {
	bin := buildBinary(t)
	one := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "one") }))
	defer one.Close()
	two := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "two") }))
	defer two.Close()

	out, admin := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "meshproxy.yaml")
	writeCfg := func(endpoint string) {
		body := "service: web\nadmin: " + admin + "\noutbound:\n  listen: " + out + "\nupstreams:\n  - name: svc\n    endpoints: [" + endpoint + "]\n"
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(one.Listener.Addr().String())
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	c := &http.Client{Timeout: 2 * time.Second}
	get := func(url, host string) string {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitUntil(t, func() bool { return get("http://"+admin+"/ready", "") == "ready\n" })
	if got := get("http://"+out+"/", "svc"); got != "one" {
		t.Fatalf("got %q", got)
	}
	writeCfg(two.Listener.Addr().String())
	cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, func() bool { return get("http://"+out+"/", "svc") == "two" })
	if m := get("http://"+admin+"/metrics", ""); !strings.Contains(m, `meshproxy_config_reloads_total{result="success"}`) || !strings.Contains(m, "meshproxy_requests_total") {
		t.Errorf("metrics lack data-plane counters")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("did not stop on SIGTERM\n%s", stderr.String())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
