package report

import (
	"sort"
	"time"

	"github.com/meshlens/meshlens/hdr"
)

// timeline merges each service's histograms per step of the window.
type timeline struct {
	origin time.Time
	step   time.Duration
	// steps[service][step index]
	steps map[string]map[int64]*agg
}

func newTimeline(origin time.Time, step time.Duration) *timeline {
	return &timeline{origin: origin, step: step, steps: map[string]map[int64]*agg{}}
}

func (t *timeline) index(at time.Time) int64 {
	d := at.Sub(t.origin)
	i := int64(d / t.step)
	if d < 0 && d%t.step != 0 {
		i-- // floor
	}
	return i
}

func (t *timeline) add(at time.Time, service string, h *hdr.Histogram, isErr bool) {
	m := t.steps[service]
	if m == nil {
		m = map[int64]*agg{}
		t.steps[service] = m
	}
	i := t.index(at)
	a := m[i]
	if a == nil {
		a = &agg{h: hdr.New()}
		m[i] = a
	}
	a.h.Merge(h)
	if isErr {
		a.errors += h.TotalCount()
	}
}

// series returns a service's points and interval histograms in time order.
func (t *timeline) series(service string) (Series, []Interval) {
	m := t.steps[service]
	idx := make([]int64, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	s := Series{Service: service, Points: make([]Point, 0, len(idx))}
	var ivs []Interval
	for _, i := range idx {
		a := m[i]
		start := t.origin.Add(time.Duration(i) * t.step).UTC()
		st := statsOf(a)
		s.Points = append(s.Points, Point{At: start, Requests: st.Requests, Errors: st.Errors, P50: st.P50, P99: st.P99, P999: st.P999, Max: st.Max})
		ivs = append(ivs, Interval{Tag: service, Start: start, End: start.Add(t.step), Histogram: a.h})
	}
	return s, ivs
}
