package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
)

// TestHTMLInChromium opens the HTML report in headless Chromium: the page
// renders, both plots have data, and the console has no error.
func TestHTMLInChromium(t *testing.T) {
	chromium := testenv.Tool(t, "chromium")
	r := testReport(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`<link|<img|<iframe|\ssrc=|(href|url)\(?["']?https?://`).FindString(b.String()); m != "" {
		t.Errorf("the report is not self-contained: it holds %q", m)
	}
	dom, console := DumpDOM(t, chromium, page)
	if !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page's script did not finish; console:\n%s", console)
	}
	if n := attrInt(t, dom, `id="distribution"[^>]*data-points="(\d+)"`); n < len(r.Services)*10 {
		t.Errorf("distribution plot drew %d points, want at least 10 per service", n)
	}
	if n := attrInt(t, dom, `id="distribution"[^>]*data-lines="(\d+)"`); n != len(r.Services) {
		t.Errorf("distribution plot drew %d lines, want one per service (%d)", n, len(r.Services))
	}
	if got := len(regexp.MustCompile(`<svg[^>]*class="timeline"[^>]*data-points="[1-9]`).FindAllString(dom, -1)); got != len(r.Services) {
		t.Errorf("%d timeline plots with data, want %d", got, len(r.Services))
	}
	if errs := ConsoleErrors(console); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func attrInt(t *testing.T, dom, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no match for %s in the rendered page", pattern)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// DumpDOM renders page in headless Chromium and returns the DOM after the
// scripts ran and what Chromium logged (console messages included).
func DumpDOM(t *testing.T, chromium, page string) (dom, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, chromiumArgs(t, "--dump-dom", "file://"+page)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String(), errb.String()
}

func chromiumArgs(t *testing.T, extra ...string) []string {
	return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0"}, extra...)
}

// ConsoleErrors picks console messages and uncaught exceptions out of
// Chromium's log. Chromium logs every console message at INFO whatever its
// level, and the report's script logs nothing, so any message is an error.
func ConsoleErrors(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			out = append(out, line)
		}
	}
	return out
}
