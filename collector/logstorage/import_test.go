package logstorage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
)

// A collector upgraded from the file_storage queue finds what that queue
// held: the same directory, the same component, the same keys.
func TestImportFileStorage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	id := component.MustNewID("meshlens_store")

	ff := filestorage.NewFactory()
	fcfg := ff.CreateDefaultConfig().(*filestorage.Config)
	fcfg.Directory = dir
	fcfg.Compaction.Directory = dir
	fs := startExtension(t, ff, fcfg)
	fc, err := fs.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	must(t, fc.Set(ctx, "qmv0", []byte("metadata")))
	must(t, fc.Set(ctx, "41", []byte("request 41")))
	must(t, fc.Set(ctx, "42", []byte("request 42")))
	must(t, fc.Close(ctx))

	cfg := createDefaultConfig().(*Config)
	cfg.Directory = dir
	ext := startExtension(t, NewFactory(), cfg)
	c, err := ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	for k, want := range map[string]string{"qmv0": "metadata", "41": "request 41", "42": "request 42"} {
		if v, err := c.Get(ctx, k); err != nil || string(v) != want {
			t.Errorf("%s: %q, %v; want %q", k, v, err, want)
		}
	}
	must(t, c.Close(ctx))
	db := filepath.Join(dir, "exporter_meshlens_store__traces")
	if _, err := os.Stat(db + ".imported"); err != nil {
		t.Errorf("file_storage database not renamed: %v", err)
	}
	// Imported once: the log is the queue's from now on.
	c, err = ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	must(t, c.Delete(ctx, "41"))
	must(t, c.Close(ctx))
	c, err = ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	defer c.Close(ctx)
	if v, _ := c.Get(ctx, "41"); v != nil {
		t.Errorf("41 came back: %q", v)
	}
}
