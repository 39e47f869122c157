package slo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// HistoryFromStore reads every discovered service's request count and
// latency quantile over [now-window, now) from the store's per-minute HDR
// rollups, merged exactly. A service with a proxy is measured on its
// inbound side; one without, through its callers' outbound hops.
func HistoryFromStore(ctx context.Context, st store.Store, window time.Duration, quantile float64, now time.Time) ([]ServiceHistory, error) {
	svcs, err := st.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []ServiceHistory
	for _, s := range svcs {
		f := store.RollupFilter{From: now.Add(-window), To: now, Service: s.Name, Direction: model.Inbound}
		if !s.HasProxy {
			f = store.RollupFilter{From: now.Add(-window), To: now, Direction: model.Outbound, Peer: s.Name}
		}
		m, err := rollup.Query(ctx, st, f)
		if err != nil {
			return nil, fmt.Errorf("service %q: rollups: %w", s.Name, err)
		}
		h := ServiceHistory{Service: s.Name, HasProxy: s.HasProxy, Requests: m.Count, From: "store"}
		if m.Total != nil && m.Total.TotalCount() > 0 {
			h.Quantile = time.Duration(m.Total.ValueAtQuantile(quantile*100)) * time.Microsecond
		}
		out = append(out, h)
	}
	return out, nil
}

// PrometheusAPI is a minimal client of Prometheus's HTTP query API.
type PrometheusAPI struct {
	URL    string
	Client *http.Client
}

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates an instant query at time at (zero: now).
func (p PrometheusAPI) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	v := url.Values{"query": {expr}}
	if !at.IsZero() {
		v.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	u := strings.TrimRight(p.URL, "/") + "/api/v1/query"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus query: read: %w", err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus query: HTTP %d: not JSON: %w", resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus query %q: HTTP %d: %s", expr, resp.StatusCode, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query %q: result type %q, want vector", expr, r.Data.ResultType)
	}
	var out []Sample
	for _, raw := range r.Data.Result {
		var s struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("prometheus query: sample: %w", err)
		}
		str, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query: sample value %q: %w", str, err)
		}
		out = append(out, Sample{Labels: s.Metric, Value: f})
	}
	return out, nil
}

// Scalar evaluates expr and returns its single value; ok is false when the
// result is empty or NaN (no traffic).
func (p PrometheusAPI) Scalar(ctx context.Context, expr string) (float64, bool, error) {
	ss, err := p.Query(ctx, expr, time.Time{})
	if err != nil {
		return 0, false, err
	}
	if len(ss) != 1 || math.IsNaN(ss[0].Value) || math.IsInf(ss[0].Value, 0) {
		return 0, false, nil
	}
	return ss[0].Value, true, nil
}

// HistoryFromPrometheus reads the discovered services (meshlens_service_info)
// and their request counts and latency quantiles over window from
// Prometheus. The quantile comes from the classic histogram buckets, so it
// is approximate; it is only rounded up to a readable threshold anyway.
func HistoryFromPrometheus(ctx context.Context, p PrometheusAPI, window time.Duration, quantile float64) ([]ServiceHistory, error) {
	w := formatDuration(window)
	infos, err := p.Query(ctx, fmt.Sprintf("max by (service, has_proxy) (max_over_time(meshlens_service_info[%s]))", w), time.Time{})
	if err != nil {
		return nil, err
	}
	byName := map[string]*ServiceHistory{}
	for _, s := range infos {
		name := s.Labels["service"]
		if name == "" {
			continue
		}
		h := byName[name]
		if h == nil {
			h = &ServiceHistory{Service: name, From: "prometheus"}
			byName[name] = h
		}
		h.HasProxy = h.HasProxy || s.Labels["has_proxy"] == "true"
	}
	var out []ServiceHistory
	for _, name := range sortedKeys(byName) {
		h := byName[name]
		sel := fmt.Sprintf(`service=%q,direction="inbound"`, name)
		if !h.HasProxy {
			sel = fmt.Sprintf(`peer=%q,direction="outbound"`, name)
		}
		n, ok, err := p.Scalar(ctx, fmt.Sprintf("sum(increase(meshlens_requests_total{%s}[%s]))", sel, w))
		if err != nil {
			return nil, err
		}
		if ok {
			h.Requests = int64(math.Round(n))
		}
		q, ok, err := p.Scalar(ctx, fmt.Sprintf("histogram_quantile(%g, sum by (le) (rate(meshlens_request_duration_seconds_bucket{%s}[%s])))", quantile, sel, w))
		if err != nil {
			return nil, err
		}
		if ok && q > 0 {
			h.Quantile = time.Duration(q * float64(time.Second))
		}
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b ServiceHistory) int { return strings.Compare(a.Service, b.Service) })
	return out, nil
}

// collectorQuantileKeys maps the quantiles the collector's query API
// answers (/api/v1/latency) to their keys.
var collectorQuantileKeys = map[float64]string{0.5: "p50", 0.9: "p90", 0.99: "p99", 0.999: "p99.9"}

// HistoryFromCollector reads the discovered services and their history from
// a running collector's query API (/api/v1/services, /api/v1/latency, exact
// HDR merges). token, when set, is sent as a bearer token. A service
// without a proxy is listed without history (the API measures a service
// from its own side).
func HistoryFromCollector(ctx context.Context, client *http.Client, baseURL, token string, window time.Duration, quantile float64) ([]ServiceHistory, error) {
	key, ok := collectorQuantileKeys[quantile]
	if !ok {
		return nil, fmt.Errorf("collector query API: quantile %v not offered (0.5, 0.9, 0.99, 0.999)", quantile)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	get := func(path string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+path, nil)
		if err != nil {
			return fmt.Errorf("collector query API: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("collector query API: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return fmt.Errorf("collector query API %s: read: %w", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("collector query API %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("collector query API %s: %w", path, err)
		}
		return nil
	}
	var svcs struct {
		Services []struct {
			Name     string `json:"name"`
			HasProxy bool   `json:"has_proxy"`
		} `json:"services"`
	}
	if err := get("/api/v1/services", &svcs); err != nil {
		return nil, err
	}
	var out []ServiceHistory
	for _, s := range svcs.Services {
		h := ServiceHistory{Service: s.Name, HasProxy: s.HasProxy, From: "collector"}
		if s.HasProxy {
			var lat struct {
				Requests  int64              `json:"requests"`
				LatencyMs map[string]float64 `json:"latency_ms"`
			}
			q := url.Values{"service": {s.Name}, "direction": {"inbound"}, "from": {window.String()}}
			if err := get("/api/v1/latency?"+q.Encode(), &lat); err != nil {
				return nil, err
			}
			h.Requests = lat.Requests
			if ms, ok := lat.LatencyMs[key]; ok && ms > 0 {
				h.Quantile = time.Duration(ms * float64(time.Millisecond))
			}
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b ServiceHistory) int { return strings.Compare(a.Service, b.Service) })
	return out, nil
}
