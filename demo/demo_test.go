package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/report/reporttest"
)

// TestDemoRun runs the demo for 20 s: the final report lists every service
// of the sample mesh with traffic, payments' tail got worse after the
// degradation, the out directory holds the reports, the HTML report renders
// in Chromium with data, and no sidecar process is left.
func TestDemoRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 20 s")
	}
	bin := testenv.Tool(t, "meshproxy")
	meshlens := testenv.Tool(t, "meshlens")
	out, dataDir := t.TempDir(), t.TempDir()
	var screen bytes.Buffer
	res, err := Run(context.Background(), Options{
		Duration: 20 * time.Second, RPS: 40, DataDir: dataDir, OutDir: out,
		MeshproxyBinary: bin, Out: &screen, FlushInterval: time.Second, Refresh: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, screen.String())
	}
	t.Logf("demo output:\n%s", screen.String())
	got := map[string]int64{}
	for _, row := range res.Report.Services {
		got[row.Service] = row.Current.Requests
		if row.Previous == nil || row.Previous.Requests == 0 {
			t.Errorf("service %s: no traffic in the first half", row.Service)
		}
	}
	for _, s := range SampleMesh() {
		if got[s.Name] == 0 {
			t.Errorf("service %s has no traffic in the final report (%v)", s.Name, got)
		}
	}
	for _, row := range res.Report.Services {
		if row.Service == "payments" && (row.Change == nil || row.Change.P99 <= 0) {
			t.Errorf("payments p99 did not rise after the degradation: %+v", row.Change)
		}
	}
	if res.Load.Completed < res.Load.Sent*95/100 {
		t.Errorf("load: %d of %d requests completed", res.Load.Completed, res.Load.Sent)
	}
	for _, f := range []string{"report.txt", "report.json", "report.html", "report.hlog"} {
		fi, err := os.Stat(filepath.Join(out, f))
		if err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty in --out: %v", f, err)
		}
	}
	if !strings.Contains(screen.String(), "P99.9") {
		t.Error("the live table was never drawn")
	}
	dom, log := reporttest.DumpDOM(t, filepath.Join(out, "report.html"))
	reporttest.CheckRendered(t, dom, log, len(SampleMesh()))
	if kids := childProcesses(t); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}

	// The commands read what the demo stored.
	text := run(t, meshlens, "report", "--data-dir", dataDir, "--since", "10m")
	for _, s := range SampleMesh() {
		if !strings.Contains(text, "\n  "+s.Name+" ") {
			t.Errorf("meshlens report lists no service %s:\n%s", s.Name, text)
		}
	}
	tree := run(t, meshlens, "traces", "--data-dir", dataDir, "--request-id", "demo-10")
	if !strings.Contains(tree, "(request demo-10)") || !strings.Contains(tree, "frontend ") || !strings.Contains(tree, "catalog ") {
		t.Errorf("meshlens traces: want the request's spans through frontend and catalog:\n%s", tree)
	}
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

// childProcesses lists the processes whose parent is this test process.
func childProcesses(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == me && !strings.Contains(s[:i], "chromium") {
			out = append(out, e.Name()+" "+s[:i+1])
		}
	}
	return out
}
