package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/meshlens/meshlens/store"
)

// ServicesFromStore lists the services the collector discovered.
func ServicesFromStore(ctx context.Context, st store.Store) ([]Service, error) {
	svcs, err := st.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := make([]Service, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, Service{Name: s.Name, HasProxy: s.HasProxy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ServicesFromPrometheus lists the services a Prometheus server has seen in
// the collector's meshlens_service_info series (over Prometheus' default
// lookback for series, the last few hours).
func ServicesFromPrometheus(ctx context.Context, client *http.Client, baseURL string) ([]Service, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/") + "/api/v1/series")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("prometheus url %q: not an http(s) URL", baseURL)
	}
	u.RawQuery = url.Values{"match[]": {metricServiceInfo}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus series: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus series: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus series: read: %w", err)
	}
	var r struct {
		Status string              `json:"status"`
		Error  string              `json:"error"`
		Data   []map[string]string `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus series: HTTP %d: not JSON: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || r.Status != "success" {
		return nil, fmt.Errorf("prometheus series: HTTP %d: %s", resp.StatusCode, r.Error)
	}
	by := map[string]bool{}
	for _, s := range r.Data {
		name := s["service"]
		if name == "" {
			continue
		}
		by[name] = by[name] || s["has_proxy"] == "true"
	}
	out := make([]Service, 0, len(by))
	for name, proxy := range by {
		out = append(out, Service{Name: name, HasProxy: proxy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
