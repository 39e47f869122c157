package meshlensextension_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension"
	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func defaultConfig() *meshlensextension.Config {
	return meshlensextension.NewFactory().CreateDefaultConfig().(*meshlensextension.Config)
}

func TestConfigFromYAML(t *testing.T) {
	cm, err := confmaptest.LoadConf("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want meshlensextension.Config
	}{
		{"meshlens", meshlensextension.Config{
			DataDir: "/var/lib/meshlens", Retention: 72 * time.Hour,
			IngestToken: "ingest-token-0123456789",
			Metrics:     meshlensextension.ServerConfig{Endpoint: "127.0.0.1:9889"},
			API:         meshlensextension.APIServerConfig{Endpoint: "127.0.0.1:9686", AuthToken: "api-token-0123456789"},
		}},
		{"meshlens/postgres", meshlensextension.Config{
			DataDir: meshlensextension.DefaultDataDir, DatabaseURL: "postgres://meshlens@db:5432/meshlens", Retention: 24 * time.Hour,
			Metrics: meshlensextension.ServerConfig{Endpoint: "127.0.0.1:9889"},
			API:     meshlensextension.APIServerConfig{Endpoint: "127.0.0.1:9686"},
		}},
	} {
		sub, err := cm.Sub(c.id)
		if err != nil {
			t.Fatal(err)
		}
		cfg := defaultConfig()
		if err := sub.Unmarshal(cfg); err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", c.id, err)
		}
		if *cfg != c.want {
			t.Errorf("%s: got %+v\nwant %+v", c.id, *cfg, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		mutate func(*meshlensextension.Config)
		want   string
	}{
		{func(*meshlensextension.Config) {}, ""},
		{func(c *meshlensextension.Config) { c.DataDir = "" }, "data_dir"},
		{func(c *meshlensextension.Config) { c.DatabaseURL = "mysql://x" }, "database_url"},
		{func(c *meshlensextension.Config) { c.Retention = time.Minute }, "retention"},
		{func(c *meshlensextension.Config) { c.Metrics.Endpoint = "" }, "metrics.endpoint"},
		{func(c *meshlensextension.Config) { c.API.Endpoint = "localhost" }, "api.endpoint"},
		{func(c *meshlensextension.Config) { c.IngestToken = "short" }, "ingest_token"},
		{func(c *meshlensextension.Config) { c.API.AuthToken = "has white space in it" }, "api.auth_token"},
	} {
		cfg := defaultConfig()
		c.mutate(cfg)
		err := cfg.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one naming %q", err, c.want)
		}
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLifecycleAndTokens starts the extension on the real SQLite store and
// checks the metrics server, the query API's bearer token and the ingest
// token check.
func TestLifecycleAndTokens(t *testing.T) {
	const apiToken, ingestToken = "api-token-0123456789", "ingest-token-0123456789"
	_, ext := testhost.Start(t, testhost.Options{APIToken: apiToken, IngestToken: ingestToken})
	if ext.Store() == nil {
		t.Fatal("no store after Start")
	}
	api := "http://" + ext.APIAddr()
	if code, body := get(t, "http://"+ext.MetricsAddr()+"/metrics", ""); code != 200 || !strings.Contains(body, "meshlens_collector_received_total") && !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d %.200s", code, body)
	}
	if code, _ := get(t, api+"/healthz", ""); code != 200 {
		t.Errorf("/healthz without token: %d, want 200", code)
	}
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		if code, body := get(t, api+"/api/v1/services", tok); code != 401 || !strings.Contains(body, "bearer token") {
			t.Errorf("services with token %q: %d %s, want 401 naming the bearer token", tok, code, body)
		}
	}
	if code, body := get(t, api+"/api/v1/services", apiToken); code != 200 {
		t.Errorf("services with the token: %d %s", code, body)
	}
	// The Jaeger API sits behind the same token.
	if code, _ := get(t, api+"/api/services", ""); code != 401 {
		t.Errorf("jaeger services without token: %d, want 401", code)
	}

	ctx := context.Background()
	if _, err := ext.Authenticate(ctx, map[string][]string{"authorization": {"Bearer " + ingestToken}}); err != nil {
		t.Errorf("gRPC metadata with the ingest token: %v", err)
	}
	if _, err := ext.Authenticate(ctx, map[string][]string{"Authorization": {"Bearer nope"}}); err == nil {
		t.Error("a wrong ingest token passed")
	}
	if _, err := ext.Authenticate(ctx, map[string][]string{}); err == nil {
		t.Error("no ingest token passed")
	}
	req, _ := http.NewRequest(http.MethodPost, "http://x/v1/traces", nil)
	if ext.CheckIngest(req) {
		t.Error("CheckIngest passed a request without a token")
	}
	req.Header.Set("Authorization", "bearer "+ingestToken)
	if !ext.CheckIngest(req) {
		t.Error("CheckIngest refused the ingest token (scheme is case-insensitive)")
	}
}

// TestPortTaken: a listen failure fails Start and leaves nothing running.
func TestPortTaken(t *testing.T) {
	_, running := testhost.Start(t, testhost.Options{})
	cfg := defaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Metrics.Endpoint = testhost.FreeAddr(t)
	cfg.API.Endpoint = running.APIAddr()
	ext, err := meshlensextension.NewFactory().Create(context.Background(),
		extension.Settings{ID: testhost.ID, TelemetrySettings: componenttest.NewNopTelemetrySettings()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "api server") {
		t.Fatalf("Start on a taken port: %v, want an api server error", err)
	}
	if err := ext.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownPostgresSchema: on a database whose schema is not migrated the
// extension (and so the collector) refuses to start and names the command
// that fixes it.
func TestUnknownPostgresSchema(t *testing.T) {
	u := testenv.PostgresSchema(t)
	cfg := defaultConfig()
	cfg.DatabaseURL = configopaque.String(u)
	cfg.Metrics.Endpoint = testhost.FreeAddr(t)
	cfg.API.Endpoint = testhost.FreeAddr(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ext, err := meshlensextension.NewFactory().Create(context.Background(),
		extension.Settings{ID: component.NewID(meshlensextension.Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	if err == nil {
		_ = ext.Shutdown(context.Background())
		t.Fatal("started on an unmigrated schema")
	}
	if !strings.Contains(err.Error(), "meshlens migrate up") {
		t.Errorf("error %q does not say `meshlens migrate up`", err)
	}
	if err := ext.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
