package collector

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/otelcol"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/internal/testenv"
)

// TestDefaultConfig: the embedded config resolves, unmarshals and validates
// with the distribution's components, also with the command-line overrides.
func TestDefaultConfig(t *testing.T) {
	for _, o := range []Options{
		{},
		{DataDir: t.TempDir(), DatabaseURL: "postgres://meshlens@127.0.0.1:5432/meshlens", Set: []string{"exporters::meshlens_analytics::slo_thresholds=[0.2]"}},
	} {
		set, err := Settings(o)
		if err != nil {
			t.Fatal(err)
		}
		col, err := otelcol.NewCollector(set)
		if err != nil {
			t.Fatal(err)
		}
		if err := col.DryRun(context.Background()); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestConfigURIs(t *testing.T) {
	uris, err := ConfigURIs(Options{ConfigFile: "x.yaml", DataDir: "/d", DatabaseURL: "postgres://h/db", Set: []string{"a::b=1"}})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(uris, "\n")
	for _, want := range []string{"file:", "extensions::meshlens::data_dir: \"/d\"", "extensions::file_storage/queue::directory: \"/d/queue\"",
		"extensions::meshlens_log_storage/queue::directory: \"/d/queue\"",
		"extensions::meshlens::database_url: \"postgres://h/db\"", "yaml:a::b: 1"} {
		if !strings.Contains(all, want) {
			t.Errorf("config sources lack %q:\n%s", want, all)
		}
	}
	if _, err := ConfigURIs(Options{Set: []string{"novalue"}}); err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
		t.Errorf("--set without =: %v", err)
	}
}

// TestRefusesUnknownSchema: on a PostgreSQL schema this build does not know
// the collector does not start, and its error names the command that fixes
// it.
func TestRefusesUnknownSchema(t *testing.T) {
	u := testenv.PostgresSchema(t)
	o := Options{DataDir: t.TempDir(), DatabaseURL: u, Set: []string{
		"receivers::meshlens_hdr::endpoint=" + testhost.FreeAddr(t),
		"receivers::otlp::protocols::grpc::endpoint=" + testhost.FreeAddr(t),
		"extensions::meshlens::metrics::endpoint=" + testhost.FreeAddr(t),
		"extensions::meshlens::api::endpoint=" + testhost.FreeAddr(t),
		"service::telemetry::logs::level=error",
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "meshlens migrate up") {
		t.Fatalf("Run on an unmigrated schema: %v, want an error naming `meshlens migrate up`", err)
	}
}
