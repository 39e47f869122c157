// Package dashboards generates meshlens' Grafana dashboards with
// grafana-foundation-sdk: an overview of every service with the service
// graph, one dashboard per discovered service, and an SLO dashboard across
// services, plus the provisioning files that make a stock Grafana show them.
//
// Every query uses the metric names of the collector contract
// (docs/metrics.md) and the SLO recording rules of the alerts generator;
// every panel type ships with Grafana itself, and the JSON imports into
// Grafana 10 and later. Dashboard UIDs are derived from service names, so
// regenerating updates a dashboard instead of adding a copy.
package dashboards

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/meshlens/meshlens/slo"
)

// UIDs of the dashboards that do not depend on a service.
const (
	OverviewUID = "meshlens-overview"
	SLOUID      = "meshlens-slo"
	// ServiceUIDPrefix starts the UID of every per-service dashboard.
	ServiceUIDPrefix = "meshlens-svc-"
	// Tag is on every generated dashboard; ServiceTag on per-service ones.
	Tag        = "meshlens"
	ServiceTag = "meshlens-service"
)

// Data source UIDs the dashboards refer to; the provisioning files create
// data sources with these UIDs.
const (
	PrometheusUID = "meshlens-prometheus"
	JaegerUID     = "meshlens-jaeger"
)

// ServiceUID returns the UID of a service's dashboard. It is
// slo.DashboardUID, the convention the alerts' dashboard links use too:
// "meshlens-svc-" + the name lowercased, every character outside [a-z0-9-]
// replaced by "-", cut to Grafana's 40 characters with a hash of the name.
// Two services whose names map to one UID are refused by Generate.
func ServiceUID(service string) string { return slo.DashboardUID(service) }

// Service is a discovered service.
type Service struct {
	Name string
	// HasProxy is false for a peer seen only from its callers' side.
	HasProxy bool
}

// Input is what the dashboards are generated from.
type Input struct {
	Services []Service
	// SLOs in force (slo.Combine of defaults and OpenSLO files). A service
	// with none gets the default SLOs slo.Propose gives with Defaults.
	SLOs     []slo.SLO
	Defaults slo.DefaultsConfig
}

// Dashboard is one generated dashboard.
type Dashboard struct {
	UID   string
	Title string
	// File is the file name the dashboard is written under.
	File  string
	Model dashboard.Dashboard
}

// JSON returns the dashboard's JSON, indented, ending in a newline.
func (d Dashboard) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(d.Model, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dashboard %s: %w", d.UID, err)
	}
	return append(b, '\n'), nil
}

// schemaVersion is written into every dashboard: Grafana 10.0's, so that
// Grafana 10 reads the dashboards as its own and later versions migrate them
// forward as they do any old dashboard.
const schemaVersion = 38

// Generate builds every dashboard for in: the overview, the SLO dashboard,
// and one per service, in a stable order (overview, SLO, services by name).
func Generate(in Input) ([]Dashboard, error) {
	services := append([]Service(nil), in.Services...)
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	seen := map[string]bool{}
	uids := map[string]string{}
	for _, s := range services {
		if s.Name == "" {
			return nil, fmt.Errorf("services: a service has an empty name")
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("services: %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		uid := ServiceUID(s.Name)
		if other, dup := uids[uid]; dup {
			return nil, fmt.Errorf("services: %q and %q map to the same dashboard UID %s", other, s.Name, uid)
		}
		uids[uid] = s.Name
	}
	slos, err := slosByService(services, in)
	if err != nil {
		return nil, err
	}

	out := []Dashboard{}
	add := func(uid, title string, b *dashboard.DashboardBuilder) error {
		m, err := b.Build()
		if err != nil {
			return fmt.Errorf("build dashboard %s: %w", uid, err)
		}
		finalize(&m)
		out = append(out, Dashboard{UID: uid, Title: title, File: uid + ".json", Model: m})
		return nil
	}
	if err := add(OverviewUID, overviewTitle, overview(services, slos)); err != nil {
		return nil, err
	}
	if err := add(SLOUID, sloTitle, sloDashboard(services, slos)); err != nil {
		return nil, err
	}
	for _, s := range services {
		if err := add(ServiceUID(s.Name), serviceTitle(s.Name), serviceDashboard(s, slos[s.Name])); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SLOSet returns every SLO the dashboards show for in: the given SLOs of
// the listed services, plus the defaults of services that have none. The
// alerts generator given the same set records every series the dashboards
// read.
func (in Input) SLOSet() ([]slo.SLO, error) {
	services := append([]Service(nil), in.Services...)
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	by, err := slosByService(services, in)
	if err != nil {
		return nil, err
	}
	var out []slo.SLO
	for _, s := range services {
		out = append(out, by[s.Name]...)
	}
	return out, nil
}

// slosByService groups the SLOs by service, giving the default SLOs to
// services with none, and checks them.
func slosByService(services []Service, in Input) (map[string][]slo.SLO, error) {
	known := map[string]bool{}
	for _, s := range services {
		known[s.Name] = true
	}
	by := map[string][]slo.SLO{}
	for i, o := range in.SLOs {
		if err := o.Validate(); err != nil {
			return nil, fmt.Errorf("slos[%d] (%s): %w", i, o.Name, err)
		}
		if known[o.Scope.Service] { // an SLO of a service not discovered (yet) has nothing to show
			by[o.Scope.Service] = append(by[o.Scope.Service], o)
		}
	}
	var missing []slo.ServiceHistory
	for _, s := range services {
		if len(by[s.Name]) == 0 {
			missing = append(missing, slo.ServiceHistory{Service: s.Name, HasProxy: s.HasProxy})
		}
	}
	for _, p := range slo.Propose(in.Defaults, missing) {
		by[p.History.Service] = p.SLOs
	}
	for _, list := range by {
		slo.Sort(list)
	}
	return by, nil
}

// finalize sets what the builders leave to Grafana: the schema version,
// unique panel IDs in layout order, and dashboard links shown above the
// panels (the SDK's default puts them in the controls menu of Grafana 12).
func finalize(m *dashboard.Dashboard) {
	m.SchemaVersion = schemaVersion
	var id uint32
	for i := range m.Panels {
		p := &m.Panels[i]
		if p.RowPanel != nil {
			id++
			p.RowPanel.Id = id
			for j := range p.RowPanel.Panels {
				id++
				n := id
				p.RowPanel.Panels[j].Id = &n
			}
		}
		if p.Panel != nil {
			id++
			n := id
			p.Panel.Id = &n
		}
	}
	for i := range m.Links {
		m.Links[i].Placement = nil
	}
}
