package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SpecError is an error in an OpenSLO document. It names the file, the
// document (1-based index, kind and name) and the field.
type SpecError struct {
	File  string
	Doc   int // 1-based index of the YAML document in the file
	Line  int // line of the document's start, 0 if unknown
	Kind  string
	Name  string
	Field string
	Err   string
}

func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Doc > 0 {
		fmt.Fprintf(&b, ": document %d", e.Doc)
		if e.Line > 0 {
			fmt.Fprintf(&b, " (line %d", e.Line)
			if e.Kind != "" {
				fmt.Fprintf(&b, ", %s %q", e.Kind, e.Name)
			}
			b.WriteString(")")
		}
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Err)
	return b.String()
}

// Spec is what a set of OpenSLO files defines.
type Spec struct {
	SLOs []SLO
	// Services declared with kind Service, by name (their descriptions).
	Services map[string]string
}

// openSLO document shapes (OpenSLO v1), decoded strictly.
type osHeader struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   osMeta    `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`
}

type osMeta struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName"`
	Labels      map[string]any    `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type osServiceSpec struct {
	Description string `yaml:"description"`
}

type osSLISpec struct {
	Description     string    `yaml:"description"`
	ThresholdMetric *osMetric `yaml:"thresholdMetric"`
	RatioMetric     *osRatio  `yaml:"ratioMetric"`
}

type osInlineSLI struct {
	Metadata osMeta    `yaml:"metadata"`
	Spec     osSLISpec `yaml:"spec"`
}

type osMetric struct {
	MetricSource osMetricSource `yaml:"metricSource"`
}

type osMetricSource struct {
	MetricSourceRef string         `yaml:"metricSourceRef"`
	Type            string         `yaml:"type"`
	Spec            osMeshlensSpec `yaml:"spec"`
}

// osMeshlensSpec is the spec of a metric source of type "meshlens".
type osMeshlensSpec struct {
	// Metric: "requests" (every request), "server_errors" (5xx / gRPC server
	// errors), "good_requests" (not server errors), "faster_than" (requests
	// at most Threshold slow), "latency" (threshold metric).
	Metric    string `yaml:"metric"`
	Service   string `yaml:"service"`
	Peer      string `yaml:"peer"`
	Route     string `yaml:"route"`
	Threshold string `yaml:"threshold"`
}

type osRatio struct {
	Counter bool      `yaml:"counter"`
	Good    *osMetric `yaml:"good"`
	Bad     *osMetric `yaml:"bad"`
	Total   *osMetric `yaml:"total"`
}

type osSLOSpec struct {
	Description     string         `yaml:"description"`
	Service         string         `yaml:"service"`
	IndicatorRef    string         `yaml:"indicatorRef"`
	Indicator       *osInlineSLI   `yaml:"indicator"`
	TimeWindow      []osTimeWindow `yaml:"timeWindow"`
	BudgetingMethod string         `yaml:"budgetingMethod"`
	Objectives      []osObjective  `yaml:"objectives"`
	AlertPolicies   []yaml.Node    `yaml:"alertPolicies"`
}

type osTimeWindow struct {
	Duration  string    `yaml:"duration"`
	IsRolling *bool     `yaml:"isRolling"`
	Calendar  yaml.Node `yaml:"calendar"`
}

type osObjective struct {
	DisplayName     string   `yaml:"displayName"`
	Op              string   `yaml:"op"`
	Value           *float64 `yaml:"value"`
	Target          *float64 `yaml:"target"`
	TargetPercent   *float64 `yaml:"targetPercent"`
	TimeSliceTarget *float64 `yaml:"timeSliceTarget"`
	TimeSliceWindow string   `yaml:"timeSliceWindow"`
}

type osAlertPolicySpec struct {
	Description         string      `yaml:"description"`
	AlertWhenNoData     bool        `yaml:"alertWhenNoData"`
	AlertWhenResolved   bool        `yaml:"alertWhenResolved"`
	AlertWhenBreaching  bool        `yaml:"alertWhenBreaching"`
	Conditions          []yaml.Node `yaml:"conditions"`
	NotificationTargets []yaml.Node `yaml:"notificationTargets"`
}

type osInlineCondition struct {
	Kind     string          `yaml:"kind"`
	Metadata osMeta          `yaml:"metadata"`
	Spec     osConditionSpec `yaml:"spec"`
}

type osConditionSpec struct {
	Description string `yaml:"description"`
	Severity    string `yaml:"severity"`
	Condition   struct {
		Kind           string   `yaml:"kind"`
		Op             string   `yaml:"op"`
		Threshold      *float64 `yaml:"threshold"`
		LookbackWindow string   `yaml:"lookbackWindow"`
		AlertAfter     string   `yaml:"alertAfter"`
	} `yaml:"condition"`
}

// docRef locates one document for error messages.
type docRef struct {
	file       string
	index      int
	line       int
	kind, name string
}

func (d docRef) err(field, format string, args ...any) *SpecError {
	return &SpecError{File: d.file, Doc: d.index, Line: d.line, Kind: d.kind, Name: d.name, Field: field, Err: fmt.Sprintf(format, args...)}
}

type parsedDoc struct {
	ref  docRef
	head osHeader
}

// LoadOpenSLOFiles reads and resolves OpenSLO files (see ParseOpenSLO).
func LoadOpenSLOFiles(paths ...string) (*Spec, error) {
	var inputs []OpenSLOInput
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read OpenSLO file: %w", err)
		}
		inputs = append(inputs, OpenSLOInput{Name: p, Data: b})
	}
	return ParseOpenSLO(inputs...)
}

// OpenSLOInput is one file's content.
type OpenSLOInput struct {
	Name string
	Data []byte
}

// maxDocs bounds the documents read from one file.
const maxDocs = 10000

// ParseOpenSLO reads multi-document OpenSLO v1 YAML: kinds Service, SLI,
// SLO, AlertPolicy and AlertCondition. References (indicatorRef, alert
// policy names, conditionRef) resolve across all inputs. Every SLO
// objective becomes one SLO. The error joins every problem found, each a
// *SpecError.
func ParseOpenSLO(inputs ...OpenSLOInput) (*Spec, error) {
	var docs []parsedDoc
	var errs []error
	for _, in := range inputs {
		dec := yaml.NewDecoder(bytes.NewReader(in.Data))
		for i := 1; ; i++ {
			if i > maxDocs {
				errs = append(errs, &SpecError{File: in.Name, Err: fmt.Sprintf("more than %d documents", maxDocs)})
				break
			}
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			ref := docRef{file: in.Name, index: i}
			if err != nil {
				errs = append(errs, ref.err("", "invalid YAML: %v", err))
				break // the decoder cannot resync after a syntax error
			}
			ref.line = n.Line
			if len(n.Content) > 0 {
				ref.line = n.Content[0].Line
			}
			if len(n.Content) == 1 && n.Content[0].Kind == yaml.MappingNode && len(n.Content[0].Content) == 0 {
				continue
			}
			var h osHeader
			if err := strictDecode(&n, &h); err != nil {
				errs = append(errs, ref.err("", "%v", err))
				continue
			}
			ref.kind, ref.name = h.Kind, h.Metadata.Name
			if h.APIVersion != "openslo/v1" {
				errs = append(errs, ref.err("apiVersion", "%q is not supported (want openslo/v1)", h.APIVersion))
				continue
			}
			if h.Metadata.Name == "" {
				errs = append(errs, ref.err("metadata.name", "must not be empty"))
				continue
			}
			docs = append(docs, parsedDoc{ref: ref, head: h})
		}
	}
	r := &resolver{
		slis: map[string]parsedDoc{}, policies: map[string]parsedDoc{}, conditions: map[string]parsedDoc{},
		spec: &Spec{Services: map[string]string{}},
	}
	for _, d := range docs {
		var m map[string]parsedDoc
		switch d.head.Kind {
		case "SLI":
			m = r.slis
		case "AlertPolicy":
			m = r.policies
		case "AlertCondition":
			m = r.conditions
		case "Service":
			var s osServiceSpec
			if err := strictDecode(&d.head.Spec, &s); err != nil {
				errs = append(errs, d.ref.err("spec", "%v", err))
			}
			r.spec.Services[d.head.Metadata.Name] = s.Description
			continue
		case "SLO":
			continue
		default:
			errs = append(errs, d.ref.err("kind", "%q is not supported (Service, SLI, SLO, AlertPolicy, AlertCondition)", d.head.Kind))
			continue
		}
		if prev, dup := m[d.head.Metadata.Name]; dup {
			errs = append(errs, d.ref.err("metadata.name", "%s %q is also defined in %s document %d", d.head.Kind, d.head.Metadata.Name, prev.ref.file, prev.ref.index))
			continue
		}
		m[d.head.Metadata.Name] = d
	}
	names := map[string]docRef{}
	for _, d := range docs {
		if d.head.Kind != "SLO" {
			continue
		}
		slos, err := r.slo(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, s := range slos {
			if prev, dup := names[s.Name]; dup {
				errs = append(errs, d.ref.err("metadata.name", "SLO name %q is also used by %s document %d", s.Name, prev.file, prev.index))
				continue
			}
			names[s.Name] = d.ref
			r.spec.SLOs = append(r.spec.SLOs, s)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r.spec, nil
}

func strictDecode(n *yaml.Node, v any) error {
	if n.Kind == 0 {
		return nil
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

type resolver struct {
	slis, policies, conditions map[string]parsedDoc
	spec                       *Spec
}

// slo turns one SLO document into one SLO per objective.
func (r *resolver) slo(d parsedDoc) ([]SLO, error) {
	ref := d.ref
	var spec osSLOSpec
	if err := strictDecode(&d.head.Spec, &spec); err != nil {
		return nil, ref.err("spec", "%v", err)
	}
	if spec.Service == "" {
		return nil, ref.err("spec.service", "must name the mesh service")
	}
	if len(r.spec.Services) > 0 {
		if _, ok := r.spec.Services[spec.Service]; !ok {
			return nil, ref.err("spec.service", "%q is not one of the declared Services", spec.Service)
		}
	}
	// Window.
	window := DefaultWindow
	switch len(spec.TimeWindow) {
	case 0:
	case 1:
		tw := spec.TimeWindow[0]
		if tw.Calendar.Kind != 0 || (tw.IsRolling != nil && !*tw.IsRolling) {
			return nil, ref.err("spec.timeWindow[0]", "calendar windows are not supported; use isRolling: true")
		}
		w, err := ParseDuration(tw.Duration)
		if err != nil || w < time.Hour {
			return nil, ref.err("spec.timeWindow[0].duration", "%q must be a duration of at least 1h (e.g. 30d)", tw.Duration)
		}
		window = w
	default:
		return nil, ref.err("spec.timeWindow", "exactly one window is supported, got %d", len(spec.TimeWindow))
	}
	switch spec.BudgetingMethod {
	case "", "Occurrences":
	default:
		return nil, ref.err("spec.budgetingMethod", "%q is not supported (Occurrences)", spec.BudgetingMethod)
	}
	// Indicator.
	var sli osSLISpec
	sliField := "spec.indicator"
	switch {
	case spec.Indicator != nil && spec.IndicatorRef != "":
		return nil, ref.err("spec.indicatorRef", "give indicator or indicatorRef, not both")
	case spec.Indicator != nil:
		sli = spec.Indicator.Spec
	case spec.IndicatorRef != "":
		sd, ok := r.slis[spec.IndicatorRef]
		if !ok {
			return nil, ref.err("spec.indicatorRef", "no SLI named %q", spec.IndicatorRef)
		}
		if err := strictDecode(&sd.head.Spec, &sli); err != nil {
			return nil, sd.ref.err("spec", "%v", err)
		}
		sliField = fmt.Sprintf("spec (SLI %q, %s document %d)", spec.IndicatorRef, sd.ref.file, sd.ref.index)
	default:
		return nil, ref.err("spec.indicatorRef", "an SLO needs indicator or indicatorRef")
	}
	base, err := mapIndicator(sli, spec.Service)
	if err != nil {
		var fe *fieldErr
		if errors.As(err, &fe) {
			return nil, ref.err(sliField+"."+fe.field, "%s", fe.reason)
		}
		return nil, ref.err(sliField, "%v", err)
	}
	// Alert policies.
	var policy *Policy
	if len(spec.AlertPolicies) > 0 {
		p, err := r.policy(ref, spec.AlertPolicies)
		if err != nil {
			return nil, err
		}
		policy = p
	}
	if len(spec.Objectives) == 0 {
		return nil, ref.err("spec.objectives", "at least one objective is needed")
	}
	var out []SLO
	for i, o := range spec.Objectives {
		f := fmt.Sprintf("spec.objectives[%d]", i)
		s := base
		s.Window = window
		s.Policy = policy
		s.Description = spec.Description
		s.Origin = fmt.Sprintf("%s#%d", ref.file, ref.index)
		s.Name = d.head.Metadata.Name
		if len(spec.Objectives) > 1 {
			s.Name = fmt.Sprintf("%s-%d", s.Name, i)
		}
		switch {
		case o.Target != nil && o.TargetPercent != nil:
			return nil, ref.err(f+".target", "give target or targetPercent, not both")
		case o.Target != nil:
			s.Objective = *o.Target
		case o.TargetPercent != nil:
			s.Objective = *o.TargetPercent / 100
		default:
			return nil, ref.err(f+".target", "missing")
		}
		if o.TimeSliceTarget != nil || o.TimeSliceWindow != "" {
			return nil, ref.err(f+".timeSliceTarget", "time-slice budgeting is not supported")
		}
		if s.Indicator == Latency && s.Threshold == 0 {
			if o.Value == nil {
				return nil, ref.err(f+".value", "a threshold SLI needs the latency bound in seconds")
			}
			if o.Op != "lte" && o.Op != "lt" {
				return nil, ref.err(f+".op", "%q: a latency objective counts requests at most value slow (lte)", o.Op)
			}
			v := *o.Value
			if !(v > 0) || math.IsInf(v, 0) || v > 3600 {
				return nil, ref.err(f+".value", "%v must be a latency in seconds in (0, 3600]", v)
			}
			s.Threshold = time.Duration(math.Round(v*1e6)) * time.Microsecond
		} else if o.Value != nil || o.Op != "" {
			return nil, ref.err(f+".value", "op and value belong to threshold SLIs only")
		}
		if err := s.Validate(); err != nil {
			return nil, ref.err(f+" ("+s.Name+")", "%v", err)
		}
		out = append(out, s)
	}
	return out, nil
}

type fieldErr struct{ field, reason string }

func (e *fieldErr) Error() string { return e.field + ": " + e.reason }

// mapIndicator maps an OpenSLO SLI onto an SLO's indicator and scope.
func mapIndicator(sli osSLISpec, service string) (SLO, error) {
	source := func(field string, m *osMetric, want ...string) (osMeshlensSpec, error) {
		if m == nil {
			return osMeshlensSpec{}, &fieldErr{field, "missing"}
		}
		ms := m.MetricSource
		if ms.MetricSourceRef != "" {
			return osMeshlensSpec{}, &fieldErr{field + ".metricSource.metricSourceRef", "data-source references are not supported; use type: meshlens"}
		}
		if !strings.EqualFold(ms.Type, "meshlens") {
			return osMeshlensSpec{}, &fieldErr{field + ".metricSource.type", fmt.Sprintf("%q is not supported (meshlens)", ms.Type)}
		}
		for _, w := range want {
			if ms.Spec.Metric == w {
				return ms.Spec, nil
			}
		}
		return osMeshlensSpec{}, &fieldErr{field + ".metricSource.spec.metric", fmt.Sprintf("%q must be one of %s", ms.Spec.Metric, strings.Join(want, ", "))}
	}
	var s SLO
	var src osMeshlensSpec
	switch {
	case sli.ThresholdMetric != nil && sli.RatioMetric != nil:
		return s, &fieldErr{"thresholdMetric", "give thresholdMetric or ratioMetric, not both"}
	case sli.ThresholdMetric != nil:
		m, err := source("thresholdMetric", sli.ThresholdMetric, "latency")
		if err != nil {
			return s, err
		}
		src, s.Indicator = m, Latency
	case sli.RatioMetric != nil:
		rm := sli.RatioMetric
		if !rm.Counter {
			return s, &fieldErr{"ratioMetric.counter", "meshlens ratio SLIs are counters; set counter: true"}
		}
		total, err := source("ratioMetric.total", rm.Total, "requests")
		if err != nil {
			return s, err
		}
		switch {
		case rm.Good != nil && rm.Bad != nil:
			return s, &fieldErr{"ratioMetric.good", "give good or bad, not both"}
		case rm.Bad != nil:
			if _, err := source("ratioMetric.bad", rm.Bad, "server_errors"); err != nil {
				return s, err
			}
			s.Indicator = Availability
		case rm.Good != nil:
			g, err := source("ratioMetric.good", rm.Good, "good_requests", "faster_than")
			if err != nil {
				return s, err
			}
			if g.Metric == "faster_than" {
				d, err := ParseDuration(g.Threshold)
				if err != nil || d <= 0 {
					return s, &fieldErr{"ratioMetric.good.metricSource.spec.threshold", fmt.Sprintf("%q must be a duration such as 250ms", g.Threshold)}
				}
				s.Indicator, s.Threshold = Latency, d
			} else {
				s.Indicator = Availability
			}
			if g.Service != total.Service || g.Peer != total.Peer || g.Route != total.Route {
				return s, &fieldErr{"ratioMetric.good.metricSource.spec", "good and total must count the same service, peer and route"}
			}
		default:
			return s, &fieldErr{"ratioMetric.good", "a ratio needs good or bad"}
		}
		src = total
	default:
		return s, &fieldErr{"thresholdMetric", "an SLI needs thresholdMetric or ratioMetric"}
	}
	s.Scope = Scope{Service: service, Peer: src.Peer, Route: src.Route}
	if src.Service != "" && src.Service != service {
		return s, &fieldErr{"metricSource.spec.service", fmt.Sprintf("%q differs from the SLO's service %q", src.Service, service)}
	}
	return s, nil
}

// policy resolves an SLO's alertPolicies (names, alertPolicyRef mappings or
// inline AlertPolicy documents) into one Policy.
func (r *resolver) policy(ref docRef, nodes []yaml.Node) (*Policy, error) {
	p := &Policy{}
	for i := range nodes {
		f := fmt.Sprintf("spec.alertPolicies[%d]", i)
		n := &nodes[i]
		var spec osAlertPolicySpec
		var where docRef
		switch n.Kind {
		case yaml.ScalarNode, yaml.MappingNode:
			name := n.Value
			if n.Kind == yaml.MappingNode {
				var m struct {
					AlertPolicyRef string    `yaml:"alertPolicyRef"`
					Kind           string    `yaml:"kind"`
					Metadata       osMeta    `yaml:"metadata"`
					Spec           yaml.Node `yaml:"spec"`
				}
				if err := strictDecode(n, &m); err != nil {
					return nil, ref.err(f, "%v", err)
				}
				if m.AlertPolicyRef == "" {
					if m.Kind != "AlertPolicy" {
						return nil, ref.err(f+".kind", "an inline alert policy has kind AlertPolicy")
					}
					if err := strictDecode(&m.Spec, &spec); err != nil {
						return nil, ref.err(f+".spec", "%v", err)
					}
					where = ref
					break
				}
				name = m.AlertPolicyRef
			}
			d, ok := r.policies[name]
			if !ok {
				return nil, ref.err(f, "no AlertPolicy named %q", name)
			}
			if err := strictDecode(&d.head.Spec, &spec); err != nil {
				return nil, d.ref.err("spec", "%v", err)
			}
			where, f = d.ref, "spec"
		default:
			return nil, ref.err(f, "must be an AlertPolicy name or mapping")
		}
		if len(spec.Conditions) == 0 {
			return nil, where.err(f+".conditions", "at least one condition is needed")
		}
		for j := range spec.Conditions {
			cf := fmt.Sprintf("%s.conditions[%d]", f, j)
			var c osInlineCondition
			cn := &spec.Conditions[j]
			var cref struct {
				ConditionRef string `yaml:"conditionRef"`
			}
			if err := cn.Decode(&cref); err == nil && cref.ConditionRef != "" {
				d, ok := r.conditions[cref.ConditionRef]
				if !ok {
					return nil, where.err(cf+".conditionRef", "no AlertCondition named %q", cref.ConditionRef)
				}
				if err := strictDecode(&d.head.Spec, &c.Spec); err != nil {
					return nil, d.ref.err("spec", "%v", err)
				}
			} else if err := strictDecode(cn, &c); err != nil {
				return nil, where.err(cf, "%v", err)
			}
			w, err := burnWindow(c.Spec)
			if err != nil {
				var fe *fieldErr
				errors.As(err, &fe)
				return nil, where.err(cf+".spec."+fe.field, "%s", fe.reason)
			}
			p.Windows = append(p.Windows, w)
		}
	}
	if err := p.Validate(); err != nil {
		return nil, ref.err("spec.alertPolicies", "%v", err)
	}
	return p, nil
}

// burnWindow maps an OpenSLO burnrate condition onto a BurnWindow: the
// lookback window is the long window; the short one is a twelfth of it,
// as in the SRE Workbook.
func burnWindow(c osConditionSpec) (BurnWindow, error) {
	var w BurnWindow
	switch Severity(strings.ToLower(c.Severity)) {
	case Page:
		w.Severity = Page
	case Ticket:
		w.Severity = Ticket
	default:
		return w, &fieldErr{"severity", fmt.Sprintf("%q is neither page nor ticket", c.Severity)}
	}
	cond := c.Condition
	if !strings.EqualFold(cond.Kind, "burnrate") {
		return w, &fieldErr{"condition.kind", fmt.Sprintf("%q is not supported (burnrate)", cond.Kind)}
	}
	if cond.Op != "gt" && cond.Op != "gte" {
		return w, &fieldErr{"condition.op", fmt.Sprintf("%q: burn-rate alerts fire above the threshold (gt)", cond.Op)}
	}
	if cond.Threshold == nil || !(*cond.Threshold > 0) {
		return w, &fieldErr{"condition.threshold", "must be a burn rate > 0"}
	}
	w.BurnRate = *cond.Threshold
	long, err := ParseDuration(cond.LookbackWindow)
	if err != nil || long < time.Minute {
		return w, &fieldErr{"condition.lookbackWindow", fmt.Sprintf("%q must be a duration of at least 1m", cond.LookbackWindow)}
	}
	w.Long, w.Short = long, (long / 12).Truncate(time.Second)
	if cond.AlertAfter != "" {
		d, err := ParseDuration(cond.AlertAfter)
		if err != nil {
			return w, &fieldErr{"condition.alertAfter", fmt.Sprintf("%q is not a duration", cond.AlertAfter)}
		}
		w.For = d
	}
	return w, nil
}
