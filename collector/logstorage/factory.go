// Package logstorage is the meshlens_log_storage extension: a storage
// extension (xextension/storage) for the exporters' persistent sending
// queues, as an append-only log of segment files with an index in memory.
//
// The sending queue writes each request, reads it back and deletes it: three
// small transactions per request. file_storage runs each as a bbolt
// transaction (copy-on-write B+tree pages, page allocation, a meta page
// write per commit); here each is one write of one checksummed record to
// the end of the active segment, a value just written is read back from
// memory, and a segment whose values are all deleted is removed whole.
package logstorage

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// Type is the extension's type in the collector config.
var Type = component.MustNewType("meshlens_log_storage")

// NewFactory returns the extension's factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, createDefaultConfig, create, component.StabilityLevelBeta)
}

func createDefaultConfig() component.Config {
	return &Config{
		CreateDirectory:   true,
		SegmentSize:       DefaultSegmentSize,
		CacheSize:         DefaultCacheSize,
		ImportFileStorage: true,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(set, cfg.(*Config)), nil
}
