package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Small helpers shared by the three dashboards: data source references,
// query builders, common variables and the few panel shapes used
// everywhere.

func strp(s string) *string { return &s }

// promDS refers to the Prometheus data source through the dashboard's
// datasource variable, so an imported dashboard can be pointed elsewhere.
func promDS() common.DataSourceRef {
	return common.DataSourceRef{Type: strp("prometheus"), Uid: strp("${datasource}")}
}

func jaegerDS() common.DataSourceRef {
	return common.DataSourceRef{Type: strp("jaeger"), Uid: strp(JaegerUID)}
}

// series is a range query drawn as a time series.
func series(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS()).Expr(expr).LegendFormat(legend).Range()
}

// instant is an instant query in table format, for tables and node graphs.
func instant(expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS()).Expr(expr).
		Instant().Format(prometheus.PromQueryFormatTable)
}

// datasourceVariable lets the user pick the Prometheus data source; it
// starts on the provisioned one.
func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Prometheus").
		Type("prometheus").
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: strp("Prometheus (meshlens)")},
			Value: dashboard.StringOrArrayOfString{String: strp(PrometheusUID)},
		})
}

// windowVariable is the window of the rates and percentiles in tables and
// stats ($window); graphs use $__rate_interval.
func windowVariable() *dashboard.CustomVariableBuilder {
	return dashboard.NewCustomVariableBuilder("window").
		Label("Window").
		Values(dashboard.StringOrMap{String: strp("1m,5m,15m,1h,6h,1d")}).
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{String: strp("5m")},
			Value: dashboard.StringOrArrayOfString{String: strp("5m")},
		})
}

// labelValuesVariable is a query variable over label_values(metric{sel}, label).
func labelValuesVariable(name, label, metricSel string, multi bool) *dashboard.QueryVariableBuilder {
	q := "label_values(" + metricSel + ", " + label + ")"
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(promDS()).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1}}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v = v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

// links are the links on top of every dashboard: the overview, the SLO
// dashboard, and a dropdown of every service dashboard.
func links() []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("Overview").Type(dashboard.DashboardLinkTypeLink).
			Url("/d/" + OverviewUID).Icon("dashboard").KeepTime(true).IncludeVars(false),
		dashboard.NewDashboardLinkBuilder("SLOs").Type(dashboard.DashboardLinkTypeLink).
			Url("/d/" + SLOUID).Icon("dashboard").KeepTime(true).IncludeVars(false),
		dashboard.NewDashboardLinkBuilder("Services").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{ServiceTag}).AsDropdown(true).KeepTime(true),
	}
}

// newDashboard starts a dashboard with the settings all three share.
func newDashboard(uid, title, description string, tags []string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(tags).
		Editable().
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Links(links())
}

// thresholds builds absolute thresholds: base color, then (value, color)
// pairs.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Value: nil, Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		v := steps[i].(float64)
		ts = append(ts, dashboard.Threshold{Value: &v, Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

// statPanel is a single big number, reduced to its last value.
func statPanel(title, description, unit string, q *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(promDS()).
		Unit(unit).
		Height(4).Span(4).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		WithTarget(q)
}

// timeseriesPanel draws range queries as lines.
func timeseriesPanel(title, description, unit string, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(promDS()).
		Unit(unit).
		Height(8).Span(12).
		LineWidth(1).FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"mean", "max", "lastNotNull"})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	for _, q := range qs {
		p = p.WithTarget(q)
	}
	return p
}

// column names a value column of a merged table: the query's refId, the
// header it gets, its unit.
type column struct {
	refID, header, unit string
	expr                string
}

// mergedTable joins instant queries that share their label columns into one
// row per label set (Grafana's merge transformation), names the value
// columns, hides the time column and sorts by sortBy.
func mergedTable(title, description string, cols []column, sortBy string, desc bool) *table.PanelBuilder {
	p := newTable(title, description, promDS()).Height(8).Span(24)
	renames := map[string]string{}
	exclude := map[string]bool{"Time": true}
	for _, c := range cols {
		p = p.WithTarget(instant(c.expr).RefId(c.refID))
		renames["Value #"+c.refID] = c.header
		if c.unit != "" {
			p = p.OverrideByName(c.header, []dashboard.DynamicConfigValue{{Id: "unit", Value: c.unit}})
		}
	}
	p = p.WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
		WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"excludeByName": exclude,
			"renameByName":  renames,
		}})
	if sortBy != "" {
		p = p.SortBy([]cog.Builder[common.TableSortByFieldState]{
			common.NewTableSortByFieldStateBuilder().DisplayName(sortBy).Desc(desc),
		})
	}
	return p
}

// newTable starts a table panel; the footer is set in full (Grafana reads
// its reducer list even when the footer is hidden).
func newTable(title, description string, ds common.DataSourceRef) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).Description(description).
		Datasource(ds).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}).CountRows(false))
}

// dataLink is a link on a field's values.
func dataLink(title, url string) []map[string]any {
	return []map[string]any{{"title": title, "url": url}}
}
