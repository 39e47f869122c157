package spanrows

import (
	"reflect"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
)

func TestDay(t *testing.T) {
	day := int64(24 * time.Hour)
	for _, tc := range []struct{ ns, want int64 }{
		{0, 0}, {day - 1, 0}, {day, 1}, {-1, -1}, {-day, -1}, {-day - 1, -2},
		{time.Date(2026, 11, 26, 23, 59, 59, 0, time.UTC).UnixNano(), 20783}, // date -u -d 2026-11-26 +%s, / 86400,
	} {
		if got := Day(tc.ns); got != tc.want {
			t.Errorf("Day(%d) = %d, want %d", tc.ns, got, tc.want)
		}
	}
}

func TestSummary(t *testing.T) {
	d1 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
	d2 := time.Date(2026, 11, 26, 0, 0, 1, 0, time.UTC).UnixNano()
	var s Summary
	if s.Known() {
		t.Error("an empty summary is known")
	}
	name := []byte("GET /a")
	s.Note(d1, "web", string(name), "server")
	s.Note(d1+1, "web", "GET /a", "server")
	s.Note(d2, "web", "GET /b", "client")
	s.Note(d1, "web", "GET /a", "server") // seen before, not the row before
	name[0] = 'X'                         // the summary kept a copy
	want := Summary{Days: []int64{Day(d1), Day(d2)}, Ops: []Op{{"web", "GET /a", "server"}, {"web", "GET /b", "client"}}}
	if !reflect.DeepEqual(s, want) || !s.Known() {
		t.Fatalf("summary %+v, want %+v", s, want)
	}

	o := Summary{Days: []int64{Day(d2), Day(d2) + 1}, Ops: []Op{{"web", "GET /b", "client"}, {"db", "query", "client"}}}
	s.Merge(o)
	want.Days = append(want.Days, Day(d2)+1)
	want.Ops = append(want.Ops, Op{"db", "query", "client"})
	if !reflect.DeepEqual(s, want) {
		t.Errorf("merged %+v, want %+v", s, want)
	}
}

func TestSummarize(t *testing.T) {
	start := time.Date(2026, 11, 25, 23, 59, 59, 0, time.UTC)
	spans := []store.Span{
		{TraceID: "01", SpanID: "02", Service: "web", Name: "bad\xffname", Kind: "server", Start: start},
		{TraceID: "01", SpanID: "03", Service: "web", Name: "bad\xffname", Kind: "server", Start: start.Add(2 * time.Second)},
	}
	var rows []byte
	var noted Summary
	for i := range spans {
		rows = AppendSpan(rows, &spans[i])
		noted.Note(spans[i].Start.UnixNano(), Clean(spans[i].Service), Clean(spans[i].Name), Clean(spans[i].Kind))
	}
	got, n, err := Summarize(rows)
	if err != nil || n != 2 {
		t.Fatalf("Summarize: %d rows, %v", n, err)
	}
	if !reflect.DeepEqual(got, noted) || len(got.Days) != 2 || got.Ops[0].Name != "bad\uFFFDname" {
		t.Errorf("read off the rows %+v, noted %+v", got, noted)
	}
	if _, _, err := Summarize(rows[:len(rows)-3]); err == nil {
		t.Error("rows cut short summarize without an error")
	}
}
