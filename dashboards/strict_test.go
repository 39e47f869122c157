package dashboards

import (
	"errors"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestStrictSchema decodes every generated dashboard with the SDK's strict
// decoder, which checks each panel's options and field config against the
// types generated from Grafana's own panel schemas: no unknown field, no
// required field left null.
func TestStrictSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	ds, err := Generate(testInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		b, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var m dashboard.Dashboard
		err = m.UnmarshalJSONStrict(b)
		var be cog.BuildErrors
		if errors.As(err, &be) && len(be) == 0 {
			err = nil // the decoder returns an empty error list as a non-nil error
		}
		if err != nil {
			t.Errorf("%s: %v", d.File, err)
		}
	}
}
