package collector

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	prommodel "github.com/prometheus/common/model"
)

// checkClassicNames parses the collector's /metrics in the classic text
// format (what Prometheus 2.x without native histograms scrapes) under the
// classic name rules, and fails on any metric or label name outside them.
func checkClassicNames(t *testing.T, metricsAddr string) {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(prommodel.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as classic text exposition: %v", err)
	}
	meshlens := 0
	for name, mf := range fams {
		if !prommodel.LegacyValidation.IsValidMetricName(name) {
			t.Errorf("metric %q is not a classic Prometheus name", name)
		}
		if strings.HasPrefix(name, "meshlens_") {
			meshlens++
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !prommodel.LegacyValidation.IsValidLabelName(l.GetName()) || strings.HasPrefix(l.GetName(), "__") {
					t.Errorf("metric %s: label %q is not a classic Prometheus label name", name, l.GetName())
				}
			}
		}
	}
	if meshlens == 0 {
		t.Error("/metrics served no meshlens_ metric")
	}
}

var exemplarTraceID = regexp.MustCompile(`^meshlens_request_duration_seconds_bucket\{.*\} \S+ # \{trace_id="([0-9a-f]{32})"\}`)

// exemplarTraces returns the trace IDs of the exemplars on
// meshlens_request_duration_seconds in the OpenMetrics exposition, keyed
// by the series' service label.
func exemplarTraces(t *testing.T, metricsAddr string) (map[string]string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		return nil, fmt.Errorf("/metrics answered %s to an OpenMetrics Accept", ct)
	}
	service := regexp.MustCompile(`service="([^"]*)"`)
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := exemplarTraceID.FindStringSubmatch(line); m != nil {
			if s := service.FindStringSubmatch(line); s != nil {
				out[s[1]] = m[1]
			}
		}
	}
	return out, nil
}
