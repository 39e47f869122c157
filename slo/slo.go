// Package slo is the service-level objective model of meshlens: availability
// and latency objectives over a rolling window for a service, an edge or a
// route, read from OpenSLO v1 YAML or proposed for every discovered service,
// with the error-budget and burn-rate arithmetic the alerts are built on.
//
// The package speaks only in terms of the metric contract in docs/metrics.md;
// turning an SLO into PromQL is the alerts package's job.
package slo

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/meshlens/meshlens/model"
)

// Indicator is what an SLO measures.
type Indicator string

const (
	// Availability is the share of requests that did not end in a server
	// error (status_class 5xx; gRPC calls are classed by grpc-status).
	Availability Indicator = "availability"
	// Latency is the share of requests whose total hop latency was at most
	// the SLO's threshold.
	Latency Indicator = "latency"
)

// DefaultWindow is the rolling window of an SLO that names none.
const DefaultWindow = 30 * 24 * time.Hour

// Scope says which requests an SLO counts.
type Scope struct {
	// Service is the service whose requests are counted.
	Service string
	// Peer, when set, narrows the SLO to the edge Service → Peer, measured
	// by Service's sidecar on its outbound side (what the caller sees).
	Peer string
	// Route, when set, narrows the SLO to one route template of Service
	// (inbound).
	Route string
	// ViaCallers measures a service that runs no proxy through its callers'
	// outbound series (peer=Service). Only for a whole-service scope.
	ViaCallers bool
}

// Matcher is one label equality of an SLI's series selector.
type Matcher struct {
	Name, Value string
}

// Selector returns the label equalities that select the scope's series of
// meshlens_requests_total and meshlens_requests_faster_than_total, in a
// fixed order.
func (s Scope) Selector() []Matcher {
	switch {
	case s.ViaCallers:
		return []Matcher{{"direction", string(model.Outbound)}, {"peer", s.Service}}
	case s.Peer != "":
		return []Matcher{{"service", s.Service}, {"direction", string(model.Outbound)}, {"peer", s.Peer}}
	case s.Route != "":
		return []Matcher{{"service", s.Service}, {"direction", string(model.Inbound)}, {"route", s.Route}}
	default:
		return []Matcher{{"service", s.Service}, {"direction", string(model.Inbound)}}
	}
}

// String names the scope for people: "checkout", "checkout → payments",
// "checkout /cart".
func (s Scope) String() string {
	switch {
	case s.Peer != "":
		return s.Service + " → " + s.Peer
	case s.Route != "":
		return s.Service + " " + s.Route
	case s.ViaCallers:
		return s.Service + " (seen by its callers)"
	}
	return s.Service
}

// SLO is one objective.
type SLO struct {
	// Name identifies the SLO; it becomes the `slo` label of every recorded
	// series and alert, so it is restricted to [a-zA-Z0-9_.-].
	Name        string
	Description string
	Scope       Scope
	Indicator   Indicator
	// Threshold is the latency bound of a Latency SLO (requests at most this
	// slow are good). Zero for Availability.
	Threshold time.Duration
	// Objective is the target share of good requests, in (0, 1): 0.999.
	Objective float64
	// Window is the rolling window the objective holds over.
	Window time.Duration
	// Policy, when not nil, replaces the default burn-rate alert policy for
	// this SLO (from an OpenSLO AlertPolicy).
	Policy *Policy
	// Origin says where the SLO came from: "default", or "FILE#N" for the
	// N-th document of an OpenSLO file.
	Origin string
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidName reports whether s can be an SLO name.
func ValidName(s string) bool { return len(s) <= 120 && nameRE.MatchString(s) }

// Validate checks an SLO; errors name the field.
func (s *SLO) Validate() error {
	if !ValidName(s.Name) {
		return &model.FieldError{Field: "name", Reason: fmt.Sprintf("%q must match %s (at most 120 characters)", s.Name, nameRE)}
	}
	if s.Scope.Service == "" {
		return &model.FieldError{Field: "service", Reason: "must not be empty"}
	}
	if s.Scope.ViaCallers && (s.Scope.Peer != "" || s.Scope.Route != "") {
		return &model.FieldError{Field: "scope", Reason: "an SLO seen via callers covers the whole service (no peer, no route)"}
	}
	if s.Scope.Peer != "" && s.Scope.Route != "" {
		return &model.FieldError{Field: "scope", Reason: "an SLO is for a service, an edge (peer) or a route, not an edge and a route at once"}
	}
	switch s.Indicator {
	case Availability:
		if s.Threshold != 0 {
			return &model.FieldError{Field: "threshold", Reason: "an availability SLO has no latency threshold"}
		}
	case Latency:
		if s.Threshold <= 0 {
			return &model.FieldError{Field: "threshold", Reason: "a latency SLO needs a threshold > 0"}
		}
		if s.Threshold < time.Millisecond || s.Threshold%time.Microsecond != 0 {
			return &model.FieldError{Field: "threshold", Reason: fmt.Sprintf("%v must be at least 1ms, in whole microseconds", s.Threshold)}
		}
		if s.Threshold > time.Duration(model.HighestTrackableMicros)*time.Microsecond {
			return &model.FieldError{Field: "threshold", Reason: fmt.Sprintf("%v is above the histograms' range", s.Threshold)}
		}
	default:
		return &model.FieldError{Field: "indicator", Reason: fmt.Sprintf("%q is neither %q nor %q", s.Indicator, Availability, Latency)}
	}
	if !(s.Objective > 0 && s.Objective < 1) {
		return &model.FieldError{Field: "objective", Reason: fmt.Sprintf("%v must be in (0, 1), e.g. 0.999", s.Objective)}
	}
	if s.Window < time.Hour {
		return &model.FieldError{Field: "window", Reason: fmt.Sprintf("%v must be at least 1h", s.Window)}
	}
	if s.Policy != nil {
		if err := s.Policy.Validate(); err != nil {
			return fmt.Errorf("policy.%w", err)
		}
	}
	return nil
}

// ErrorBudget is the share of requests that may fail: 1 - Objective,
// rounded to 12 decimal places so that 1 - 0.999 is 0.001.
func (s *SLO) ErrorBudget() float64 { return ErrorBudget(s.Objective) }

// ThresholdLabel is the `threshold` label value of
// meshlens_requests_faster_than_total for a latency threshold: seconds in
// the shortest decimal form ("0.25", "1", "0.005"). The collector formats
// the label with this function, and the alerts select with it.
func ThresholdLabel(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
}

// Thresholds returns the distinct latency thresholds of the latency SLOs in
// set, shortest first. The collector exports
// meshlens_requests_faster_than_total for each (see docs/slo.md).
func Thresholds(set []SLO) []time.Duration {
	seen := map[time.Duration]bool{}
	var out []time.Duration
	for _, s := range set {
		if s.Indicator == Latency && s.Threshold > 0 && !seen[s.Threshold] {
			seen[s.Threshold] = true
			out = append(out, s.Threshold)
		}
	}
	slices.Sort(out)
	return out
}

// ThresholdSeconds is Thresholds in seconds, the form of the collector's
// analytics exporter setting `slo_thresholds`.
func ThresholdSeconds(set []SLO) []float64 {
	var out []float64
	for _, d := range Thresholds(set) {
		out = append(out, d.Seconds())
	}
	return out
}
