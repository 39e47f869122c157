package alerts

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/meshlens/meshlens/slo"
)

// annotationValues are the values a firing alert's templates expand to; the
// promtool test generator passes them to get the expected annotations. nil
// yields the templates themselves.
type annotationValues struct {
	burn       float64
	budgetLeft *float64 // nil: no data yet
	at         time.Duration
	runbook    string // expanded runbook URL
}

// annotations are the annotations of one burn-rate alert: summary,
// description, burn rate, error budget left, runbook, dashboard and trace
// search links for the burning (long) window.
func (c Config) annotations(s *slo.SLO, w scaledWindow, v *annotationValues) map[string]string {
	long := w.Long
	value := func(format string) string {
		if v == nil {
			return fmt.Sprintf(`{{ $value | printf %q }}`, format)
		}
		return fmt.Sprintf(format, v.burn)
	}
	// queryNumber expands to a PromQL scalar expression evaluated when the
	// alert is, printed with format.
	queryNumber := func(expr, format, none string, val *float64) string {
		if v == nil {
			return fmt.Sprintf("{{ with query `%s` }}{{ . | first | value | printf %q }}{{ else }}%s{{ end }}", expr, format, none)
		}
		if val == nil {
			return none
		}
		return fmt.Sprintf(format, *val)
	}
	var startMs, endMs, startUs, endUs *float64
	if v != nil {
		a, b := float64(v.at-long)/float64(time.Millisecond), float64(v.at)/float64(time.Millisecond)
		startMs, endMs = &a, &b
		cu, du := a*1000, b*1000
		startUs, endUs = &cu, &du
	}
	longS := formatFloat(long.Seconds())
	var budgetPct *float64
	if v != nil && v.budgetLeft != nil {
		p := 100 * *v.budgetLeft
		budgetPct = &p
	}

	objective := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", 100*s.Objective), "0"), ".") + "%"
	what := "of requests without a server error"
	if s.Indicator == slo.Latency {
		what = "of requests within " + s.Threshold.String()
	}
	window := c.scale(s.Window)
	uid := slo.DashboardUID(s.Scope.Service)
	dashboard := fmt.Sprintf("%s/d/%s/%s?from=%s&to=%s", strings.TrimRight(c.GrafanaURL, "/"), uid, uid,
		queryNumber("(time() - "+longS+") * 1000", "%.0f", "now-"+dur(long), startMs),
		queryNumber("time() * 1000", "%.0f", "now", endMs))
	q := url.Values{}
	q.Set("service", s.Scope.Service)
	if s.Indicator == slo.Latency {
		q.Set("minDuration", s.Threshold.String())
	}
	traces := fmt.Sprintf("%s/search?%s&lookback=custom&limit=20&start=%s&end=%s", strings.TrimRight(c.TraceSearchURL, "/"), q.Encode(),
		queryNumber("(time() - "+longS+") * 1e6", "%.0f", "", startUs),
		queryNumber("time() * 1e6", "%.0f", "", endUs))
	runbook := c.RunbookURL
	if v != nil {
		runbook = v.runbook
	}
	return map[string]string{
		"summary": fmt.Sprintf("%s: SLO %s is burning its error budget %sx too fast (%s)",
			s.Scope.String(), s.Name, value("%.1f"), w.Severity),
		"description": fmt.Sprintf("Objective for %[3]s: %[1]s %[2]s over %[4]s. The burn rate over the last %[5]s is %[6]s, above %[7]s (confirmed over the last %[8]s): at that threshold %.1[9]f%% of the %[4]s error budget goes in %[5]s.",
			objective, what, s.Scope.String(), dur(window), dur(long), value("%.2f"), formatFloat(w.BurnRate), dur(w.Short),
			100*slo.BudgetConsumed(w.BurnRate, long, window)),
		"burn_rate":           value("%.2f"),
		"burn_rate_threshold": formatFloat(w.BurnRate),
		"error_budget_left":   queryNumber(fmt.Sprintf("100 * %s{slo=%q}", budgetLeftRecord, s.Name), "%.1f%%", "unknown", budgetPct),
		"runbook_url":         runbook,
		"dashboard":           dashboard,
		"trace_search":        traces,
	}
}
