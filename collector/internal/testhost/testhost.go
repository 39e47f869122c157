// Package testhost starts a real meshlens extension (an embedded SQLite
// store in a temporary directory, metrics and query servers on loopback
// ports) and gives components a component.Host that holds it, for the
// components' lifecycle and behaviour tests.
package testhost

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension"

	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/internal/freeport"
)

// Host is a component.Host holding extensions.
type Host struct {
	exts map[component.ID]component.Component
}

// GetExtensions implements component.Host.
func (h *Host) GetExtensions() map[component.ID]component.Component { return h.exts }

// ID is the meshlens extension's ID in the Host.
var ID = component.NewID(meshlensextension.Type)

// Options tune the extension.
type Options struct {
	IngestToken string
	APIToken    string
	DatabaseURL string
}

// Start starts a meshlens extension on loopback ports with its store in a
// temporary directory, and stops it when the test ends.
func Start(t testing.TB, o Options) (*Host, *meshlensextension.Extension) {
	t.Helper()
	f := meshlensextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*meshlensextension.Config)
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = configopaque.String(o.DatabaseURL)
	cfg.IngestToken = configopaque.String(o.IngestToken)
	cfg.API.AuthToken = configopaque.String(o.APIToken)
	cfg.Metrics.Endpoint = FreeAddr(t)
	cfg.API.Endpoint = FreeAddr(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := extension.Settings{ID: ID, TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{exts: map[component.ID]component.Component{ID: ext}}
	if err := ext.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown meshlens extension: %v", err)
		}
	})
	return h, ext.(*meshlensextension.Extension)
}

// FreeAddr returns a loopback address with a port free right now
// (freeport: below the ephemeral range).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
