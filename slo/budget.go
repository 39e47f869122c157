package slo

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/meshlens/meshlens/model"
)

// ErrorBudget is 1 - objective, rounded to 12 decimal places (so that
// 1 - 0.999 is exactly the float 0.001 people expect to read).
func ErrorBudget(objective float64) float64 {
	return math.Round((1-objective)*1e12) / 1e12
}

// BurnRate is how many times faster than sustainable an error ratio spends
// the budget: 1 spends exactly the whole budget over the SLO window.
func BurnRate(errorRatio, objective float64) float64 {
	return errorRatio / ErrorBudget(objective)
}

// BudgetRemaining is the share of the error budget left after a window whose
// error ratio was errorRatio: 1 when nothing failed, 0 when the budget is
// spent, negative past that.
func BudgetRemaining(errorRatio, objective float64) float64 {
	return 1 - BurnRate(errorRatio, objective)
}

// BudgetConsumed is the share of the whole window's budget that burning at
// burnRate for d spends: 14.4 for 1h of a 30-day window is 0.02.
func BudgetConsumed(burnRate float64, d, window time.Duration) float64 {
	return burnRate * d.Seconds() / window.Seconds()
}

// BurnRateFor is the burn rate that spends share of the budget in d:
// BurnRateFor(0.02, time.Hour, 30 days) is 14.4.
func BurnRateFor(share float64, d, window time.Duration) float64 {
	return share * window.Seconds() / d.Seconds()
}

// Severity is how urgently a burn must be handled.
type Severity string

const (
	Page   Severity = "page"
	Ticket Severity = "ticket"
)

// BurnWindow is one multi-window burn-rate condition: the alert fires when
// the burn rate exceeds BurnRate over both Long and Short.
type BurnWindow struct {
	Severity Severity      `yaml:"severity"`
	BurnRate float64       `yaml:"burn_rate"`
	Long     time.Duration `yaml:"long"`
	Short    time.Duration `yaml:"short"`
	// For is how long the condition must hold before the alert fires (0:
	// at once; the short window already guards against blips).
	For time.Duration `yaml:"for"`
}

// Policy is the set of burn-rate conditions alerted on for an SLO.
type Policy struct {
	Windows []BurnWindow `yaml:"windows"`
}

// DefaultPolicy is the Google SRE Workbook's multi-window multi-burn-rate
// policy for a 30-day window: page on 2% of the budget in 1h or 5% in 6h,
// ticket on 10% in 1d or 10% in 3d.
func DefaultPolicy() Policy {
	return Policy{Windows: []BurnWindow{
		{Severity: Page, BurnRate: 14.4, Long: time.Hour, Short: 5 * time.Minute},
		{Severity: Page, BurnRate: 6, Long: 6 * time.Hour, Short: 30 * time.Minute},
		{Severity: Ticket, BurnRate: 3, Long: 24 * time.Hour, Short: 2 * time.Hour},
		{Severity: Ticket, BurnRate: 1, Long: 72 * time.Hour, Short: 6 * time.Hour},
	}}
}

// Validate checks the policy; errors name the field path.
func (p *Policy) Validate() error {
	if len(p.Windows) == 0 {
		return &model.FieldError{Field: "windows", Reason: "a policy needs at least one burn window"}
	}
	seen := map[[2]time.Duration]bool{}
	for i, w := range p.Windows {
		f := fmt.Sprintf("windows[%d]", i)
		switch {
		case w.Severity != Page && w.Severity != Ticket:
			return &model.FieldError{Field: f + ".severity", Reason: fmt.Sprintf("%q is neither %q nor %q", w.Severity, Page, Ticket)}
		case !(w.BurnRate > 0) || math.IsInf(w.BurnRate, 0):
			return &model.FieldError{Field: f + ".burn_rate", Reason: "must be > 0"}
		case w.Long <= 0:
			return &model.FieldError{Field: f + ".long", Reason: "must be > 0"}
		case w.Short <= 0 || w.Short > w.Long:
			return &model.FieldError{Field: f + ".short", Reason: fmt.Sprintf("%v must be > 0 and at most the long window %v", w.Short, w.Long)}
		case w.For < 0:
			return &model.FieldError{Field: f + ".for", Reason: "must be >= 0"}
		}
		k := [2]time.Duration{w.Long, w.Short}
		if seen[k] {
			return &model.FieldError{Field: f, Reason: fmt.Sprintf("windows %v/%v appear twice", w.Long, w.Short)}
		}
		seen[k] = true
	}
	return nil
}

// Durations returns every distinct window the policy measures, shortest first.
func (p *Policy) Durations() []time.Duration {
	seen := map[time.Duration]bool{}
	var out []time.Duration
	for _, w := range p.Windows {
		for _, d := range []time.Duration{w.Short, w.Long} {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	slices.Sort(out)
	return out
}
