package hdrreceiver

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestConfigFromYAML(t *testing.T) {
	cm, err := confmaptest.LoadConf("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := cm.Sub("meshlens_hdr")
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{Endpoint: "127.0.0.1:14318", Extension: component.MustNewIDWithName("meshlens", "other"), MaxHistogramBytes: 16 << 20, MaxTraceBytes: 1 << 20}
	if *cfg != want {
		t.Errorf("got %+v, want %+v", *cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	sub, _ = cm.Sub("meshlens_hdr/too_small")
	small := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(small); err != nil {
		t.Fatal(err)
	}
	if err := small.Validate(); err == nil || !strings.Contains(err.Error(), "max_histogram_bytes") {
		t.Errorf("Validate: %v, want one naming max_histogram_bytes", err)
	}
}
