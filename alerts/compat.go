package alerts

import (
	"fmt"
	"regexp"

	"github.com/prometheus/prometheus/promql/parser"
)

// functions242 are the PromQL functions Prometheus 2.42 knows; generated
// rules use nothing else.
var functions242 = map[string]bool{}

func init() {
	for _, f := range []string{
		"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
		"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
		"count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
		"delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
		"histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
		"irate", "label_replace", "label_join", "last_over_time", "ln", "log10", "log2",
		"max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
		"present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
		"sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time",
		"stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
	} {
		functions242[f] = true
	}
}

var (
	legacyMetricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	legacyLabelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	aggregations242  = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	}
)

// compat242 reports the first construct in expr that Prometheus 2.42 would
// not read: a function or aggregation it lacks, a name outside the classic
// alphabet, the @ modifier or a negative offset.
func compat242(expr parser.Expr) error {
	var err error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if err != nil {
			return err
		}
		switch e := n.(type) {
		case *parser.Call:
			if !functions242[e.Func.Name] {
				err = fmt.Errorf("function %s() is newer than Prometheus 2.42", e.Func.Name)
			}
		case *parser.AggregateExpr:
			if op := e.Op.String(); !aggregations242[op] {
				err = fmt.Errorf("aggregation %s is newer than Prometheus 2.42", op)
			}
		case *parser.VectorSelector:
			if e.Timestamp != nil || e.StartOrEnd != 0 {
				err = fmt.Errorf("%s: the @ modifier is not used in generated rules", e.String())
			}
			if e.OriginalOffset < 0 {
				err = fmt.Errorf("%s: negative offset", e.String())
			}
			if e.Name != "" && !legacyMetricName.MatchString(e.Name) {
				err = fmt.Errorf("metric name %q is not a classic name", e.Name)
			}
			for _, m := range e.LabelMatchers {
				if !legacyLabelName.MatchString(m.Name) {
					err = fmt.Errorf("label name %q is not a classic name", m.Name)
				} else if m.Name == "__name__" && !legacyMetricName.MatchString(m.Value) {
					err = fmt.Errorf("metric name %q is not a classic name", m.Value)
				}
			}
		}
		return err
	})
	return err
}
