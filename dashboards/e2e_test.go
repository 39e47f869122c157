package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/alerts"
	"github.com/meshlens/meshlens/internal/testenv"
)

// TestEndToEnd runs the real thing: four apps (frontend → checkout →
// payments → ledger), three behind meshproxy sidecars (ledger runs none),
// a meshlens collector fed by the proxies, and two real Prometheus servers
// scraping it — one keeping native histograms, one classic buckets only —
// with the alerts generator's rules loaded. It generates the dashboards with
// `meshlens generate dashboards --prometheus-url` and runs every PromQL
// query of every panel against both servers: no query comes back empty,
// except the one query of a native/classic pair that the server does not
// keep. Exemplars of the latency panel carry trace IDs that the collector's
// Jaeger API opens, and the trace panels' searches find traces.
func TestEndToEnd(t *testing.T) {
	if *update {
		t.Skip("-update rewrites the golden files only")
	}
	meshlens := testenv.Tool(t, "meshlens")
	meshproxy := testenv.Tool(t, "meshproxy")
	prometheus := testenv.Tool(t, "prometheus")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// The collector.
	metricsAddr, apiAddr, otlpGRPC, otlpHTTP := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	startProcess(t, ctx, dir, "collector", meshlens, "collector", "--data-dir", filepath.Join(dir, "data"),
		"--set", "extensions::meshlens::metrics::endpoint="+metricsAddr,
		"--set", "extensions::meshlens::api::endpoint="+apiAddr,
		"--set", "receivers::otlp::protocols::grpc::endpoint="+otlpGRPC,
		"--set", "receivers::meshlens_hdr::endpoint="+otlpHTTP,
	)
	waitHTTP(t, ctx, "http://"+metricsAddr+"/metrics")
	waitHTTP(t, ctx, "http://"+apiAddr+"/api/services")

	// The apps and their sidecars.
	mesh := startMesh(t, ctx, dir, meshproxy, "http://"+otlpHTTP)

	// Two Prometheus servers, with the SLO rules of the mesh's services.
	in := Input{Services: []Service{
		{Name: "frontend", HasProxy: true}, {Name: "checkout", HasProxy: true},
		{Name: "payments", HasProxy: true}, {Name: "ledger", HasProxy: false},
	}}
	set, err := in.SLOSet()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := alerts.RuleFiles(set, alerts.Config{EvaluationInterval: time.Second, SLOWindowInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rulesDir := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range rules {
		if err := os.WriteFile(filepath.Join(rulesDir, filepath.Base(f.Name)), f.Content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	native := startPrometheus(t, ctx, dir, prometheus, "native", metricsAddr, rulesDir, "native-histograms,exemplar-storage")
	classic := startPrometheus(t, ctx, dir, prometheus, "classic", metricsAddr, rulesDir, "exemplar-storage")

	// Load for at least 45 s, and until the collector publishes the exact
	// percentiles of a complete minute (at most 150 s).
	loadStart := time.Now()
	stopLoad := mesh.load(ctx, 40)
	defer stopLoad()
	const exactSel = `meshlens_request_duration_exact_seconds{service="checkout",direction="outbound"}`
	// The exact gauges describe the last complete minute, so they come and
	// go as minutes close; instant panels are evaluated at a moment both
	// servers had them (end), not merely once had them (hasSeries).
	var end time.Time
	for {
		loaded := time.Since(loadStart) > 45*time.Second
		at := time.Now()
		if loaded && instantHasData(ctx, native, exactSel, at) && instantHasData(ctx, classic, exactSel, at) {
			end = at
			break
		}
		if time.Since(loadStart) > 150*time.Second {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if !hasSeries(ctx, native, exactSel) || !hasSeries(ctx, classic, exactSel) {
		t.Errorf("after %v of load Prometheus has no %s; the collector exposes:\n%s",
			time.Since(loadStart).Round(time.Second), exactSel, metricNames(ctx, "http://"+metricsAddr+"/metrics"))
	}
	sent, failed := mesh.counts()
	t.Logf("load: %d requests in %v (%d answered 5xx)", sent, time.Since(loadStart).Round(time.Second), failed)

	// The dashboards, from the services Prometheus has seen.
	out := filepath.Join(dir, "grafana")
	cmd := exec.CommandContext(ctx, meshlens, "generate", "dashboards", "--out", out, "--prometheus-url", native,
		"--grafana-jaeger-url", "http://"+apiAddr)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("meshlens generate dashboards: %v\n%s", err, b)
	}
	files, _ := filepath.Glob(filepath.Join(out, DashboardsDir, "*.json"))
	sort.Strings(files)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := "meshlens-overview.json meshlens-slo.json meshlens-svc-checkout.json meshlens-svc-frontend.json meshlens-svc-ledger.json meshlens-svc-payments.json"
	if strings.Join(names, " ") != want {
		t.Fatalf("generated %v, want %s", names, want)
	}

	if end.IsZero() {
		end = time.Now()
	}
	checked := 0
	for _, f := range files {
		var d dashboardDoc
		readJSON(t, f, &d)
		service := strings.TrimPrefix(strings.TrimSuffix(filepath.Base(f), ".json"), ServiceUIDPrefix)
		if !strings.HasPrefix(filepath.Base(f), ServiceUIDPrefix) {
			service = "checkout" // the overview and SLO dashboards, with one service picked
		}
		vars := strings.NewReplacer("$__rate_interval", "15s", "$__interval", "5s", "$__range", "1m",
			"$service", service, "$route", ".*", "$window", "1m")
		for _, p := range d.allPanels() {
			for name, prom := range map[string]string{"native": native, "classic": classic} {
				empty := 0
				for _, q := range p.Targets {
					if q.Datasource.Type != "prometheus" {
						continue
					}
					checked++
					n, err := runQuery(ctx, prom, vars.Replace(q.Expr), q.Instant, loadStart, end)
					if err != nil {
						t.Errorf("%s: %s: panel %q query %s: %v", name, filepath.Base(f), p.Title, q.RefID, err)
						continue
					}
					if n == 0 {
						empty++
						// The heatmap's native and classic queries are
						// alternatives: each server keeps one kind.
						if p.Type == "heatmap" && (name == "native" && q.RefID == "classic" || name == "classic" && q.RefID == "native") {
							continue
						}
						t.Errorf("%s: %s: panel %q query %s returns no data:\n%s", name, filepath.Base(f), p.Title, q.RefID, vars.Replace(q.Expr))
					}
				}
				if p.Type == "heatmap" && empty != 1 {
					t.Errorf("%s: %s: heatmap %q: %d of its 2 queries are empty, want exactly the other kind's", name, filepath.Base(f), p.Title, empty)
				}
			}
			for _, q := range p.Targets {
				if q.Datasource.Type == "jaeger" {
					checkTraceSearch(t, ctx, "http://"+apiAddr, q, service, loadStart, end)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Definition == "" {
				continue
			}
			sel := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
			sel = sel[:strings.LastIndex(sel, ",")]
			if !hasSeries(ctx, native, vars.Replace(sel)) {
				t.Errorf("%s: variable %s: no series for %s", filepath.Base(f), v.Name, vars.Replace(sel))
			}
		}
	}
	t.Logf("%d panel queries checked on two Prometheus servers", checked)

	// Exemplars of the latency panel open their trace in the Jaeger API.
	checkExemplars(t, ctx, classic, "http://"+apiAddr, "http://"+metricsAddr+"/metrics", loadStart, end)
}

// metricNames lists the meshlens series an exposition holds, one line per
// metric name with one example, for failure messages.
func metricNames(ctx context.Context, u string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if strings.HasPrefix(name, "meshlens_") && !seen[name] {
			seen[name] = true
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// exemplarLines counts the exemplars in an OpenMetrics exposition and
// shows one, for failure messages.
func exemplarLines(ctx context.Context, metricsURL string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, example := 0, ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, " # {") {
			n++
			example = line
		}
	}
	return fmt.Sprintf("%d (content type %s) %s", n, resp.Header.Get("Content-Type"), example)
}

// dashboardDoc is the part of a dashboard the end-to-end test reads.
type dashboardDoc struct {
	Panels     []e2ePanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type e2ePanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Instant    bool   `json:"instant"`
		QueryType  string `json:"queryType"`
		Service    string `json:"service"`
		Tags       string `json:"tags"`
		Datasource struct {
			Type string `json:"type"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []e2ePanel `json:"panels"`
}

func (d dashboardDoc) allPanels() []e2ePanel {
	var out []e2ePanel
	var walk func([]e2ePanel)
	walk = func(ps []e2ePanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promResult is Prometheus's query API answer.
type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

// runQuery evaluates expr (a range query over [start, end] unless instant)
// and returns the number of series in the result.
func runQuery(ctx context.Context, prom, expr string, instant bool, start, end time.Time) (int, error) {
	v := url.Values{"query": {expr}}
	path := "/api/v1/query_range"
	if instant {
		path = "/api/v1/query"
		v.Set("time", fmt.Sprint(end.Unix()))
	} else {
		v.Set("start", fmt.Sprint(start.Unix()))
		v.Set("end", fmt.Sprint(end.Unix()))
		v.Set("step", "5")
	}
	var r promResult
	if err := getJSON(ctx, prom+path+"?"+v.Encode(), &r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s", r.Error)
	}
	return len(r.Data.Result), nil
}

// instantHasData reports whether an instant query at t returns a series.
func instantHasData(ctx context.Context, prom, expr string, t time.Time) bool {
	n, err := runQuery(ctx, prom, expr, true, t, t)
	return err == nil && n > 0
}

func hasSeries(ctx context.Context, prom, selector string) bool {
	var r struct {
		Data []map[string]string `json:"data"`
	}
	err := getJSON(ctx, prom+"/api/v1/series?"+url.Values{"match[]": {selector}}.Encode(), &r)
	return err == nil && len(r.Data) > 0
}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("HTTP %d: %v: %.300s", resp.StatusCode, err, b)
	}
	return nil
}

// checkTraceSearch runs a trace panel's search the way Grafana's Jaeger data
// source does and expects traces of the service.
func checkTraceSearch(t *testing.T, ctx context.Context, api string, q struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	Instant    bool   `json:"instant"`
	QueryType  string `json:"queryType"`
	Service    string `json:"service"`
	Tags       string `json:"tags"`
	Datasource struct {
		Type string `json:"type"`
	} `json:"datasource"`
}, service string, start, end time.Time) {
	t.Helper()
	v := url.Values{"service": {strings.ReplaceAll(q.Service, "$service", service)}, "limit": {"20"},
		"start": {fmt.Sprint(start.UnixMicro())}, "end": {fmt.Sprint(end.UnixMicro())}, "lookback": {"custom"}}
	if q.Tags != "" {
		k, val, _ := strings.Cut(q.Tags, "=")
		b, _ := json.Marshal(map[string]string{k: val})
		v.Set("tags", string(b))
	}
	var r struct {
		Data []struct {
			TraceID string `json:"traceID"`
		} `json:"data"`
	}
	if err := getJSON(ctx, api+"/api/traces?"+v.Encode(), &r); err != nil {
		t.Errorf("trace search %v: %v", v, err)
		return
	}
	if len(r.Data) == 0 {
		t.Errorf("trace search for %s (tags %q) found no traces", service, q.Tags)
	}
}

// checkExemplars asks Prometheus for the exemplars of the services' latency
// histograms (what the latency panels show) and opens their traces in the
// collector's Jaeger API.
func checkExemplars(t *testing.T, ctx context.Context, prom, api, metricsURL string, start, end time.Time) {
	t.Helper()
	expr := `histogram_quantile(0.99, sum by (service, le) (rate(meshlens_request_duration_seconds_bucket{direction="inbound"}[15s])))`
	v := url.Values{"query": {expr}, "start": {fmt.Sprint(start.Unix())}, "end": {fmt.Sprint(end.Unix())}}
	var r struct {
		Status string `json:"status"`
		Data   []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := getJSON(ctx, prom+"/api/v1/query_exemplars?"+v.Encode(), &r); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range r.Data {
		for _, e := range s.Exemplars {
			if id := e.Labels["trace_id"]; id != "" {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no exemplar with a trace_id on the services' latency histograms (%+v); exemplars in the collector's OpenMetrics exposition: %s",
			r, exemplarLines(ctx, metricsURL))
	}
	opened := 0
	for _, id := range ids[:min(len(ids), 5)] {
		var tr struct {
			Data []struct {
				TraceID string `json:"traceID"`
			} `json:"data"`
		}
		if err := getJSON(ctx, api+"/api/traces/"+id, &tr); err == nil && len(tr.Data) == 1 && tr.Data[0].TraceID == id {
			opened++
		}
	}
	if opened == 0 {
		t.Fatalf("none of the exemplars' traces %v opens in the Jaeger API", ids[:min(len(ids), 5)])
	}
	t.Logf("%d exemplars with trace IDs; %d of the first %d open in the Jaeger API", len(ids), opened, min(len(ids), 5))
}

func startPrometheus(t *testing.T, ctx context.Context, dir, bin, name, target, rulesDir, features string) string {
	t.Helper()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: meshlens
    static_configs:
      - targets: [%q]
`, filepath.Join(rulesDir, "*.yml"), target)
	cfgFile := filepath.Join(dir, "prometheus-"+name+".yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, ctx, dir, "prometheus-"+name, bin, "--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb-"+name), "--web.listen-address="+addr,
		"--enable-feature="+features)
	u := "http://" + addr
	waitHTTP(t, ctx, u+"/-/ready")
	return u
}
