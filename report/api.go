package report

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/meshlens/meshlens/store"
)

// APISource reads rollups from a running collector's query API. The report
// needs the stored histograms themselves (for p99.99, the distribution and
// the interval log), which it asks for at GET /api/v1/rollups?from=&to=
// (RFC 3339), answered with {"rollups": [store.Rollup as JSON]}.
type APISource struct {
	// BaseURL is the collector's query API, e.g. http://127.0.0.1:16686.
	BaseURL string
	// Token is sent as a bearer token when set.
	Token  string
	Client *http.Client
}

var _ Source = (*APISource)(nil)

// apiRollup is a rollup as the query API writes it.
type apiRollup struct {
	Minute   time.Time `json:"minute"`
	Service  string    `json:"service"`
	Dir      string    `json:"direction"`
	Peer     string    `json:"peer"`
	Route    string    `json:"route"`
	Method   string    `json:"method"`
	Class    string    `json:"status_class"`
	Source   string    `json:"source"`
	Count    int64     `json:"count"`
	Total    string    `json:"total"`
	Upstream string    `json:"upstream"`
	Overhead string    `json:"overhead"`
}

// Rollups implements Source. The error wraps ErrNoRollupsAPI when the
// collector does not serve the endpoint.
func (a *APISource) Rollups(ctx context.Context, f store.RollupFilter) ([]store.Rollup, error) {
	q := url.Values{"from": {f.From.UTC().Format(time.RFC3339)}, "to": {f.To.UTC().Format(time.RFC3339)}}
	for k, v := range map[string]string{"service": f.Service, "direction": string(f.Direction), "peer": f.Peer, "route": f.Route} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var body struct {
		Rollups []apiRollup `json:"rollups"`
	}
	if err := a.get(ctx, "/api/v1/rollups", q, &body); err != nil {
		return nil, err
	}
	out := make([]store.Rollup, 0, len(body.Rollups))
	for _, r := range body.Rollups {
		out = append(out, store.Rollup{Minute: r.Minute, Source: r.Source, Count: r.Count, Total: r.Total, Upstream: r.Upstream, Overhead: r.Overhead})
		k := &out[len(out)-1].Key
		k.Service, k.Peer, k.Route, k.Method, k.StatusClass = r.Service, r.Peer, r.Route, r.Method, r.Class
		k.Direction = modelDirection(r.Dir)
	}
	return out, nil
}
