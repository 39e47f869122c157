package alerts

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/meshlens/meshlens/slo"
)

// Metric and recorded series names. The input metrics are the contract of
// docs/metrics.md.
const (
	requestsMetric    = "meshlens_requests_total"
	fasterThanMetric  = "meshlens_requests_faster_than_total"
	errorRatioRecord  = "meshlens:slo_error_ratio:rate" // + window, e.g. rate1h
	budgetLeftRecord  = "meshlens:slo_error_budget_remaining:ratio"
	serverErrorClass  = "5xx"
	AlertName         = "MeshlensErrorBudgetBurn"
	labelSLO          = "slo"
	labelService      = "service"
	labelKind         = "slo_kind"
	labelSeverity     = "severity"
	labelLongWindow   = "long_window"
	labelShortWindow  = "short_window"
	labelPeer         = "peer"
	labelRoute        = "route"
	labelThreshold    = "threshold"
	labelStatusClass  = "status_class"
	labelObjective    = "objective"
	labelSLOWindowLbl = "slo_window"
)

// promParser is the parser every generated expression is checked with: the
// default options, so nothing experimental (and nothing Prometheus 2.42
// would not read) gets through.
var promParser = parser.NewParser(parser.Options{})

// dur prints a duration the Prometheus way: 1h, 5m, 30d, 1m30s.
func dur(d time.Duration) string { return model.Duration(d).String() }

// selector renders a series selector with properly escaped label values.
func selector(metric string, ms []slo.Matcher) string {
	var b strings.Builder
	b.WriteString(metric)
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// errorRatioExpr is the SLI's error ratio over window w: the share of
// requests that failed (availability) or were slower than the threshold
// (latency). With no requests the result is empty, so no alert fires on
// silence.
func errorRatioExpr(s *slo.SLO, w time.Duration) string {
	sel := s.Scope.Selector()
	total := fmt.Sprintf("sum(rate(%s[%s]))", selector(requestsMetric, sel), dur(w))
	switch s.Indicator {
	case slo.Availability:
		bad := append(append([]slo.Matcher{}, sel...), slo.Matcher{Name: labelStatusClass, Value: serverErrorClass})
		// A service that never failed has no 5xx series: count that as 0.
		return fmt.Sprintf("(sum(rate(%s[%s])) or vector(0))\n/\n%s", selector(requestsMetric, bad), dur(w), total)
	default:
		good := append(append([]slo.Matcher{}, sel...), slo.Matcher{Name: labelThreshold, Value: slo.ThresholdLabel(s.Threshold)})
		// Counters scraped a moment apart can put good above total; clamp.
		return fmt.Sprintf("clamp_min(\n  1 - sum(rate(%s[%s]))\n  /\n  %s,\n  0\n)", selector(fasterThanMetric, good), dur(w), total)
	}
}

func recordName(w time.Duration) string { return errorRatioRecord + dur(w) }

// recordSelector selects one SLO's recorded error ratio over w.
func recordSelector(s *slo.SLO, w time.Duration) string {
	return selector(recordName(w), []slo.Matcher{{Name: labelSLO, Value: s.Name}})
}

// formatFloat prints a float in its shortest exact form: 14.4, 0.001.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// burnExpr is the multi-window burn-rate condition of one policy window:
// the burn rate over the long window (the alert's value) above the
// threshold, and the burn rate over the short window above it too.
func burnExpr(s *slo.SLO, long, short time.Duration, burnRate float64) string {
	budget := formatFloat(s.ErrorBudget())
	thr := formatFloat(burnRate)
	return fmt.Sprintf("%s / %s > %s\nand\n%s / %s > %s",
		recordSelector(s, long), budget, thr, recordSelector(s, short), budget, thr)
}

// budgetLeftExpr is the share of the error budget left over the SLO window.
func budgetLeftExpr(s *slo.SLO, window time.Duration) string {
	return fmt.Sprintf("1 - %s / %s", recordSelector(s, window), formatFloat(s.ErrorBudget()))
}

// checkExpr parses an expression with Prometheus's parser.
func checkExpr(what, expr string) error {
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("%s: generated PromQL does not parse: %w\n%s", what, err, expr)
	}
	if err := compat242(e); err != nil {
		return fmt.Errorf("%s: %w\n%s", what, err, expr)
	}
	return nil
}

// ErrorRatioQuery is the PromQL for an SLO's error ratio over window w,
// computed from the raw metrics (what the recording rules record), for
// `meshlens slo status` and dashboards that cannot rely on the rules.
func ErrorRatioQuery(s *slo.SLO, w time.Duration) string { return errorRatioExpr(s, w) }
