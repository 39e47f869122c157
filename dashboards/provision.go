package dashboards

import (
	"fmt"
	"net/url"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// ProvisioningConfig says where Grafana finds what the dashboards query.
type ProvisioningConfig struct {
	// PrometheusURL is the Prometheus server that scrapes the collector, as
	// Grafana reaches it.
	PrometheusURL string
	// JaegerURL is the collector's query port (Jaeger-compatible API), as
	// Grafana reaches it.
	JaegerURL string
	// DashboardsPath is the folder of the dashboard JSON files as Grafana
	// sees it (it differs from the output folder when Grafana runs in a
	// container); empty means the absolute path of the output folder.
	DashboardsPath string
	// Folder is the Grafana folder the dashboards go into.
	Folder string
}

// Defaults of ProvisioningConfig.
const (
	DefaultPrometheusURL = "http://127.0.0.1:9090"
	DefaultJaegerURL     = "http://127.0.0.1:16686"
	DefaultFolder        = "meshlens"
)

// withDefaults fills the empty fields.
func (c ProvisioningConfig) withDefaults() ProvisioningConfig {
	if c.PrometheusURL == "" {
		c.PrometheusURL = DefaultPrometheusURL
	}
	if c.JaegerURL == "" {
		c.JaegerURL = DefaultJaegerURL
	}
	if c.Folder == "" {
		c.Folder = DefaultFolder
	}
	return c
}

// Validate checks the URLs.
func (c ProvisioningConfig) Validate() error {
	c = c.withDefaults()
	for _, f := range []struct{ name, value string }{{"prometheus_url", c.PrometheusURL}, {"jaeger_url", c.JaegerURL}} {
		u, err := url.Parse(f.value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL", f.name, f.value)
		}
	}
	return nil
}

// The layout of an output folder: Grafana's provisioning folder (point
// GF_PATHS_PROVISIONING, or paths.provisioning in grafana.ini, at it) and
// the dashboards it loads.
const (
	DashboardsDir         = "dashboards"
	ProvisioningDir       = "provisioning"
	datasourcesFile       = "provisioning/datasources/meshlens.yaml"
	dashboardProviderFile = "provisioning/dashboards/meshlens.yaml"
)

type datasourcesDoc struct {
	APIVersion  int          `yaml:"apiVersion"`
	Datasources []datasource `yaml:"datasources"`
}

type datasource struct {
	Name      string         `yaml:"name"`
	UID       string         `yaml:"uid"`
	Type      string         `yaml:"type"`
	Access    string         `yaml:"access"`
	URL       string         `yaml:"url"`
	IsDefault bool           `yaml:"isDefault"`
	Editable  bool           `yaml:"editable"`
	JSONData  map[string]any `yaml:"jsonData"`
}

type providersDoc struct {
	APIVersion int        `yaml:"apiVersion"`
	Providers  []provider `yaml:"providers"`
}

type provider struct {
	Name                  string         `yaml:"name"`
	OrgID                 int            `yaml:"orgId"`
	Folder                string         `yaml:"folder"`
	FolderUID             string         `yaml:"folderUid"`
	Type                  string         `yaml:"type"`
	DisableDeletion       bool           `yaml:"disableDeletion"`
	AllowUIUpdates        bool           `yaml:"allowUiUpdates"`
	UpdateIntervalSeconds int            `yaml:"updateIntervalSeconds"`
	Options               map[string]any `yaml:"options"`
}

// provisioningFiles returns Grafana's provisioning files for an output
// folder outDir, by path relative to it: the Prometheus data source (with
// exemplars linked to the Jaeger data source by their trace_id label), the
// Jaeger data source pointing at the collector, and a dashboard provider
// loading outDir/dashboards.
func provisioningFiles(outDir string, c ProvisioningConfig) (map[string][]byte, error) {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	path := c.DashboardsPath
	if path == "" {
		abs, err := filepath.Abs(filepath.Join(outDir, DashboardsDir))
		if err != nil {
			return nil, fmt.Errorf("dashboards path: %w", err)
		}
		path = abs
	}
	ds := datasourcesDoc{APIVersion: 1, Datasources: []datasource{
		{
			Name: "Prometheus (meshlens)", UID: PrometheusUID, Type: "prometheus", Access: "proxy",
			URL: c.PrometheusURL, IsDefault: true,
			JSONData: map[string]any{
				"httpMethod": "POST",
				"exemplarTraceIdDestinations": []map[string]any{
					{"name": "trace_id", "datasourceUid": JaegerUID},
				},
			},
		},
		{
			Name: "Jaeger (meshlens)", UID: JaegerUID, Type: "jaeger", Access: "proxy",
			URL: c.JaegerURL,
			JSONData: map[string]any{
				"nodeGraph": map[string]any{"enabled": true},
				"tracesToMetrics": map[string]any{
					"datasourceUid": PrometheusUID,
					"tags":          []map[string]string{{"key": "service.name", "value": "service"}},
				},
			},
		},
	}}
	prov := providersDoc{APIVersion: 1, Providers: []provider{{
		Name: "meshlens", OrgID: 1, Folder: c.Folder, FolderUID: folderUID(c.Folder), Type: "file",
		AllowUIUpdates: false, UpdateIntervalSeconds: 30,
		Options: map[string]any{"path": path, "foldersFromFilesStructure": false},
	}}}
	out := map[string][]byte{}
	for name, doc := range map[string]any{datasourcesFile: ds, dashboardProviderFile: prov} {
		b, err := yaml.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", name, err)
		}
		out[name] = append([]byte("# Generated by meshlens generate dashboards; regenerate instead of editing.\n"), b...)
	}
	return out, nil
}

// folderUID derives the Grafana folder UID from its title.
func folderUID(folder string) string {
	if folder == DefaultFolder {
		return DefaultFolder
	}
	return "meshlens-" + ServiceUID(folder)[len(ServiceUIDPrefix):]
}
