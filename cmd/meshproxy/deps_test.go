package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSidecarStaysSmall: the sidecar links no collector, Prometheus engine
// or SQL code (DESIGN.md: proxy/ never imports the collector side).
func TestSidecarStaysSmall(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"go.opentelemetry.io/collector",
		"github.com/prometheus/prometheus",
		"database/sql",
		"github.com/jackc/pgx",
		"modernc.org/sqlite",
		"github.com/meshlens/meshlens/collector",
		"github.com/meshlens/meshlens/store",
		"github.com/meshlens/meshlens/slo",
		"github.com/meshlens/meshlens/alerts",
		"github.com/meshlens/meshlens/dashboards",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("meshproxy links %s", dep)
			}
		}
	}
}
