package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/meshlens/meshlens/report"
	"github.com/meshlens/meshlens/report/reporttest"
)

// TestHTMLInChromium opens the HTML report in headless Chromium: the page
// renders, both plots have data, and the console has no error.
func TestHTMLInChromium(t *testing.T) {
	r := report.TestReport(t)
	var b bytes.Buffer
	if err := report.WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`<link|<img|<iframe|\ssrc=|(href|url)\(?["']?https?://`).FindString(b.String()); m != "" {
		t.Errorf("the report is not self-contained: it holds %q", m)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, log := reporttest.DumpDOM(t, page)
	reporttest.CheckRendered(t, dom, log, len(r.Services))
}
