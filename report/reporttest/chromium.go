// Package reporttest opens HTML reports in headless Chromium for tests.
package reporttest

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
)

// DumpDOM renders the page at path in headless Chromium (Debian's
// chromium) and returns the DOM after its scripts ran and what Chromium
// logged, console messages included.
func DumpDOM(t testing.TB, path string) (dom, log string) {
	t.Helper()
	chromium := testenv.Tool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + path}
	cmd := exec.CommandContext(ctx, chromium, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String(), errb.String()
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

// CheckRendered checks a rendered report: its script finished, the
// distribution plot has one line per service with at least 10 points each,
// every service has a timeline plot with data, and the console is silent.
func CheckRendered(t testing.TB, dom, log string, services int) {
	t.Helper()
	if !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page's script did not finish; chromium log:\n%s", log)
	}
	if n := attrInt(t, dom, `id="distribution"[^>]*data-points="(\d+)"`); n < services*10 {
		t.Errorf("distribution plot drew %d points, want at least 10 per service", n)
	}
	if n := attrInt(t, dom, `id="distribution"[^>]*data-lines="(\d+)"`); n != services {
		t.Errorf("distribution plot drew %d lines, want one per service (%d)", n, services)
	}
	if got := len(regexp.MustCompile(`<svg[^>]*class="timeline"[^>]*data-points="[1-9]`).FindAllString(dom, -1)); got != services {
		t.Errorf("%d timeline plots with data, want %d", got, services)
	}
	if errs := ConsoleErrors(log); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

func attrInt(t testing.TB, dom, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no match for %s in the rendered page", pattern)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
