package dashboards

import (
	"fmt"
	"strings"
	"time"

	"github.com/meshlens/meshlens/slo"
)

// SLO expressions. A service's SLIs use its inbound series (docs/metrics.md):
// availability counts 5xx as bad, latency counts requests slower than the
// threshold as bad, exactly, from meshlens_requests_faster_than_total.

// The series the alerts generator records for every SLO (alerts package):
// the error ratio over each alert window and over the SLO window, and the
// error budget left, each labelled slo=<name>.
const (
	recordErrorRatio = "meshlens:slo_error_ratio:rate" // + window: rate1h, rate30d
	recordBudgetLeft = "meshlens:slo_error_budget_remaining:ratio"
)

// policy returns the SLO's burn-rate alert policy.
func policy(o slo.SLO) slo.Policy {
	if o.Policy != nil {
		return *o.Policy
	}
	return slo.DefaultPolicy()
}

// burnWindows returns the windows the SLO's alerts measure, shortest first.
func burnWindows(o slo.SLO) []string {
	p := policy(o)
	var out []string
	for _, d := range p.Durations() {
		out = append(out, promDuration(d))
	}
	return out
}

// promDuration writes d the way PromQL reads it and the alerts name their
// recorded series (30d, 1d, 1w, 5m).
func promDuration(d time.Duration) string { return slo.FormatDuration(d) }

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

// rawBadRatio is the share of bad requests of o over window, computed
// from the collector's metrics the way the alerts' recording rules compute
// it.
func rawBadRatio(o slo.SLO, window string) string {
	s := sloSel(o)
	if o.Indicator == slo.Latency {
		fast := sumBy(nil, rate(metricFasterThan, s.and(eq("threshold", slo.ThresholdLabel(o.Threshold))), window))
		return fmt.Sprintf("clamp_min(1 - %s / %s, 0)", fast, requestRate(s, nil, window))
	}
	return errorRatio(s, nil, window)
}

// badRatio is the share of bad requests of o over window, labelled slo: the
// alerts' recorded series where Prometheus has the generated rules loaded,
// else computed from the raw metrics (slower over long windows).
func badRatio(o slo.SLO, window string) string {
	recorded := fmt.Sprintf("max by (slo) (%s%s{slo=%q})", recordErrorRatio, window, o.Name)
	raw := fmt.Sprintf(`max by (slo) (label_replace(%s, "slo", %q, "", ""))`, rawBadRatio(o, window), o.Name)
	return "(" + recorded + " or " + raw + ")"
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
// (negative once overspent): the alerts' recorded series, else computed.
func budgetLeftExpr(o slo.SLO) string {
	recorded := fmt.Sprintf("max by (slo) (%s{slo=%q})", recordBudgetLeft, o.Name)
	return "(" + recorded + " or 1 - " + badRatio(o, promDuration(o.Window)) + " / " + budgetFraction(o) + ")"
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
