package dashboards

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SLO expressions. A service's SLIs use its inbound series (docs/metrics.md):
// availability counts 5xx as bad, latency counts requests slower than the
// threshold as bad, exactly, from meshlens_requests_faster_than_total.

// burnWindows are the windows of the multi-window multi-burn-rate alerts
// (Google SRE Workbook): page on 1h and 5m at 14.4×, on 6h and 30m at 6×;
// ticket on 1d and 2h at 3×, on 3d and 6h at 1×.
var burnWindows = []struct {
	window    string
	threshold float64
}{
	{"5m", 14.4}, {"30m", 6}, {"1h", 14.4}, {"2h", 3}, {"6h", 6}, {"1d", 3}, {"3d", 1},
}

// promDuration writes d the way PromQL reads it, in its largest whole unit.
func promDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
}

// thresholdLabel is the threshold label value of
// meshlens_requests_faster_than_total: seconds, shortest form ("0.25").
func thresholdLabel(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// sloSel selects the SLO's service's inbound series.
func sloSel(o SLO) sel { return sel(inbound).and(eq("service", o.Service)) }

// badRatio is the share of bad requests of o over window, by labels.
func badRatio(o SLO, window string, by []string) string {
	s := sloSel(o)
	if o.Kind == Latency {
		fast := sumBy(by, rate(metricFasterThan, s.and(eq("threshold", thresholdLabel(o.Threshold))), window))
		return fmt.Sprintf("(1 - %s / %s)", fast, requestRate(s, by, window))
	}
	return "(" + errorRatio(s, by, window) + ")"
}

// budgetFraction is 1 - objective, the share of requests the SLO may lose.
func budgetFraction(o SLO) string { return floatLiteral(roundObjective(1 - o.Objective)) }

// roundObjective drops float noise (1-0.999 = 0.0010000000000000009).
func roundObjective(f float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64)
	return r
}

// sliExpr is the SLI over window: the share of good requests.
func sliExpr(o SLO, window string, by []string) string {
	return "1 - " + badRatio(o, window, by)
}

// burnRateExpr is how fast the budget burns over window: 1 spends it exactly
// over the SLO window.
func burnRateExpr(o SLO, window string, by []string) string {
	return badRatio(o, window, by) + " / " + budgetFraction(o)
}

// budgetLeftExpr is the share of the error budget left over the SLO window
// (negative once overspent).
func budgetLeftExpr(o SLO, by []string) string {
	return "1 - " + badRatio(o, promDuration(o.Window), by) + " / " + budgetFraction(o)
}

// withSLOLabel sets label slo to the SLO's name, so that `or` keeps the
// series of several SLOs of one service apart.
func withSLOLabel(expr string, o SLO) string {
	return fmt.Sprintf(`label_replace(%s, "slo", %q, "service", ".*")`, expr, o.Name)
}

// budgetLeftByService is, per service, the budget left of its tightest SLO.
func budgetLeftByService(slos map[string][]SLO, services []Service) string {
	parts := []string{}
	for _, s := range services {
		for _, o := range slos[s.Name] {
			parts = append(parts, withSLOLabel(budgetLeftExpr(o, []string{"service"}), o))
		}
	}
	if len(parts) == 0 {
		return "vector(1)"
	}
	return "min by (service) (" + strings.Join(parts, " or ") + ")"
}
