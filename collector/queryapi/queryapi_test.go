package queryapi

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is a fixed minute; the handler's clock is an hour after it.
var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

var (
	webToCheckout   = model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "web", Route: "/buy", Method: "POST", StatusClass: "2xx"}
	webToCheckout5  = model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "web", Route: "/buy", Method: "POST", StatusClass: "5xx"}
	mobileCheckout  = model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "mobile", Route: "/cart", Method: "GET", StatusClass: "2xx"}
	checkoutLedger  = model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "ledger", Route: "/pay", Method: "POST", StatusClass: "2xx"}
	checkoutLedger4 = model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "ledger", Route: "/pay", Method: "POST", StatusClass: "4xx"}
)

func encode(t *testing.T, vals []int64) string {
	t.Helper()
	h := hdr.New()
	for _, v := range vals {
		hdr.Record(h, v)
	}
	s, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a real SQLite store holding rollups of several proxies over
// several minutes, spans of one trace, services and edges; ref holds, per
// hop-key filter, one histogram that saw every value written.
type fixture struct {
	st  store.Store
	srv *httptest.Server
	ref map[string]*hdr.Histogram
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fx := &fixture{st: st, ref: map[string]*hdr.Histogram{}}
	refFor := func(name string) *hdr.Histogram {
		if fx.ref[name] == nil {
			fx.ref[name] = hdr.New()
		}
		return fx.ref[name]
	}
	r := rand.New(rand.NewPCG(7, 8))
	var rollups []store.Rollup
	for m := 0; m < 30; m++ {
		minute := t0.Add(time.Duration(m) * time.Minute)
		for p, src := range []string{"proxy-a/1", "proxy-b/1", "proxy-c/1"} {
			for _, k := range []model.HopKey{webToCheckout, webToCheckout5, mobileCheckout, checkoutLedger, checkoutLedger4} {
				n := 5 + r.IntN(40)
				vals := make([]int64, n)
				for i := range vals {
					vals[i] = int64(1000*(1+p)) + int64(r.ExpFloat64()*20000)
				}
				for _, v := range vals {
					names := []string{"all " + string(k.Direction), "peer " + k.Peer, "route " + k.Route}
					if m < 10 {
						names = append(names, "first10 "+string(k.Direction))
					}
					for _, name := range names {
						hdr.Record(refFor(name), v)
					}
				}
				rollups = append(rollups, store.Rollup{Minute: minute, Key: k, Source: src, Count: int64(n),
					Total: encode(t, vals), Upstream: encode(t, vals), Overhead: encode(t, []int64{5})})
				fx.ref["count "+string(k.Direction)+" "+k.StatusClass+" "+k.Peer] = nil
			}
		}
	}
	if err := st.WriteRollups(ctx, rollups); err != nil {
		t.Fatal(err)
	}
	if err := st.ObserveServices(ctx, []store.Service{
		{Name: "checkout", HasProxy: true, FirstSeen: t0, LastSeen: t0.Add(30 * time.Minute)},
		{Name: "ledger", FirstSeen: t0, LastSeen: t0.Add(30 * time.Minute)},
		{Name: "web", FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(29 * time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.ObserveEdges(ctx, []store.Edge{
		{Caller: "web", Callee: "checkout", FirstSeen: t0, LastSeen: t0.Add(30 * time.Minute)},
		{Caller: "checkout", Callee: "ledger", FirstSeen: t0, LastSeen: t0.Add(30 * time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	const trace = "0af7651916cd43dd8448eb211c80319c"
	if err := st.WriteSpans(ctx, []store.Span{
		{TraceID: trace, SpanID: "b7ad6b7169203331", Service: "web", Name: "POST /buy", Kind: "client", Start: t0.Add(time.Second), Duration: 12 * time.Millisecond, StatusCode: "unset", RequestID: "req-1", Attributes: map[string]string{"http.route": "/buy"}},
		{TraceID: trace, SpanID: "c7ad6b7169203331", ParentSpanID: "b7ad6b7169203331", Service: "checkout", Name: "POST /buy", Kind: "server", Start: t0.Add(time.Second + time.Millisecond), Duration: 10 * time.Millisecond, StatusCode: "error", StatusMsg: "boom", RequestID: "req-1"},
	}); err != nil {
		t.Fatal(err)
	}
	fx.srv = httptest.NewServer(newHandler(st, slog.New(slog.DiscardHandler), func() time.Time { return t0.Add(time.Hour) }))
	t.Cleanup(fx.srv.Close)
	return fx
}

func (fx *fixture) get(t *testing.T, path string, out any) (int, string) {
	t.Helper()
	resp, err := http.Get(fx.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// golden compares body with testdata/name (rewritten with -update).
func golden(t *testing.T, name, body string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != body {
		t.Errorf("%s differs from the golden file:\n%s\nwant:\n%s", name, body, want)
	}
}

// TestQueryAPI runs every endpoint against one real SQLite store.
func TestQueryAPI(t *testing.T) {
	fx := newFixture(t)
	t.Run("services, edges, traces", func(t *testing.T) { servicesEdgesTraces(t, fx) })
	t.Run("errors", func(t *testing.T) { errorAnswers(t, fx) })
	t.Run("latency", func(t *testing.T) { latency(t, fx) })
	t.Run("rollups", func(t *testing.T) { rollupsAnswer(t, fx) })
}

// rollupsAnswer: /api/v1/rollups hands out the stored histograms, which,
// merged by the caller, equal one histogram that saw every value.
func rollupsAnswer(t *testing.T, fx *fixture) {
	from, to := t0.Format(time.RFC3339), t0.Add(30*time.Minute).Format(time.RFC3339)
	var rs Rollups
	path := "/api/v1/rollups?service=checkout&direction=inbound&from=" + from + "&to=" + to
	if code, body := fx.get(t, path, &rs); code != 200 {
		t.Fatalf("%s: %d %s", path, code, body)
	}
	if len(rs.Rollups) != 30*3*3 {
		t.Errorf("%d rollups, want %d", len(rs.Rollups), 30*3*3)
	}
	merged := hdr.New()
	var count int64
	for _, r := range rs.Rollups {
		if r.Service != "checkout" || r.Direction != "inbound" {
			t.Fatalf("rollup of another hop: %+v", r)
		}
		h, err := hdr.Decode(r.Total)
		if err != nil {
			t.Fatal(err)
		}
		merged.Merge(h)
		count += r.Count
	}
	ref := fx.ref["all inbound"]
	if !merged.Equals(ref) || count != ref.TotalCount() {
		t.Errorf("merged rollups: %d requests, equal to one histogram: %v (want %d)", merged.TotalCount(), merged.Equals(ref), ref.TotalCount())
	}
	for _, c := range []struct{ path, field string }{
		{"/api/v1/rollups?direction=sideways", "direction"},
		{"/api/v1/rollups?from=yesterday", "from"},
		{"/api/v1/rollups?from=2026-11-20T13:00:00Z&to=2026-11-20T12:00:00Z", "to"},
	} {
		code, body := fx.get(t, c.path, nil)
		var e Error
		_ = json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Field != c.field {
			t.Errorf("%s: %d %s, want 400 naming %q", c.path, code, body, c.field)
		}
	}
}

func servicesEdgesTraces(t *testing.T, fx *fixture) {
	for _, c := range []struct{ path, golden string }{
		{"/api/v1/services", "services.json"},
		{"/api/v1/edges", "edges.json"},
		{"/api/v1/traces/0af7651916cd43dd8448eb211c80319c", "trace.json"},
		{"/api/v1/traces/0AF7651916CD43DD8448EB211C80319C", "trace.json"},
		{"/api/v1/requests/req-1", "request.json"},
		{"/api/v1/latency?service=checkout&edge=web-%3Echeckout&from=2026-11-20T12:00:00Z&to=2026-11-20T12:30:00Z", "latency.json"},
	} {
		code, body := fx.get(t, c.path, nil)
		if code != 200 {
			t.Errorf("%s: %d %s", c.path, code, body)
			continue
		}
		golden(t, c.golden, body)
	}
}

func errorAnswers(t *testing.T, fx *fixture) {
	for _, c := range []struct {
		path  string
		code  int
		field string
	}{
		{"/api/v1/traces/ffffffffffffffffffffffffffffffff", 404, "trace_id"},
		{"/api/v1/traces/not-hex", 400, "trace_id"},
		{"/api/v1/requests/nope", 404, "request_id"},
		{"/api/v1/requests/" + url.PathEscape("has space"), 400, "request_id"},
		{"/api/v1/latency", 400, "service"},
		{"/api/v1/latency?service=checkout&from=yesterday", 400, "from"},
		{"/api/v1/latency?service=checkout&to=soon", 400, "to"},
		{"/api/v1/latency?service=checkout&from=2026-11-20T13:00:00Z&to=2026-11-20T12:00:00Z", 400, "to"},
		{"/api/v1/latency?service=checkout&from=2026-01-01T00:00:00Z&to=2026-11-20T12:00:00Z", 400, "from"},
		{"/api/v1/latency?service=checkout&edge=web", 400, "edge"},
		{"/api/v1/latency?service=checkout&edge=web->ledger", 400, "edge"},
		{"/api/v1/latency?service=checkout&direction=sideways", 400, "direction"},
		{"/api/v1/nothing", 404, "path"},
	} {
		code, body := fx.get(t, c.path, nil)
		var e Error
		_ = json.Unmarshal([]byte(body), &e)
		if code != c.code || e.Field != c.field || e.Error == "" {
			t.Errorf("%s: %d %s, want %d naming %q", c.path, code, body, c.code, c.field)
		}
	}
}

// latency: percentiles over any window, merged from the stored rollups
// of three proxies, equal those of one histogram that saw every value; the
// edge and route filters select the right hops.
func latency(t *testing.T, fx *fixture) {
	from, to := t0.Format(time.RFC3339), t0.Add(30*time.Minute).Format(time.RFC3339)
	check := func(path, refName string, wantDir, wantPeer string) Latency {
		t.Helper()
		var l Latency
		if code, body := fx.get(t, path, &l); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		ref := fx.ref[refName]
		if l.Requests != ref.TotalCount() || l.Direction != wantDir || l.Peer != wantPeer {
			t.Errorf("%s: %d requests %s peer %q, want %d %s %q", path, l.Requests, l.Direction, l.Peer, ref.TotalCount(), wantDir, wantPeer)
		}
		for _, q := range Quantiles {
			want := float64(ref.ValueAtPercentile(q)) / 1000
			if q == 100 {
				want = float64(ref.Max()) / 1000
			}
			if got := l.LatencyMs[quantileName(q)]; got != want {
				t.Errorf("%s: %s %v ms, one histogram %v ms", path, quantileName(q), got, want)
			}
		}
		return l
	}
	all := check("/api/v1/latency?service=checkout&from="+from+"&to="+to, "all inbound", "inbound", "")
	if all.Rollups != 30*3*3 || all.Errors != all.StatusCode["5xx"] || all.Errors == 0 || all.StatusCode["2xx"]+all.Errors != all.Requests {
		t.Errorf("inbound: %d rollups, by class %v", all.Rollups, all.StatusCode)
	}
	if want := float64(all.Errors) / float64(all.Requests); all.ErrorRate != want {
		t.Errorf("error rate %v, want %v", all.ErrorRate, want)
	}
	if want := float64(all.Requests) / 1800; all.RequestRate != want {
		t.Errorf("request rate %v, want %v", all.RequestRate, want)
	}
	if all.Overhead["max"] != 0.005 || all.Upstream["p50"] != all.LatencyMs["p50"] {
		t.Errorf("upstream/overhead %v %v", all.Upstream, all.Overhead)
	}
	// Unix seconds and "duration ago" select the same first ten minutes.
	check("/api/v1/latency?service=checkout&from="+strconv.FormatInt(t0.Unix(), 10)+"&to=50m", "first10 inbound", "inbound", "")
	// An edge, from the callee's side and from the caller's.
	check("/api/v1/latency?service=checkout&edge=web->checkout&from="+from+"&to="+to, "peer web", "inbound", "web")
	ledger := check("/api/v1/latency?service=checkout&edge=checkout->ledger&from="+from+"&to="+to, "peer ledger", "outbound", "ledger")
	if ledger.StatusCode["4xx"] == 0 || ledger.Errors != 0 {
		t.Errorf("ledger by class %v, errors %d (4xx are not errors)", ledger.StatusCode, ledger.Errors)
	}
	check("/api/v1/latency?service=checkout&direction=outbound&from="+from+"&to="+to, "all outbound", "outbound", "")
	check("/api/v1/latency?service=checkout&route=/cart&from="+from+"&to="+to, "route /cart", "inbound", "")
	// No data: zero requests, empty percentiles, still 200.
	var none Latency
	if code, _ := fx.get(t, "/api/v1/latency?service=nobody", &none); code != 200 || none.Requests != 0 || len(none.LatencyMs) != 0 {
		t.Errorf("unknown service: %d %+v", code, none)
	}
	// The default window is the hour up to the end of the handler's
	// current minute (13:01), so the first stored minute (12:00) is out.
	var def, rest Latency
	fx.get(t, "/api/v1/latency?service=checkout", &def)
	fx.get(t, "/api/v1/latency?service=checkout&from="+t0.Add(time.Minute).Format(time.RFC3339)+"&to="+to, &rest)
	if !def.To.Equal(t0.Add(time.Hour+time.Minute)) || !def.From.Equal(def.To.Add(-time.Hour)) || def.Requests != rest.Requests || def.Requests == 0 {
		t.Errorf("default window %v..%v: %d requests, want %d", def.From, def.To, def.Requests, rest.Requests)
	}
}
