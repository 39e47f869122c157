package logstorage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func testOptions() logOptions {
	return logOptions{segmentSize: minSegmentSize, cacheSize: 1 << 20}
}

func mustOpen(t *testing.T, dir string, o logOptions) *log {
	t.Helper()
	l, err := openLog(dir, o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func get(t *testing.T, l *log, key string) []byte {
	t.Helper()
	op := storage.GetOperation(key)
	if err := l.batch([]*storage.Operation{op}); err != nil {
		t.Fatal(err)
	}
	return op.Value
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	must(t, err)
	return m
}

func TestBatchSemantics(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	defer l.close()
	if v := get(t, l, "missing"); v != nil {
		t.Fatalf("missing key: %q, want nil", v)
	}
	// Gets see the ops before them in the same batch, and only those.
	g1, g2, g3, g4 := storage.GetOperation("a"), storage.GetOperation("a"), storage.GetOperation("a"), storage.GetOperation("b")
	must(t, l.batch([]*storage.Operation{
		g1, storage.SetOperation("a", []byte("1")), g2, storage.DeleteOperation("a"), g3,
		storage.SetOperation("b", []byte("x")), storage.SetOperation("b", []byte("y")), g4,
	}))
	if g1.Value != nil || string(g2.Value) != "1" || g3.Value != nil || string(g4.Value) != "y" {
		t.Errorf("gets in a batch: %q %q %q %q, want nil 1 nil y", g1.Value, g2.Value, g3.Value, g4.Value)
	}
	if v := get(t, l, "a"); v != nil {
		t.Errorf("a after set then delete: %q", v)
	}
	// A value is the same read from memory or from the segment.
	val := bytes.Repeat([]byte("v"), 1000)
	must(t, l.batch([]*storage.Operation{storage.SetOperation("c", val)}))
	val[0] = 'X' // the caller may reuse its buffer
	for i := range 2 {
		if v := get(t, l, "c"); len(v) != 1000 || v[0] != 'v' {
			t.Fatalf("read %d of c: %d bytes starting %q", i, len(v), v[:1])
		}
	}
	must(t, l.batch([]*storage.Operation{storage.SetOperation("empty", []byte{})}))
	if v := get(t, l, "empty"); v == nil || len(v) != 0 {
		t.Errorf("empty value: %v, want empty and not nil", v)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	must(t, l.batch([]*storage.Operation{storage.SetOperation("keep", []byte("k")), storage.SetOperation("gone", []byte("g"))}))
	must(t, l.batch([]*storage.Operation{storage.DeleteOperation("gone"), storage.SetOperation("keep", []byte("k2"))}))
	must(t, l.close())
	if err := l.batch([]*storage.Operation{storage.GetOperation("keep")}); err == nil {
		t.Error("batch on a closed log: no error")
	}
	l = mustOpen(t, dir, testOptions())
	defer l.close()
	if v := get(t, l, "keep"); string(v) != "k2" {
		t.Errorf("keep after reopen: %q", v)
	}
	if v := get(t, l, "gone"); v != nil {
		t.Errorf("gone after reopen: %q", v)
	}
}

// A write torn by a crash loses that batch only, whole.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	must(t, l.batch([]*storage.Operation{storage.SetOperation("a", []byte("1"))}))
	must(t, l.batch([]*storage.Operation{storage.SetOperation("b", []byte("2")), storage.SetOperation("c", []byte("3"))}))
	s := l.active()
	path := filepath.Join(dir, segName(s.num))
	must(t, l.close())
	data, err := os.ReadFile(path)
	must(t, err)
	for cut := len(data) - 1; cut > 0; cut -= 3 {
		must(t, os.WriteFile(path, data[:cut], 0o600))
		l := mustOpen(t, dir, testOptions())
		if v := get(t, l, "a"); string(v) != "1" && cut >= 17 {
			t.Fatalf("cut at %d: a = %q", cut, v)
		}
		b, c := get(t, l, "b"), get(t, l, "c")
		if b != nil || c != nil {
			t.Fatalf("cut at %d: half a batch or a torn one applied: b %q c %q", cut, b, c)
		}
		// The log goes on after the cut, and what it writes then stands.
		must(t, l.batch([]*storage.Operation{storage.SetOperation("d", []byte("4"))}))
		must(t, l.close())
		l = mustOpen(t, dir, testOptions())
		if v := get(t, l, "d"); string(v) != "4" {
			t.Fatalf("cut at %d: d after reopen = %q", cut, v)
		}
		must(t, l.batch([]*storage.Operation{storage.DeleteOperation("d")}))
		must(t, l.close())
		for _, seg := range segments(t, dir) {
			if seg != path {
				must(t, os.Remove(seg))
			}
		}
	}
	// A flipped bit fails the checksum the same way.
	bad := bytes.Clone(data)
	bad[len(bad)-2] ^= 1
	must(t, os.WriteFile(path, bad, 0o600))
	l = mustOpen(t, dir, testOptions())
	defer l.close()
	if a, b := get(t, l, "a"), get(t, l, "b"); string(a) != "1" || b != nil {
		t.Errorf("corrupt last record: a %q b %q", a, b)
	}
}

// The sending queue's pattern: write, read back, delete, forever. Used-up
// segments go, and a key set once and never again (pinning its segment) is
// copied forward instead of keeping every segment after it.
func TestSegmentsRecycled(t *testing.T) {
	dir := t.TempDir()
	o := testOptions()
	l := mustOpen(t, dir, o)
	must(t, l.batch([]*storage.Operation{storage.SetOperation("pinned", []byte("p"))}))
	item := bytes.Repeat([]byte("i"), 15000)
	for i := range 2000 {
		k := fmt.Sprint(i)
		meta := []byte(fmt.Sprintf("meta %d", i))
		must(t, l.batch([]*storage.Operation{storage.SetOperation("meta", meta), storage.SetOperation(k, item)}))
		g := storage.GetOperation(k)
		must(t, l.batch([]*storage.Operation{storage.SetOperation("meta", meta), g}))
		if !bytes.Equal(g.Value, item) {
			t.Fatalf("item %d read back wrong", i)
		}
		must(t, l.batch([]*storage.Operation{storage.SetOperation("meta", meta), storage.DeleteOperation(k)}))
		if n := len(segments(t, dir)); n > 4 {
			t.Fatalf("after %d items: %d segments of %d bytes for one live item", i, n, o.segmentSize)
		}
	}
	must(t, l.close())
	l = mustOpen(t, dir, o)
	defer l.close()
	if v := get(t, l, "pinned"); string(v) != "p" {
		t.Errorf("pinned after 2000 items and a reopen: %q", v)
	}
	if v := get(t, l, "meta"); string(v) != "meta 1999" {
		t.Errorf("meta: %q", v)
	}
	if len(l.index) != 2 {
		t.Errorf("%d live keys, want 2", len(l.index))
	}
}

// Random batches against a map, reopening now and then (as after a crash:
// every batch returned is on disk).
func TestModel(t *testing.T) {
	dir := t.TempDir()
	o := logOptions{segmentSize: minSegmentSize, cacheSize: 4096}
	l := mustOpen(t, dir, o)
	defer func() { l.close() }()
	model := map[string][]byte{}
	r := rand.New(rand.NewSource(7))
	for step := range 3000 {
		var ops []*storage.Operation
		var want []any
		for range 1 + r.Intn(4) {
			k := fmt.Sprint("k", r.Intn(40))
			switch r.Intn(3) {
			case 0:
				v := bytes.Repeat([]byte{byte(step)}, r.Intn(3000))
				ops = append(ops, storage.SetOperation(k, v))
				model[k] = bytes.Clone(v)
			case 1:
				ops = append(ops, storage.DeleteOperation(k))
				delete(model, k)
			case 2:
				ops = append(ops, storage.GetOperation(k))
				want = append(want, model[k])
				continue
			}
			want = append(want, nil)
		}
		must(t, l.batch(ops))
		for i, op := range ops {
			if op.Type == storage.Get && !bytes.Equal(op.Value, want[i].([]byte)) {
				t.Fatalf("step %d: get %s = %d bytes, want %d", step, op.Key, len(op.Value), len(want[i].([]byte)))
			}
		}
		if r.Intn(200) == 0 {
			must(t, l.close())
			l = mustOpen(t, dir, o)
			if len(l.index) != len(model) {
				t.Fatalf("step %d: %d keys after reopen, want %d", step, len(l.index), len(model))
			}
			for k, v := range model {
				if got := get(t, l, k); !bytes.Equal(got, v) {
					t.Fatalf("step %d: %s after reopen: %d bytes, want %d", step, k, len(got), len(v))
				}
			}
		}
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	defer l.close()
	if _, err := openLog(dir, testOptions(), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: %v, want in use", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := createDefaultConfig().(*Config)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("default config without directory: %v", err)
	}
	c.Directory, c.SegmentSize, c.CacheSize = "x", 10, -1
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "segment_size") || !strings.Contains(err.Error(), "cache_size") {
		t.Errorf("Validate: %v, want segment_size and cache_size named", err)
	}
}

func startExtension(t *testing.T, f extension.Factory, cfg component.Config) storage.Extension {
	t.Helper()
	ext, err := f.Create(context.Background(), extension.Settings{ID: component.NewID(f.Type()), TelemetrySettings: componenttest.NewNopTelemetrySettings()}, cfg)
	must(t, err)
	must(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return ext.(storage.Extension)
}

func TestExtensionClients(t *testing.T) {
	dir := t.TempDir()
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = filepath.Join(dir, "queue")
	ext := startExtension(t, NewFactory(), cfg)
	ctx := context.Background()
	id := component.MustNewIDWithName("meshlens_store", "a/b")
	c, err := ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	if _, err := ext.GetClient(ctx, component.KindExporter, id, "traces"); err == nil {
		t.Error("a second client of the same name while the first is open: no error")
	}
	must(t, c.Set(ctx, "k", []byte("v")))
	must(t, c.Close(ctx))
	if _, err := os.Stat(filepath.Join(cfg.Directory, "exporter_meshlens_store_a~002Fb_traces.log")); err != nil {
		t.Errorf("client directory: %v", err)
	}
	c, err = ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	v, err := c.Get(ctx, "k")
	if err != nil || string(v) != "v" {
		t.Errorf("after reopening the client: %q, %v", v, err)
	}
	must(t, c.Delete(ctx, "k"))
	if v, err := c.Get(ctx, "k"); v != nil || err != nil {
		t.Errorf("deleted: %q, %v", v, err)
	}
}

// Peek shows a closed client's live values, in key order, and writes
// nothing: no directory for a client that never was, no new segment.
func TestPeek(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = t.TempDir()
	ext := startExtension(t, NewFactory(), cfg).(*logStorage)
	ctx := context.Background()
	id := component.MustNewID("meshlens_store")
	peek := func() (map[string]string, []string, error) {
		got := map[string]string{}
		var order []string
		err := ext.Peek(component.KindExporter, id, "traces", func(k string, v []byte) error {
			got[k] = string(v)
			order = append(order, k)
			return nil
		})
		return got, order, err
	}

	if got, _, err := peek(); err != nil || len(got) != 0 {
		t.Fatalf("a client that never was: %v, %v", got, err)
	}
	dir := filepath.Join(cfg.Directory, "exporter_meshlens_store_traces.log")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("peeking created %s: %v", dir, err)
	}

	c, err := ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	must(t, c.Batch(ctx, storage.SetOperation("qmv0", []byte("meta")), storage.SetOperation("7", []byte("seven"))))
	must(t, c.Set(ctx, "12", []byte("twelve")))
	must(t, c.Set(ctx, "8", []byte("gone")))
	must(t, c.Delete(ctx, "8"))
	if _, _, err := peek(); err == nil {
		t.Error("peeking at an open client: no error")
	}
	must(t, c.Close(ctx))

	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	got, order, err := peek()
	must(t, err)
	want := map[string]string{"qmv0": "meta", "7": "seven", "12": "twelve"}
	if !reflect.DeepEqual(got, want) || !slices.IsSorted(order) {
		t.Errorf("peeked %v in order %v, want %v sorted", got, order, want)
	}
	if after, _ := filepath.Glob(filepath.Join(dir, "*.seg")); !slices.Equal(after, segs) {
		t.Errorf("segments %v after peeking, %v before", after, segs)
	}
	// The client opens as it was.
	c, err = ext.GetClient(ctx, component.KindExporter, id, "traces")
	must(t, err)
	if v, err := c.Get(ctx, "12"); err != nil || string(v) != "twelve" {
		t.Errorf("after peeking: %q, %v", v, err)
	}
	must(t, c.Close(ctx))
}

func TestConfigFromYAML(t *testing.T) {
	cm, err := confmaptest.LoadConf("testdata/config.yaml")
	must(t, err)
	sub, err := cm.Sub("meshlens_log_storage")
	must(t, err)
	cfg := createDefaultConfig().(*Config)
	must(t, sub.Unmarshal(cfg))
	must(t, cfg.Validate())
	want := Config{Directory: "/var/lib/meshlens/queue", CreateDirectory: true, FSync: true, SegmentSize: 1 << 20}
	if *cfg != want {
		t.Errorf("config %+v, want %+v", *cfg, want)
	}
	sub, err = cm.Sub("meshlens_log_storage/bad")
	must(t, err)
	bad := createDefaultConfig().(*Config)
	must(t, sub.Unmarshal(bad))
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "directory") || !strings.Contains(err.Error(), "segment_size") {
		t.Errorf("Validate: %v, want directory and segment_size named", err)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
