package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/freeport"
	"github.com/meshlens/meshlens/internal/testenv"
)

// TestEndToEndPageReachesAlertmanager runs the whole path on loopback:
// real proxies (bin/meshproxy) in front of two services, the collector
// (bin/meshlens collector) they report to, a real Prometheus scraping it
// with the rules `meshlens generate alerts` wrote (windows scaled 1h→1m),
// and a real Alertmanager with the generated configuration, whose webhook
// is this test. Errors are injected into one service; its page must arrive
// with the right labels and links, and nothing may fire for the other.
func TestEndToEndPageReachesAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test (about two minutes)")
	}
	meshlens := testenv.Tool(t, "meshlens")
	meshproxy := testenv.Tool(t, "meshproxy")
	prometheus := testenv.Tool(t, "prometheus")
	alertmanager := alertmanagerBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The webhook receiver: Alertmanager posts notifications here.
	hook := newWebhook()
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	// Two services; api fails on demand.
	var apiFailing atomic.Bool
	app := func(name string, failing *atomic.Bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing != nil && failing.Load() {
				http.Error(w, name+" is down", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, name+" ok\n")
		}))
	}
	webApp, apiApp := app("web", nil), app("api", &apiFailing)
	defer webApp.Close()
	defer apiApp.Close()

	ports := freePorts(t, 10)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	hdrAddr, metricsAddr, apiAddr := addr(1), addr(2), addr(3)
	promAddr, amAddr := addr(4), addr(5)

	start(t, ctx, dir, "collector", meshlens, "collector", "--data-dir", filepath.Join(dir, "collector"),
		"--set", "receivers::otlp::protocols::grpc::endpoint="+addr(0),
		"--set", "receivers::meshlens_hdr::endpoint="+hdrAddr,
		"--set", "extensions::meshlens::metrics::endpoint="+metricsAddr,
		"--set", "extensions::meshlens::api::endpoint="+apiAddr,
		"--set", "exporters::meshlens_analytics::slo_thresholds=[0.5]")
	waitHTTP(t, ctx, "http://"+metricsAddr+"/metrics")
	proxies := map[string]string{}
	for i, svc := range []struct {
		name string
		app  *httptest.Server
	}{{"web", webApp}, {"api", apiApp}} {
		in, admin := addr(6+2*i), addr(7+2*i)
		start(t, ctx, dir, "proxy-"+svc.name, meshproxy, "--service", svc.name, "--inbound", in,
			"--app", strings.TrimPrefix(svc.app.URL, "http://"), "--admin", admin,
			"--collector", "http://"+hdrAddr, "--flush-interval", "1s", "--log-level", "warn")
		waitHTTP(t, ctx, "http://"+admin+"/ready")
		proxies[svc.name] = "http://" + in
	}

	// Generate the rules and the Alertmanager configuration with the CLI.
	rulesDir := filepath.Join(dir, "rules")
	run(t, ctx, meshlens, "generate", "alerts", "--out", rulesDir, "--service", "web", "--service", "api",
		"--window-scale", "1h=1m", "--grafana-url", "http://grafana.example:3000", "--trace-url", "http://"+apiAddr,
		"--runbook-url", "https://runbooks.example/slo/{{ $labels.slo }}",
		"--page-webhook-url", hookSrv.URL+"/page", "--ticket-webhook-url", hookSrv.URL+"/ticket")
	promtool := testenv.Tool(t, "promtool")
	rules, _ := filepath.Glob(filepath.Join(rulesDir, "slo-*.rules.yml"))
	run(t, ctx, promtool, append([]string{"check", "rules"}, rules...)...)

	start(t, ctx, dir, "alertmanager", alertmanager,
		"--config.file="+filepath.Join(rulesDir, AlertmanagerFile),
		"--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	waitHTTP(t, ctx, "http://"+amAddr+"/-/ready")

	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: meshlens
    static_configs: [{targets: [%q]}]
alerting:
  alertmanagers:
    - static_configs: [{targets: [%q]}]
`, filepath.Join(rulesDir, "slo-*.rules.yml"), metricsAddr, amAddr)
	promFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promFile, []byte(promCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, ctx, dir, "prometheus", prometheus, "--config.file="+promFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--web.enable-lifecycle")
	waitHTTP(t, ctx, "http://"+promAddr+"/-/ready")

	// Traffic: about 40 requests a second to each service, bounded in time.
	loadCtx, stopLoad := context.WithTimeout(ctx, 3*time.Minute)
	defer stopLoad()
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for _, base := range proxies {
		wg.Add(1)
		go func(base string) {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			tick := time.NewTicker(25 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 10000; i++ {
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
				}
				resp, err := client.Get(base + "/items")
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					failed.Add(1)
				}
			}
		}(base)
	}
	defer wg.Wait()
	defer stopLoad()

	// Healthy phase: the SLIs get data and nothing fires.
	promAPI := "http://" + promAddr
	waitFor(t, ctx, 60*time.Second, "recorded SLIs for api and web", func() bool {
		n := promQueryCount(ctx, promAPI, `meshlens:slo_error_ratio:rate1m{slo=~"(api|web)-availability"}`)
		return n == 2
	})
	time.Sleep(10 * time.Second)
	if got := hook.all(); len(got) > 0 {
		t.Fatalf("alerts during healthy traffic: %+v", got)
	}

	// Outage of api.
	injected := time.Now()
	apiFailing.Store(true)
	var page webhookAlert
	waitFor(t, ctx, 90*time.Second, "the api page at the webhook", func() bool {
		for _, a := range hook.all() {
			if a.receiverPath == "/page" && a.Status == "firing" && a.Labels["slo"] == "api-availability" {
				page = a
				return true
			}
		}
		return false
	})
	t.Logf("page arrived %v after the errors started (%d requests sent, %d failed)", time.Since(injected).Round(time.Second), sent.Load(), failed.Load())

	want := map[string]string{
		"alertname": AlertName, "severity": "page", "service": "api", "slo": "api-availability",
		"slo_kind": "availability", "long_window": "1m", "short_window": "5s",
	}
	for k, v := range want {
		if page.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, page.Labels[k], v, page.Labels)
		}
	}
	ann := page.Annotations
	checks := []struct{ name, contains string }{
		{"dashboard", "http://grafana.example:3000/d/meshlens-svc-api/meshlens-svc-api?from="},
		{"trace_search", "http://" + apiAddr + "/search?service=api&lookback=custom&limit=20&start="},
		{"runbook_url", "https://runbooks.example/slo/api-availability"},
		{"summary", "api: SLO api-availability is burning its error budget"},
		{"error_budget_left", "%"},
	}
	for _, c := range checks {
		if !strings.Contains(ann[c.name], c.contains) {
			t.Errorf("annotation %s = %q, want it to contain %q", c.name, ann[c.name], c.contains)
		}
	}
	if strings.Contains(ann["dashboard"], "now-") || strings.HasSuffix(ann["trace_search"], "start=&end=") {
		t.Errorf("links without the burning window's times: %q %q", ann["dashboard"], ann["trace_search"])
	}
	if b, err := strconv.ParseFloat(ann["burn_rate"], 64); err != nil || b <= 14.4 {
		t.Errorf("burn_rate annotation %q, want > 14.4", ann["burn_rate"])
	}
	for _, a := range hook.all() {
		if a.Labels["service"] != "api" {
			t.Errorf("alert for a healthy service: %+v", a)
		}
	}

	// The CLI reads the same picture from Prometheus.
	status := output(t, ctx, meshlens, "slo", "status", "--prometheus", promAPI, "--service", "web", "--service", "api")
	t.Logf("meshlens slo status:\n%s", status)
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || (f[0] != "api-availability" && f[0] != "web-availability") {
			continue
		}
		burn5m := strings.TrimPrefix(f[len(f)-7], "5m=")
		b, err := strconv.ParseFloat(burn5m, 64)
		switch {
		case err != nil:
			t.Errorf("status line without a 5m burn rate: %q", line)
		case f[0] == "api-availability" && b < 14.4:
			t.Errorf("api burn rate over 5m %v, want > 14.4: %q", b, line)
		case f[0] == "web-availability" && b != 0:
			t.Errorf("web burn rate over 5m %v, want 0: %q", b, line)
		}
	}
	propose := output(t, ctx, meshlens, "slo", "propose", "--prometheus", promAPI)
	t.Logf("meshlens slo propose:\n%s", propose)
	if !strings.Contains(propose, "api-latency") || !strings.Contains(propose, "web-latency") {
		t.Errorf("propose does not cover both discovered services:\n%s", propose)
	}
	fromCollector := output(t, ctx, meshlens, "slo", "propose", "--collector", "http://"+apiAddr)
	t.Logf("meshlens slo propose --collector:\n%s", fromCollector)
	if !strings.Contains(fromCollector, "api-latency") || !strings.Contains(fromCollector, "web-latency") {
		t.Errorf("propose from the collector does not cover both discovered services:\n%s", fromCollector)
	}
}

func output(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return string(out)
}

// alertmanagerBinary finds Alertmanager: upstream's name, or Debian's.
func alertmanagerBinary(t *testing.T) string {
	if p, err := exec.LookPath("alertmanager"); err == nil {
		return p
	}
	return testenv.Tool(t, "prometheus-alertmanager")
}

type webhookAlert struct {
	receiverPath string
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
}

// webhook collects Alertmanager webhook notifications.
type webhook struct {
	mu     sync.Mutex
	alerts []webhookAlert
}

func newWebhook() *webhook { return &webhook{} }

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []webhookAlert `json:"alerts"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	for _, a := range msg.Alerts {
		a.receiverPath = r.URL.Path
		h.alerts = append(h.alerts, a)
	}
	h.mu.Unlock()
}

func (h *webhook) all() []webhookAlert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhookAlert(nil), h.alerts...)
}

// freePorts returns n distinct loopback ports free right now.
func freePorts(t *testing.T, n int) []int {
	var out []int
	for len(out) < n {
		p, err := freeport.Port()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// start runs a process for the rest of the test, its output in dir/name.log
// (printed when the test fails).
func start(t *testing.T, ctx context.Context, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
}

func run(t *testing.T, ctx context.Context, bin string, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

func waitHTTP(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	waitFor(t, ctx, 30*time.Second, url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(t *testing.T, ctx context.Context, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ok() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// promQueryCount returns how many series an instant query returns (-1 on
// error).
func promQueryCount(ctx context.Context, base, expr string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return -1
	}
	return len(r.Data.Result)
}
