package proxy

import (
	"bytes"
	"encoding/xml"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/meshlens/meshlens/internal/testenv"
)

// knownGoH2CFailures are the h2spec cases Go's own h2c server fails.
var knownGoH2CFailures = map[string]bool{
	"http2/3.5/2":     true,
	"http2/4.2/3":     true,
	"http2/6.5.3/1":   true,
	"http2/8.1.2.2/1": true,
	"http2/8.1.2.2/2": true,
}

type junitSuites struct {
	Suites []struct {
		Name    string `xml:"name,attr"`
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// runH2spec runs h2spec against addr and returns total, passed, skipped
// and the IDs of failed cases.
func runH2spec(t *testing.T, bin, addr string, specs ...string) (total, passed, skipped int, failed []string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	if len(specs) == 0 {
		specs = []string{"http2", "hpack", "generic"}
	}
	cmd := exec.Command(bin, append([]string{"-h", host, "-p", port, "-o", "2", "-j", report}, specs...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // non-zero when anything failed; the report says what
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("h2spec wrote no report: %v\n%s", err, out.String())
	}
	var js junitSuites
	if err := xml.Unmarshal(data, &js); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	for _, s := range js.Suites {
		for i, c := range s.Cases {
			total++
			switch {
			case c.Failure != nil || c.Error != nil:
				failed = append(failed, h2specID(s.Package, i+1))
			case c.Skipped != nil:
				skipped++
			default:
				passed++
			}
		}
	}
	sort.Strings(failed)
	return total, passed, skipped, failed
}

// h2specID turns a report's package ("http2/8.1.2.2") and 1-based case
// index into h2spec's test ID ("http2/8.1.2.2/1").
func h2specID(pkg string, n int) string {
	return pkg + "/" + formatIntTest(n)
}

func formatIntTest(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return formatIntTest(n/10) + string(rune('0'+n%10))
}

// TestH2spec runs h2spec against a bare Go h2c server and against the
// proxy's inbound h2c listener in front of the same handler: the proxy may
// fail only what Go's server fails (or the documented list).
func TestH2spec(t *testing.T) {
	bin := testenv.Tool(t, "h2spec")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok"))
	})
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	bare := &http.Server{Handler: handler, Protocols: &protos}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go bare.Serve(ln)
	defer bare.Close()

	bTotal, bPassed, bSkipped, bFailed := runH2spec(t, bin, ln.Addr().String())
	t.Logf("h2spec bare Go h2c server: %d tests, %d passed, %d skipped, %d failed %v", bTotal, bPassed, bSkipped, len(bFailed), bFailed)

	p := startProxy(t, inboundConfig("users", ln.Addr().String()))
	total, passed, skipped, failed := runH2spec(t, bin, p.InboundAddr())
	t.Logf("h2spec meshproxy inbound h2c:  %d tests, %d passed, %d skipped, %d failed %v", total, passed, skipped, len(failed), failed)
	if total < 100 {
		t.Fatalf("h2spec ran only %d tests", total)
	}
	bareFailed := map[string]bool{}
	for _, id := range bFailed {
		bareFailed[id] = true
	}
	var extra []string
	for _, id := range failed {
		if !bareFailed[id] && !knownGoH2CFailures[id] {
			extra = append(extra, id)
		}
	}
	if len(extra) > 0 {
		// h2spec judges some cases by a 2 s timeout, which a loaded machine
		// can miss: run those once more on their own.
		t.Logf("re-running %v", extra)
		if _, _, _, again := runH2spec(t, bin, p.InboundAddr(), extra...); len(again) == 0 {
			extra = nil
		}
	}
	if len(extra) > 0 {
		t.Errorf("proxy fails h2spec cases Go's h2c server passes: %s", strings.Join(extra, ", "))
	}
}
