package dashboards

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshlens/meshlens/slo"
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

// sloSel selects the SLO's series (its scope: a service's inbound side, an
// edge from the caller's side, a route, or a proxy-less service through its
// callers).
func sloSel(o slo.SLO) sel {
	var parts []string
	for _, m := range o.Scope.Selector() {
		parts = append(parts, eq(m.Name, m.Value))
	}
	return sel("").and(parts...)
}

// badRatio is the share of bad requests of o over window.
func badRatio(o slo.SLO, window string) string {
	s := sloSel(o)
	if o.Indicator == slo.Latency {
		fast := sumBy(nil, rate(metricFasterThan, s.and(eq("threshold", slo.ThresholdLabel(o.Threshold))), window))
		return fmt.Sprintf("(1 - %s / %s)", fast, requestRate(s, nil, window))
	}
	return "(" + errorRatio(s, nil, window) + ")"
}

// budgetFraction is 1 - objective, the share of requests the SLO may lose.
func budgetFraction(o slo.SLO) string { return floatLiteral(o.ErrorBudget()) }

// sliExpr is the SLI over window: the share of good requests.
func sliExpr(o slo.SLO, window string) string {
	return "1 - " + badRatio(o, window)
}

// burnRateExpr is how fast the budget burns over window: 1 spends it exactly
// over the SLO window.
func burnRateExpr(o slo.SLO, window string) string {
	return badRatio(o, window) + " / " + budgetFraction(o)
}

// budgetLeftExpr is the share of the error budget left over the SLO window
// (negative once overspent).
func budgetLeftExpr(o slo.SLO) string {
	return "1 - " + badRatio(o, promDuration(o.Window)) + " / " + budgetFraction(o)
}

// withSLOLabels sets the labels service and slo of an SLO's expression (one
// series), so that `or` keeps the series of several SLOs apart and tables
// can join them by service.
func withSLOLabels(expr string, o slo.SLO) string {
	return fmt.Sprintf(`label_replace(label_replace(%s, "service", %q, "", ""), "slo", %q, "", "")`, expr, o.Scope.Service, o.Name)
}

// budgetLeftByService is, per service, the budget left of its tightest SLO.
func budgetLeftByService(slos map[string][]slo.SLO, services []Service) string {
	parts := []string{}
	for _, s := range services {
		for _, o := range slos[s.Name] {
			parts = append(parts, withSLOLabels(budgetLeftExpr(o), o))
		}
	}
	if len(parts) == 0 {
		return "vector(1)"
	}
	return "min by (service) (" + strings.Join(parts, " or ") + ")"
}
