package slo

import (
	"cmp"
	"slices"
)

// Combine returns the SLO set in force: every explicit SLO (from OpenSLO
// files), plus each default SLO that no explicit SLO replaces. An explicit
// SLO replaces the default of the same service and indicator when it covers
// the whole service (no peer, no route). The result is sorted by service,
// then name, so that everything generated from it is deterministic.
func Combine(defaults, explicit []SLO) []SLO {
	replaced := map[[2]string]bool{}
	for _, s := range explicit {
		if s.Scope.Peer == "" && s.Scope.Route == "" {
			replaced[[2]string{s.Scope.Service, string(s.Indicator)}] = true
		}
	}
	out := slices.Clone(explicit)
	names := map[string]bool{}
	for _, s := range explicit {
		names[s.Name] = true
	}
	for _, s := range defaults {
		if replaced[[2]string{s.Scope.Service, string(s.Indicator)}] || names[s.Name] {
			continue
		}
		out = append(out, s)
	}
	Sort(out)
	return out
}

// Sort orders SLOs by service, then name.
func Sort(set []SLO) {
	slices.SortFunc(set, func(a, b SLO) int {
		return cmp.Or(cmp.Compare(a.Scope.Service, b.Scope.Service), cmp.Compare(a.Name, b.Name))
	})
}

// Services returns the distinct services of set, sorted.
func Services(set []SLO) []string {
	var out []string
	for _, s := range set {
		out = append(out, s.Scope.Service)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// DefaultSLOs flattens proposals into their SLOs.
func DefaultSLOs(ps []Proposal) []SLO {
	var out []SLO
	for _, p := range ps {
		out = append(out, p.SLOs...)
	}
	return out
}
