package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// GrafanaConfig says where to push dashboards through Grafana's HTTP API.
type GrafanaConfig struct {
	// URL is Grafana's base URL, e.g. http://127.0.0.1:3000.
	URL string
	// Token is a service-account token (or API key), sent as a bearer
	// token. The command reads it from the GRAFANA_TOKEN environment
	// variable, never from a flag.
	Token string
	// Folder is the folder the dashboards go into; created when missing.
	Folder  string
	Timeout time.Duration // per request; 0 means 10 s
	// Client is the HTTP client; nil means a client with Timeout.
	Client *http.Client
}

// Validate checks the URL.
func (c GrafanaConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: %q is not an http(s) URL", c.URL)
	}
	if c.Timeout < 0 {
		return errors.New("timeout: must not be negative")
	}
	return nil
}

// GrafanaClient pushes dashboards to one Grafana.
type GrafanaClient struct {
	base   *url.URL
	token  string
	folder string
	client *http.Client
}

// NewGrafanaClient returns a client for cfg.
func NewGrafanaClient(cfg GrafanaConfig) (*GrafanaClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(strings.TrimRight(cfg.URL, "/"))
	c := cfg.Client
	if c == nil {
		t := cfg.Timeout
		if t == 0 {
			t = 10 * time.Second
		}
		c = &http.Client{Timeout: t}
	}
	folder := cfg.Folder
	if folder == "" {
		folder = DefaultFolder
	}
	return &GrafanaClient{base: u, token: cfg.Token, folder: folder, client: c}, nil
}

// grafanaError is a refused API call.
type grafanaError struct {
	Call    string
	Status  int
	Message string
}

func (e *grafanaError) Error() string {
	return fmt.Sprintf("grafana %s: HTTP %d: %s", e.Call, e.Status, e.Message)
}

// EnsureFolder creates the dashboards' folder unless it exists.
func (g *GrafanaClient) EnsureFolder(ctx context.Context) error {
	uid := folderUID(g.folder)
	status, body, err := g.do(ctx, http.MethodGet, "/api/folders/"+url.PathEscape(uid), nil)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		return nil
	}
	if status != http.StatusNotFound {
		return &grafanaError{"get folder " + uid, status, apiMessage(body)}
	}
	status, body, err = g.do(ctx, http.MethodPost, "/api/folders", map[string]string{"uid": uid, "title": g.folder})
	if err != nil {
		return err
	}
	// 409 or 412: created by someone else meanwhile.
	if status != http.StatusOK && status != http.StatusConflict && status != http.StatusPreconditionFailed {
		return &grafanaError{"create folder " + uid, status, apiMessage(body)}
	}
	return nil
}

// Push creates or replaces a dashboard (POST /api/dashboards/db with
// overwrite, matched by UID), so pushing again updates it.
func (g *GrafanaClient) Push(ctx context.Context, d Dashboard) error {
	model, err := d.JSON()
	if err != nil {
		return err
	}
	req := map[string]any{
		"dashboard": json.RawMessage(model),
		"folderUid": folderUID(g.folder),
		"overwrite": true,
		"message":   "meshlens generate dashboards",
	}
	status, body, err := g.do(ctx, http.MethodPost, "/api/dashboards/db", req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return &grafanaError{"push dashboard " + d.UID, status, apiMessage(body)}
	}
	return nil
}

func (g *GrafanaClient) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("grafana %s %s: encode: %w", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	u := *g.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return 0, nil, fmt.Errorf("grafana %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("grafana %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("grafana %s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// apiMessage extracts Grafana's {"message": ...} from an error answer.
func apiMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return m.Message
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
