package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"time"
)

//go:embed assets/report.html.tmpl
var htmlTemplate string

//go:embed assets/plots.js
var plotsJS string

var htmlPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"us":     Micros,
	"pct":    pct,
	"change": func(c *Change, field string) string { return changeField(c, field) },
	"rfc":    func(t time.Time) string { return t.Format(time.RFC3339) },
	"dur":    func(a, b time.Time) string { return windowLength(a, b) },
}).Parse(htmlTemplate))

// WriteHTML writes the report as one self-contained HTML page: the tables,
// and, drawn in the browser from the data embedded in the page (no network),
// the percentile distribution of every service on a logarithmic "nines"
// axis and every service's latency over time.
func WriteHTML(w io.Writer, r *Report) error {
	data, err := json.Marshal(struct {
		Distributions []Distribution `json:"distributions"`
		Previous      []Distribution `json:"previous_distributions"`
		Timeline      []Series       `json:"timeline"`
		StepSeconds   float64        `json:"step_seconds"`
		From          time.Time      `json:"from"`
	}{r.Distributions, r.PreviousDistributions, r.Timeline, r.StepSeconds, r.From})
	if err != nil {
		return fmt.Errorf("html report data: %w", err)
	}
	// json.Marshal escapes <, > and &, so the data cannot end the script.
	err = htmlPage.Execute(w, struct {
		*Report
		Data template.JS
		JS   template.JS
	}{r, template.JS(data), template.JS(plotsJS)})
	if err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

func changeField(c *Change, field string) string {
	if c == nil {
		return "new"
	}
	switch field {
	case "requests":
		return signedPct(c.Requests)
	case "error_rate":
		return signedPoints(c.ErrorRate)
	case "p99":
		return signedPct(c.P99)
	case "p99.9":
		return signedPct(c.P999)
	}
	return ""
}
