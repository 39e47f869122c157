package jaeger

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestParseTraceSearch(t *testing.T) {
	us := func(tm time.Time) string { return itoa(tm.UnixMicro()) }
	start := testNow.Add(-time.Hour)

	f := func(name, rawQuery string, want traceSearch) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			v, err := url.ParseQuery(rawQuery)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseTraceSearch(v, testNow)
			if err != nil {
				t.Fatalf("parseTraceSearch(%q): %v", rawQuery, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("parseTraceSearch(%q)\n got %+v\nwant %+v", rawQuery, got, want)
			}
		})
	}

	// The shape Grafana's Jaeger data source sends: tags as JSON, start and
	// end in µs, lookback=custom.
	f("grafana search",
		"service=checkout&operation=GET+%2Fcart&tags=%7B%22http.route%22%3A%22%2Fcart%22%7D&minDuration=100ms&maxDuration=2s&limit=20&start="+us(start)+"&end="+us(testNow)+"&lookback=custom",
		traceSearch{Query: store.TraceQuery{
			Service: "checkout", Operation: "GET /cart",
			Tags:        map[string]string{"http.route": "/cart"},
			MinDuration: 100 * time.Millisecond, MaxDuration: 2 * time.Second,
			Start: time.UnixMicro(start.UnixMicro()), End: time.UnixMicro(testNow.UnixMicro()),
			Limit: 20,
		}})
	f("defaults", "service=a",
		traceSearch{Query: store.TraceQuery{Service: "a", Start: testNow.Add(-DefaultTraceLookback), End: testNow, Limit: DefaultLimit}})
	f("lookback days", "service=a&lookback=2d",
		traceSearch{Query: store.TraceQuery{Service: "a", Start: testNow.Add(-48 * time.Hour), End: testNow, Limit: DefaultLimit}})
	f("lookback hours", "service=a&lookback=1h",
		traceSearch{Query: store.TraceQuery{Service: "a", Start: testNow.Add(-time.Hour), End: testNow, Limit: DefaultLimit}})
	f("limit capped", "service=a&limit=100000",
		traceSearch{Query: store.TraceQuery{Service: "a", Start: testNow.Add(-DefaultTraceLookback), End: testNow, Limit: MaxLimit}})
	f("limit zero means default", "service=a&limit=0",
		traceSearch{Query: store.TraceQuery{Service: "a", Start: testNow.Add(-DefaultTraceLookback), End: testNow, Limit: DefaultLimit}})
	f("derived and request id tags",
		"service=a&tags=%7B%22error%22%3A%22true%22%2C%22span.kind%22%3A%22server%22%2C%22request_id%22%3A%22r-1%22%2C%22k%22%3A%22v%22%7D",
		traceSearch{
			Query:     store.TraceQuery{Service: "a", Tags: map[string]string{"k": "v"}, Start: testNow.Add(-DefaultTraceLookback), End: testNow, Limit: DefaultLimit},
			Derived:   map[string]string{"error": "true", "span.kind": "server"},
			RequestID: "r-1",
		})
	f("jaeger ui tag params", "service=a&tag=http.route:%2Fx&tag=url.path:%2Fx%3Fa%3Db",
		traceSearch{Query: store.TraceQuery{Service: "a", Tags: map[string]string{"http.route": "/x", "url.path": "/x?a=b"}, Start: testNow.Add(-DefaultTraceLookback), End: testNow, Limit: DefaultLimit}})
	f("trace ids", "traceID=ABC&traceID=0123456789abcdef0123456789abcdef",
		traceSearch{TraceIDs: []string{"00000000000000000000000000000abc", "0123456789abcdef0123456789abcdef"}})
}

func TestParseTraceSearchErrors(t *testing.T) {
	f := func(rawQuery, param string) {
		t.Helper()
		v, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseTraceSearch(v, testNow)
		var pe *paramError
		if !errors.As(err, &pe) {
			t.Fatalf("parseTraceSearch(%q) = %v, want a paramError", rawQuery, err)
		}
		if pe.Param != param {
			t.Fatalf("parseTraceSearch(%q) names %q, want %q (%v)", rawQuery, pe.Param, param, err)
		}
	}
	f("", "service")
	f("service=+", "service")
	f("service=a&minDuration=fast", "minDuration")
	f("service=a&minDuration=-1s", "minDuration")
	f("service=a&maxDuration=1", "maxDuration")
	f("service=a&minDuration=2s&maxDuration=1s", "maxDuration")
	f("service=a&start=yesterday", "start")
	f("service=a&start=-5", "start")
	f("service=a&end=1.5", "end")
	f("service=a&start=2000&end=1000", "end")
	f("service=a&lookback=forever", "lookback")
	f("service=a&lookback=0d", "lookback")
	f("service=a&limit=ten", "limit")
	f("service=a&limit=-1", "limit")
	f("service=a&tags=k%3Dv", "tags")
	f("service=a&tags=%7B%22k%22%3A1%7D", "tags")
	f("service=a&tags=%7B%22%22%3A%22v%22%7D", "tags")
	f("service=a&tag=novalue", "tag")
	f("traceID=xyz", "traceID")
	f("traceID=0123456789abcdef0123456789abcdef0", "traceID")
}

func TestParseDependencyWindow(t *testing.T) {
	v, _ := url.ParseQuery("endTs=" + itoa(testNow.UnixMilli()) + "&lookback=3600000")
	start, end, err := parseDependencyWindow(v, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !end.Equal(testNow) || !start.Equal(testNow.Add(-time.Hour)) {
		t.Fatalf("window = [%v, %v], want [%v, %v]", start, end, testNow.Add(-time.Hour), testNow)
	}
	start, end, err = parseDependencyWindow(url.Values{}, testNow)
	if err != nil || !end.Equal(testNow) || !start.Equal(testNow.Add(-DefaultDependencyLookback)) {
		t.Fatalf("defaults = [%v, %v] %v", start, end, err)
	}
	for _, bad := range []string{"endTs=x", "endTs=-1", "lookback=0", "lookback=1h"} {
		v, _ := url.ParseQuery(bad)
		if _, _, err := parseDependencyWindow(v, testNow); err == nil {
			t.Errorf("parseDependencyWindow(%q): no error", bad)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func FuzzParseTraceSearch(f *testing.F) {
	f.Add("service=a&tags=%7B%22k%22%3A%22v%22%7D&minDuration=1ms&start=1&end=2&limit=3")
	f.Add("traceID=abc&traceID=zz")
	f.Add("service=a&lookback=7d&tag=a:b")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		ts, err := parseTraceSearch(v, testNow)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a paramError", err)
			}
			return
		}
		if len(ts.TraceIDs) > 0 {
			for _, id := range ts.TraceIDs {
				if len(id) != 32 {
					t.Fatalf("trace ID %q not normalised", id)
				}
			}
			return
		}
		q := ts.Query
		if q.Service == "" || q.Limit <= 0 || q.Limit > MaxLimit || q.End.Before(q.Start) {
			t.Fatalf("accepted an invalid search: %+v", q)
		}
		if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
			t.Fatalf("accepted maxDuration < minDuration: %+v", q)
		}
	})
}
