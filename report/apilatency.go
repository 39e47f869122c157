package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNoRollupsAPI is returned by APISource when the collector does not serve
// /api/v1/rollups.
var ErrNoRollupsAPI = errors.New("the collector's query API has no /api/v1/rollups")

// BuildFromLatencyAPI builds a reduced report from a collector's merged
// latency answers (/api/v1/services, /api/v1/edges, /api/v1/latency), for a
// collector that does not serve the rollups themselves: services and edges
// with requests, errors, p50, p90, p99, p99.9 and max, and the change
// against the previous window. It has no routes, no p99.99, no
// distribution, no timeline and no intervals, which need the histograms.
func BuildFromLatencyAPI(ctx context.Context, a *APISource, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	length := o.To.Sub(o.From)
	prevFrom := o.From.Add(-length)
	var services struct {
		Services []struct {
			Name     string `json:"name"`
			HasProxy bool   `json:"has_proxy"`
		} `json:"services"`
	}
	if err := a.get(ctx, "/api/v1/services", nil, &services); err != nil {
		return nil, err
	}
	var edges struct {
		Edges []struct{ Caller, Callee string } `json:"edges"`
	}
	if err := a.get(ctx, "/api/v1/edges", nil, &edges); err != nil {
		return nil, err
	}
	proxied := map[string]bool{}
	for _, s := range services.Services {
		proxied[s.Name] = s.HasProxy
	}
	rep := &Report{From: o.From.UTC(), To: o.To.UTC(), PreviousFrom: prevFrom.UTC()}
	row := func(kind string, q url.Values) (Row, error) {
		r := Row{Kind: kind}
		cur, err := a.latency(ctx, q, o.From, o.To)
		if err != nil {
			return r, err
		}
		r.Current = cur
		prev, err := a.latency(ctx, q, prevFrom, o.From)
		if err != nil {
			return r, err
		}
		if prev.Requests > 0 {
			r.Previous = &prev
			r.Change = change(cur, prev)
		}
		return r, nil
	}
	for _, s := range services.Services {
		if !s.HasProxy {
			continue
		}
		r, err := row("service", url.Values{"service": {s.Name}, "direction": {"inbound"}})
		if err != nil {
			return nil, err
		}
		if r.Current.Requests == 0 {
			continue
		}
		r.Name, r.Service, r.MeasuredBy = s.Name, s.Name, "callee"
		rep.Services = append(rep.Services, r)
	}
	for _, e := range edges.Edges {
		q := url.Values{"service": {e.Caller}, "edge": {e.Caller + "->" + e.Callee}}
		by := "caller"
		if !proxied[e.Caller] {
			q.Set("service", e.Callee)
			by = "callee"
		}
		r, err := row("edge", q)
		if err != nil {
			return nil, err
		}
		if r.Current.Requests == 0 {
			continue
		}
		r.Name, r.Caller, r.Callee, r.MeasuredBy = e.Caller+" -> "+e.Callee, e.Caller, e.Callee, by
		rep.Edges = append(rep.Edges, r)
	}
	sortWorstFirst(rep.Services)
	sortWorstFirst(rep.Edges)
	return rep, nil
}

func (a *APISource) latency(ctx context.Context, q url.Values, from, to time.Time) (Stats, error) {
	q = cloneValues(q)
	q.Set("from", from.UTC().Format(time.RFC3339Nano))
	q.Set("to", to.UTC().Format(time.RFC3339Nano))
	var l struct {
		Requests  int64              `json:"requests"`
		Errors    int64              `json:"errors"`
		ErrorRate float64            `json:"error_rate"`
		LatencyMs map[string]float64 `json:"latency_ms"`
	}
	if err := a.get(ctx, "/api/v1/latency", q, &l); err != nil {
		return Stats{}, err
	}
	us := func(k string) int64 { return int64(math.Round(l.LatencyMs[k] * 1000)) }
	return Stats{Requests: l.Requests, Errors: l.Errors, ErrorRate: l.ErrorRate,
		P50: us("p50"), P90: us("p90"), P99: us("p99"), P999: us("p99.9"), Max: us("max")}, nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// get fetches one query API document into v.
func (a *APISource) get(ctx context.Context, path string, q url.Values, v any) error {
	u := strings.TrimRight(a.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("query api %s: %w", a.BaseURL, err)
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return fmt.Errorf("query api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && path == "/api/v1/rollups" {
		return fmt.Errorf("%w at %s", ErrNoRollupsAPI, a.BaseURL)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("query api %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(v); err != nil {
		return fmt.Errorf("query api %s: decode: %w", u, err)
	}
	return nil
}

func (a *APISource) client() *http.Client {
	if a.Client != nil {
		return a.Client
	}
	return &http.Client{Timeout: time.Minute}
}
