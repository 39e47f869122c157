package dashboards

import (
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// jaegerQuery is a query of Grafana's built-in Jaeger data source (the SDK
// has no builder for it): a trace search by service, operation, tags
// (logfmt, as the query editor writes them) and duration.
type jaegerQuery struct {
	RefID       string                `json:"refId"`
	Datasource  *common.DataSourceRef `json:"datasource,omitempty"`
	QueryType   string                `json:"queryType"`
	Service     string                `json:"service,omitempty"`
	Operation   string                `json:"operation,omitempty"`
	Tags        string                `json:"tags,omitempty"`
	MinDuration string                `json:"minDuration,omitempty"`
	Limit       int                   `json:"limit,omitempty"`
}

var _ variants.Dataquery = jaegerQuery{}

func (jaegerQuery) ImplementsDataqueryVariant() {}
func (jaegerQuery) DataqueryType() string       { return "jaeger" }
func (jaegerQuery) Validate() error             { return nil }
func (q jaegerQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(jaegerQuery)
	return ok && reflect.DeepEqual(q, o)
}

// Build makes jaegerQuery its own builder (cog.Builder[variants.Dataquery]).
func (q jaegerQuery) Build() (variants.Dataquery, error) { return q, nil }

// traceSearch is a search of the Jaeger data source for a service's traces.
func traceSearch(refID, service, tags, minDuration string) jaegerQuery {
	ds := jaegerDS()
	return jaegerQuery{RefID: refID, Datasource: &ds, QueryType: "search", Service: service, Tags: tags, MinDuration: minDuration, Limit: 20}
}
