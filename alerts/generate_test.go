package alerts

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/slo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixtureSet is the SLO set the golden files are generated from: the
// OpenSLO example of the slo package plus defaults for discovered services.
func fixtureSet(t testing.TB) []slo.SLO {
	t.Helper()
	spec, err := slo.LoadOpenSLOFiles("../slo/testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defaults := slo.DefaultSLOs(slo.Propose(slo.DefaultsConfig{}, []slo.ServiceHistory{
		{Service: "checkout", HasProxy: true, Requests: 5000, Quantile: 120 * time.Millisecond},
		{Service: "web", HasProxy: true, Requests: 90000, Quantile: 180 * time.Millisecond},
		{Service: "postgres", HasProxy: false, Requests: 700, Quantile: 4 * time.Millisecond},
	}))
	return slo.Combine(defaults, spec.SLOs)
}

var configs = map[string]Config{
	"production": {},
	"scaled":     {WindowScale: 1.0 / 60, RunbookURL: "https://runbooks.example.org/slo/{{ $labels.service }}/{{ $labels.slo }}"},
}

func TestGoldenFiles(t *testing.T) {
	set := fixtureSet(t)
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			files, err := Generate(set, cfg)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Generate(set, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(files, again, func(a, b File) bool { return a.Name == b.Name && bytes.Equal(a.Content, b.Content) }) {
				t.Fatal("two generations differ")
			}
			dir := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if _, err := WriteDir(dir, files); err != nil {
					t.Fatal(err)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(files) {
				t.Fatalf("%d golden files, %d generated (run with -update)", len(entries), len(files))
			}
			for _, f := range files {
				want, err := os.ReadFile(filepath.Join(dir, f.Name))
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if !bytes.Equal(want, f.Content) {
					t.Errorf("%s differs from the golden file (run with -update to accept)", f.Name)
				}
			}
		})
	}
}

// TestPromtool runs Prometheus's promtool on what is generated: `check
// rules` on every rule file and `test rules` on every unit test file.
func TestPromtool(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	set := fixtureSet(t)
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			files, err := Generate(set, cfg)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := WriteDir(dir, files); err != nil {
				t.Fatal(err)
			}
			var rules, tests []string
			for _, f := range files {
				switch {
				case strings.HasSuffix(f.Name, ".rules.yml"):
					rules = append(rules, f.Name)
				case strings.HasSuffix(f.Name, ".test.yml"):
					tests = append(tests, f.Name)
				}
			}
			if len(rules) != 3 || len(tests) != 3 {
				t.Fatalf("rule files %v, test files %v", rules, tests)
			}
			run := func(args ...string) {
				t.Helper()
				cmd := exec.Command(promtool, args...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
			run(append([]string{"check", "rules"}, rules...)...)
			run(append([]string{"test", "rules"}, tests...)...)
			amtool := exec.Command(testenv.Tool(t, "amtool"), "check-config", AlertmanagerFile)
			amtool.Dir = dir
			if out, err := amtool.CombinedOutput(); err != nil {
				t.Fatalf("amtool check-config: %v\n%s", err, out)
			}
		})
	}
}
