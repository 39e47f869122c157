package jaeger

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"
	"time"
)

// v3Traces is the api_v3 answer as Grafana's backend decodes it
// (pkg/tsdb/jaeger/types GrpcTracesResponse): OTLP JSON under "result".
type v3Traces struct {
	Result struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []v3KeyValue `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Spans []struct {
					TraceID           string       `json:"traceId"`
					SpanID            string       `json:"spanId"`
					ParentSpanID      string       `json:"parentSpanId"`
					Name              string       `json:"name"`
					Kind              int          `json:"kind"`
					StartTimeUnixNano string       `json:"startTimeUnixNano"`
					EndTimeUnixNano   string       `json:"endTimeUnixNano"`
					Attributes        []v3KeyValue `json:"attributes"`
					Status            struct {
						Code int `json:"code"`
					} `json:"status"`
				} `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	} `json:"result"`
	Error struct {
		HTTPCode int    `json:"httpCode"`
		Message  string `json:"message"`
	} `json:"error"`
}

type v3KeyValue struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
		IntValue    string `json:"intValue"`
	} `json:"value"`
}

func getV3(t *testing.T, rawURL string, wantStatus int, v any) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: HTTP %d, want %d: %s", rawURL, resp.StatusCode, wantStatus, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", rawURL, err, body)
	}
}

// TestAPIv3AsGrafana sends the api_v3 requests of Grafana's gRPC-mode Jaeger
// client: query.* parameters, attributes as a JSON object, times RFC 3339
// appended unescaped.
func TestAPIv3AsGrafana(t *testing.T) {
	srv := newTestServer(t)
	q := url.Values{"query.service_name": {"checkout"}, "query.attributes": {`{"http.route":"/pay"}`}, "query.duration_min": {"100ms"}}
	raw := srv.URL + "/api/v3/traces?" + q.Encode() + "&query.start_time_min=" + t0.Add(-time.Hour).Format(time.RFC3339Nano) +
		"&query.start_time_max=" + t0.Add(time.Hour).In(time.FixedZone("CET", 3600)).Format(time.RFC3339Nano)
	var r v3Traces
	getV3(t, raw, 200, &r)
	services := map[string]int{}
	ids := map[string]bool{}
	for _, rs := range r.Result.ResourceSpans {
		svc := rs.Resource.Attributes[0].Value.StringValue
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				services[svc]++
				ids[sp.TraceID] = true
				if sp.SpanID == "a000000000000004" {
					if sp.Kind != 2 || sp.Status.Code != 2 || sp.ParentSpanID != "a000000000000003" || sp.StartTimeUnixNano != "1795608000005000000" {
						t.Fatalf("payments span = %+v", sp)
					}
				}
			}
		}
	}
	if !reflect.DeepEqual(services, map[string]int{"frontend": 2, "checkout": 1, "payments": 1}) || len(ids) != 1 || !ids[traceA] {
		t.Fatalf("search result: spans per service %v, traces %v", services, ids)
	}

	var one v3Traces
	getV3(t, srv.URL+"/api/v3/traces/"+traceB, 200, &one)
	if n := len(one.Result.ResourceSpans); n != 2 {
		t.Fatalf("trace B has %d resource spans, want 2", n)
	}
	var missing v3Traces
	getV3(t, srv.URL+"/api/v3/traces/ffffffffffffffffffffffffffffffff", 404, &missing)
	if missing.Error.HTTPCode != 404 || missing.Error.Message != "trace not found" {
		t.Fatalf("missing trace: %+v", missing.Error)
	}
	var bad v3Traces
	getV3(t, srv.URL+"/api/v3/traces?query.service_name=a&query.duration_min=soon", 400, &bad)
	if bad.Error.HTTPCode != 400 || bad.Error.Message != `parameter 'query.duration_min': "soon" is not a duration like 100ms or 1.5s` {
		t.Fatalf("bad duration: %+v", bad.Error)
	}

	var svcs struct{ Services []string }
	getV3(t, srv.URL+"/api/v3/services", 200, &svcs)
	if !sort.StringsAreSorted(svcs.Services) || len(svcs.Services) != 4 {
		t.Fatalf("services = %v", svcs.Services)
	}
	var ops struct{ Operations []Operation }
	getV3(t, srv.URL+"/api/v3/operations?service=frontend&span_kind=client", 200, &ops)
	if !reflect.DeepEqual(ops.Operations, []Operation{{"POST /pay", "client"}}) {
		t.Fatalf("operations = %v", ops.Operations)
	}
}

func FuzzV3Search(f *testing.F) {
	f.Add("query.service_name=a&query.attributes=%7B%22k%22%3A%22v%22%7D&query.start_time_min=2026-11-25T12:00:00Z&query.search_depth=5")
	f.Add("query.service_name=a&query.attributes[k]=v&query.start_time_max=2026-11-25T12:00:00 01:00")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		v1, err := v3ToV1(&url.URL{RawQuery: rawQuery})
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a paramError", err)
			}
			return
		}
		if _, err := parseTraceSearch(v1, testNow); err != nil {
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a paramError", err)
			}
		}
	})
}
