package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/meshlens/meshlens/alerts"
	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testInput is a small mesh: three services with sidecars, one peer without
// one (and a name that needs a hashed UID), and a latency SLO next to the
// default availability ones.
func testInput() Input {
	return Input{
		Services: []Service{
			{Name: "frontend", HasProxy: true},
			{Name: "checkout", HasProxy: true},
			{Name: "payments", HasProxy: true},
			{Name: "Ledger.DB", HasProxy: false},
		},
		SLOs: []slo.SLO{
			{Name: "checkout-latency", Scope: slo.Scope{Service: "checkout"}, Indicator: slo.Latency, Objective: 0.99, Threshold: 250 * time.Millisecond, Window: 30 * 24 * time.Hour},
			{Name: "checkout-availability", Scope: slo.Scope{Service: "checkout"}, Indicator: slo.Availability, Objective: 0.999, Window: 30 * 24 * time.Hour},
			{Name: "checkout-to-payments", Scope: slo.Scope{Service: "checkout", Peer: "payments"}, Indicator: slo.Availability, Objective: 0.995, Window: 7 * 24 * time.Hour},
			{Name: "not-discovered", Scope: slo.Scope{Service: "not-discovered"}, Indicator: slo.Availability, Objective: 0.9, Window: 24 * time.Hour},
		},
	}
}

func TestGolden(t *testing.T) {
	ds, err := Generate(testInput())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, d := range ds {
		files = append(files, d.File)
		got, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", d.File)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./dashboards -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file; run go test ./dashboards -update and review the diff", d.File)
		}
	}
	wantFiles := []string{"meshlens-overview.json", "meshlens-slo.json", "meshlens-svc-checkout.json",
		"meshlens-svc-frontend.json", "meshlens-svc-ledger-db.json", "meshlens-svc-payments.json"}
	sort.Strings(files)
	if strings.Join(files, " ") != strings.Join(wantFiles, " ") {
		t.Fatalf("files = %v, want %v", files, wantFiles)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate(testInput())
	if err != nil {
		t.Fatal(err)
	}
	in := testInput()
	in.Services[0], in.Services[3] = in.Services[3], in.Services[0]
	b, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		ja, _ := a[i].JSON()
		jb, _ := b[i].JSON()
		if !bytes.Equal(ja, jb) {
			t.Fatalf("%s depends on the order of the input", a[i].File)
		}
	}
}

func TestServiceUID(t *testing.T) {
	f := func(name, want string) {
		t.Helper()
		got := ServiceUID(name)
		if got != want {
			t.Fatalf("ServiceUID(%q) = %q, want %q", name, got, want)
		}
		if len(got) > 40 || !regexp.MustCompile(`^[a-z0-9_-]+$`).MatchString(got) {
			t.Fatalf("ServiceUID(%q) = %q is not a valid Grafana UID", name, got)
		}
	}
	f("checkout", "meshlens-svc-checkout")
	f("pay_ments-2", "meshlens-svc-pay-ments-2")
	f("Ledger.DB", "meshlens-svc-ledger-db")
	f("a-very-long-service-name-that-goes-on", "meshlens-svc-a-very-long-servic-c6c49a3d")
}

func TestGenerateRejects(t *testing.T) {
	f := func(in Input, want string) {
		t.Helper()
		_, err := Generate(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Generate: %v, want an error containing %q", err, want)
		}
	}
	svc := []Service{{Name: "a"}}
	f(Input{Services: []Service{{Name: ""}}}, "empty name")
	f(Input{Services: []Service{{Name: "a"}, {Name: "a"}}}, "listed twice")
	f(Input{Services: []Service{{Name: "a.b"}, {Name: "a-b"}}}, "same dashboard UID")
	f(Input{Services: svc, SLOs: []slo.SLO{{Scope: slo.Scope{Service: "a"}, Indicator: slo.Availability, Objective: 0.9, Window: time.Hour}}}, "slos[0] (): name")
	f(Input{Services: svc, SLOs: []slo.SLO{{Name: "n", Scope: slo.Scope{Service: "a"}, Indicator: slo.Availability, Objective: 1, Window: time.Hour}}}, "slos[0] (n): objective")
	f(Input{Services: svc, SLOs: []slo.SLO{{Name: "n", Scope: slo.Scope{Service: "a"}, Indicator: slo.Latency, Objective: 0.9, Window: time.Hour}}}, "slos[0] (n): threshold")
}

// builtinPanels are panel types that ship with Grafana 10 and later.
var builtinPanels = map[string]bool{"row": true, "stat": true, "timeseries": true, "table": true, "heatmap": true, "nodeGraph": true}

// TestPanelsAreBuiltIn checks every panel's type, data sources, IDs and
// that no panel is without a query.
func TestPanelsAreBuiltIn(t *testing.T) {
	ds, err := Generate(testInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		for _, p := range panelsOf(t, d) {
			if !builtinPanels[p.Type] {
				t.Errorf("%s: panel %q has type %q, not one that ships with Grafana", d.File, p.Title, p.Type)
			}
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.File, p.Title)
			}
			for _, q := range p.Targets {
				if q.Datasource.Type != "prometheus" && q.Datasource.Type != "jaeger" {
					t.Errorf("%s: panel %q queries data source type %q", d.File, p.Title, q.Datasource.Type)
				}
			}
		}
	}
}

// TestQueriesParse parses every PromQL query of every panel and variable
// with Prometheus's parser, after substituting the template variables, and
// checks that every metric it reads is in the collector contract.
func TestQueriesParse(t *testing.T) {
	contract := contractMetrics(t)
	recorded := recordedSeries(t, testInput())
	ds, err := Generate(testInput())
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	n := 0
	for _, d := range ds {
		for _, q := range promQueries(t, d) {
			n++
			expr, err := p.ParseExpr(substitute(q.Expr))
			if err != nil {
				t.Errorf("%s: panel %q query %s does not parse: %v\n%s", d.File, q.Panel, q.RefID, err, q.Expr)
				continue
			}
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok {
					if strings.HasPrefix(vs.Name, "meshlens:") {
						sloName := ""
						for _, m := range vs.LabelMatchers {
							if m.Name == "slo" {
								sloName = m.Value
							}
						}
						if !recorded[vs.Name+"/"+sloName] {
							t.Errorf("%s: panel %q reads %s{slo=%q}, which the alerts generator does not record", d.File, q.Panel, vs.Name, sloName)
						}
						return nil
					}
					name := strings.TrimSuffix(vs.Name, "_bucket")
					if !contract[name] {
						t.Errorf("%s: panel %q reads %q, which docs/metrics.md does not define", d.File, q.Panel, vs.Name)
					}
				}
				return nil
			})
		}
	}
	if n < 100 {
		t.Fatalf("only %d queries found; the walker is broken", n)
	}
	t.Logf("%d PromQL queries parse", n)
}

// substitute replaces the template variables the queries use with values
// of the kind Grafana puts there.
func substitute(expr string) string {
	return strings.NewReplacer(
		"$__rate_interval", "1m",
		"$__interval", "1m",
		"$__range", "1h",
		"$service", "checkout",
		"$route", ".*",
		"$window", "5m",
	).Replace(expr)
}

// recordedSeries returns "record/slo" for every series the alerts
// generator records for the SLOs of in.
func recordedSeries(t *testing.T, in Input) map[string]bool {
	t.Helper()
	set, err := in.SLOSet()
	if err != nil {
		t.Fatal(err)
	}
	files, err := alerts.RuleFiles(set, alerts.Config{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range files {
		var doc struct {
			Groups []struct {
				Rules []struct {
					Record string            `yaml:"record"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(f.Content, &doc); err != nil {
			t.Fatal(err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out[r.Record+"/"+r.Labels["slo"]] = true
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("the alerts generator recorded nothing")
	}
	return out
}

// contractMetrics are the metric names docs/metrics.md defines.
func contractMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, name := range regexp.MustCompile("`(meshlens_[a-z_]+)`").FindAllStringSubmatch(string(b), -1) {
		m[name[1]] = true
	}
	if len(m) < 8 {
		t.Fatalf("found only %d metrics in docs/metrics.md", len(m))
	}
	return m
}

// The parts of the dashboard JSON the tests look at.
type jsonPanel struct {
	Type    string       `json:"type"`
	Title   string       `json:"title"`
	ID      int          `json:"id"`
	Targets []jsonTarget `json:"targets"`
	Panels  []jsonPanel  `json:"panels"`
}

type jsonTarget struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	Instant    bool   `json:"instant"`
	Format     string `json:"format"`
	Datasource struct {
		Type string `json:"type"`
	} `json:"datasource"`
}

type promQuery struct {
	Panel, RefID, Expr string
	Instant            bool
}

// panelsOf returns every panel of a dashboard, rows' panels included, and
// checks that panel IDs are unique.
func panelsOf(t *testing.T, d Dashboard) []jsonPanel {
	t.Helper()
	b, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []jsonPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []jsonPanel
	ids := map[int]bool{}
	var walk func([]jsonPanel)
	walk = func(ps []jsonPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("%s: panel ID %d is used twice", d.File, p.ID)
			}
			ids[p.ID] = true
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(doc.Panels)
	return out
}

// promQueries returns every PromQL query of a dashboard: panel targets and
// the metric selectors of label_values variables.
func promQueries(t *testing.T, d Dashboard) []promQuery {
	t.Helper()
	var out []promQuery
	for _, p := range panelsOf(t, d) {
		for _, q := range p.Targets {
			if q.Datasource.Type == "prometheus" {
				out = append(out, promQuery{Panel: p.Title, RefID: q.RefID, Expr: q.Expr, Instant: q.Instant})
			}
		}
	}
	b, _ := d.JSON()
	var doc struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	lv := regexp.MustCompile(`^label_values\((.+), *[a-z_]+\)$`)
	for _, v := range doc.Templating.List {
		if v.Definition == "" {
			continue
		}
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("%s: variable %s: %q is not label_values(selector, label)", d.File, v.Name, v.Definition)
		}
		out = append(out, promQuery{Panel: "variable " + v.Name, Expr: m[1]})
	}
	return out
}
