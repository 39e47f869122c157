package demo

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
)

// TestDemoInterrupt starts `meshlens demo` with no duration, interrupts it
// as Ctrl-C would once the live table shows, and checks that it exits and
// that none of its sidecars survives.
func TestDemoInterrupt(t *testing.T) {
	bin := testenv.Tool(t, "meshlens")
	testenv.Tool(t, "meshproxy")
	cmd := exec.Command(bin, "demo", "--duration", "0", "--rps", "20", "--data-dir", t.TempDir(), "--out", t.TempDir(), "--refresh", "1s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	live := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "P99.9") {
				once = true
				close(live)
			}
		}
	}()
	select {
	case <-live:
	case <-time.After(90 * time.Second):
		t.Fatalf("no live table after 90 s; stderr:\n%s", stderr.String())
	}
	sidecars := descendants(t, cmd.Process.Pid)
	if len(sidecars) < len(SampleMesh()) {
		t.Fatalf("%d sidecar processes running, want %d", len(sidecars), len(SampleMesh()))
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("exit: %v, want status 130; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("demo still running 60 s after SIGINT")
	}
	for _, pid := range sidecars {
		if _, err := os.Stat("/proc/" + pid); err == nil {
			t.Errorf("sidecar process %s survived the interrupt", pid)
		}
	}
}

// descendants lists the direct children of pid.
func descendants(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, e.Name())
		}
	}
	return out
}
