package main

import (
	"fmt"
	"io"
	"math"
	"slices"
)

// stat is a mean over rounds and half the spread between rounds (max−min)/2.
type stat struct{ mean, half float64 }

func (s stat) String() string {
	if math.IsNaN(s.mean) {
		return "–"
	}
	return fmt.Sprintf("%s ±%s", num(s.mean), num(s.half))
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func statOf(vs []float64) stat {
	if len(vs) == 0 {
		return stat{math.NaN(), math.NaN()}
	}
	var sum float64
	for _, v := range vs {
		sum += v
	}
	return stat{sum / float64(len(vs)), (slices.Max(vs) - slices.Min(vs)) / 2}
}

func ratio(a, b stat) string {
	if math.IsNaN(a.mean) || math.IsNaN(b.mean) || b.mean <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.mean/b.mean)
}

// table holds the results by variant and load.
type table struct {
	by     map[[2]string][]result
	direct map[[2]any]result // load, round → direct result
}

func newTable(rs []result) table {
	t := table{by: map[[2]string][]result{}, direct: map[[2]any]result{}}
	for _, r := range rs {
		k := [2]string{r.Variant, r.Load}
		t.by[k] = append(t.by[k], r)
		if r.Variant == "direct" {
			t.direct[[2]any{r.Load, r.Round}] = r
		}
	}
	return t
}

// metric applies f to each round of variant v at load and summarises.
func (t table) metric(v, load string, f func(r, direct result) float64) stat {
	var vs []float64
	for _, r := range t.by[[2]string{v, load}] {
		if d, ok := t.direct[[2]any{load, r.Round}]; ok {
			vs = append(vs, f(r, d))
		}
	}
	return statOf(vs)
}

func added(i int) func(r, d result) float64 {
	return func(r, d result) float64 { return r.P[i] - d.P[i] }
}
func absolute(i int) func(r, d result) float64 {
	return func(r, d result) float64 { return r.P[i] }
}
func cpuPer1k(r, _ result) float64 { return r.CPU / (float64(r.Requests) / 1000) }
func rss(r, _ result) float64      { return r.RSSMB }

// perCPUSecond is requests per CPU-second of the proxy: what one core
// saturated by this proxy alone would serve.
func perCPUSecond(r, _ result) float64 {
	if r.CPU == 0 {
		return math.NaN()
	}
	return float64(r.Requests) / r.CPU
}
func qps(r, _ result) float64  { return r.QPS }
func errs(r, _ result) float64 { return float64(r.Errors) }

func report(w io.Writer, o options, rs []result) {
	t := newTable(rs)
	var names []string
	for _, r := range rs {
		if !slices.Contains(names, r.Variant) {
			names = append(names, r.Variant)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return order(a) - order(b) })

	fmt.Fprintf(w, "Each cell: mean over %d interleaved rounds ± half the spread between rounds (max−min)/2.\n", o.rounds)
	fmt.Fprintf(w, "Latency in µs added over direct in the same round; CPU-seconds of the proxy per 1000 requests; peak RSS (VmHWM) in MiB.\n")
	for _, load := range o.rates {
		fmt.Fprintf(w, "\n### %s requests/s, %d connections, %s per run\n\n", load, o.conns, o.duration)
		fmt.Fprintln(w, "| proxy | +p50 | +p90 | +p99 | +p99.9 | CPU s/1k req | × bare Go | × HAProxy | peak RSS MiB | × bare Go | × HAProxy | errors |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, v := range names {
			if v == "direct" {
				fmt.Fprintf(w, "| direct (absolute p50/p90/p99/p99.9) | %s | %s | %s | %s | | | | | | | %s |\n",
					t.metric(v, load, absolute(0)), t.metric(v, load, absolute(1)), t.metric(v, load, absolute(2)),
					t.metric(v, load, absolute(3)), num(t.metric(v, load, errs).mean))
				continue
			}
			cpu, mem := t.metric(v, load, cpuPer1k), t.metric(v, load, rss)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v,
				t.metric(v, load, added(0)), t.metric(v, load, added(1)), t.metric(v, load, added(2)), t.metric(v, load, added(3)),
				cpu, ratio(cpu, t.metric("bare-go", load, cpuPer1k)), ratio(cpu, t.metric("haproxy", load, cpuPer1k)),
				mem, ratio(mem, t.metric("bare-go", load, rss)), ratio(mem, t.metric("haproxy", load, rss)),
				num(t.metric(v, load, errs).mean))
		}
	}

	fmt.Fprintf(w, "\n### Closed loop on one core: fortio -qps 0, %d connections, %s per run\n\n", o.conns, o.closedDuration)
	fmt.Fprintln(w, "Direct shows the ceiling of fortio and its backend sharing CPU 0; a proxy that does not saturate CPU 1 is")
	fmt.Fprintln(w, "limited by that ceiling, so requests per CPU-second of the proxy is given as its one-core capacity too.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| proxy | requests/s | × Caddy | proxy CPU share | requests per CPU-second | × Caddy | p50 µs | p99 µs | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	caddy, caddyCap := t.metric("caddy", "closed", qps), t.metric("caddy", "closed", perCPUSecond)
	share := func(r, _ result) float64 { return r.CPU / o.closedDuration.Seconds() }
	for _, v := range names {
		q, c := t.metric(v, "closed", qps), t.metric(v, "closed", perCPUSecond)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v, q, ratio(q, caddy), t.metric(v, "closed", share),
			c, ratio(c, caddyCap), t.metric(v, "closed", absolute(0)), t.metric(v, "closed", absolute(2)),
			num(t.metric(v, "closed", errs).mean))
	}
	if slices.Contains(names, "meshproxy") {
		targets(w, t, o.rates)
	}
}

// targets checks issue 2's targets for meshproxy with full telemetry.
func targets(w io.Writer, t table, rates []string) {
	top := rates[len(rates)-1]
	m := func(v, load string, f func(r, d result) float64) float64 { return t.metric(v, load, f).mean }
	// check prints one target: got ≤ limit, or got ≥ limit when floor.
	check := func(name string, got, limit float64, unit string, floor bool) {
		ok, cmp := got <= limit, "≤"
		if floor {
			ok, cmp = got >= limit, "≥"
		}
		verdict := "met"
		if !ok || math.IsNaN(got) {
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| %s | %.2f%s | %s %.2f%s | %s |\n", name, got, unit, cmp, limit, unit, verdict)
	}
	fmt.Fprintf(w, "\n### Targets (meshproxy, full telemetry; latency and RSS at %s requests/s)\n\n", top)
	fmt.Fprintln(w, "| target | measured | limit | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, load := range rates {
		check("CPU per request vs bare Go @"+load, m("meshproxy", load, cpuPer1k)/m("bare-go", load, cpuPer1k), 1.0, "×", false)
	}
	// An added latency at or below zero means direct's own noise was larger
	// than what the proxy adds: the ratio says nothing then.
	addedRatio := func(name, a, b string, i int) {
		x, y := m(a, top, added(i)), m(b, top, added(i))
		if x <= 0 || y <= 0 {
			fmt.Fprintf(w, "| %s | %s %+.0f µs, %s %+.0f µs (difference %+.0f µs) | ≤ %.2f× | not measurable: direct's own spread is larger |\n",
				name, a, x, b, y, x-y, 1.0)
			return
		}
		check(name, x/y, 1.0, "×", false)
	}
	addedRatio("added p50 vs bare Go", "meshproxy", "bare-go", 0)
	addedRatio("added p99 vs bare Go", "meshproxy", "bare-go", 2)
	check("peak RSS", m("meshproxy", top, rss), 30, " MiB", false)
	x, y := m("meshproxy", top, added(2)), m("meshproxy-notel", top, added(2))
	if x <= 0 || y <= 0 {
		fmt.Fprintf(w, "| telemetry on/off: added p99 | on %+.0f µs, off %+.0f µs (difference %+.0f µs) | ≤ 1.10× | not measurable: direct's own spread is larger |\n", x, y, x-y)
	} else {
		check("telemetry on/off: added p99", x/y, 1.1, "×", false)
	}
	check("telemetry on/off: CPU", m("meshproxy", top, cpuPer1k)/m("meshproxy-notel", top, cpuPer1k), 1.15, "×", false)
	check("closed-loop throughput vs Caddy", m("meshproxy", "closed", qps)/m("caddy", "closed", qps), 1.0, "×", true)
	check("one-core capacity (requests per CPU-second) vs Caddy",
		m("meshproxy", "closed", perCPUSecond)/m("caddy", "closed", perCPUSecond), 1.0, "×", true)
}

func order(v string) int {
	i := slices.IndexFunc(variants(), func(x variant) bool { return x.name == v })
	if i < 0 {
		return 99
	}
	return i
}
