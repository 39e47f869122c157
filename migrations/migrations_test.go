package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbedded(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || Latest() != len(all) {
		t.Fatalf("%d migrations, latest %d", len(all), Latest())
	}
	for _, m := range all {
		if !strings.Contains(m.Up, ";") || !strings.Contains(m.Down, ";") {
			t.Errorf("version %d: empty up or down", m.Version)
		}
	}
}

func TestParseRejects(t *testing.T) {
	f := func(name string, files map[string]string, want string) {
		t.Helper()
		fsys := fstest.MapFS{}
		for n, body := range files {
			fsys[n] = &fstest.MapFile{Data: []byte(body)}
		}
		_, err := parse(fsys)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to mention %q", name, err, want)
		}
	}
	f("no down", map[string]string{"0001_a.up.sql": "x;"}, "needs both")
	f("gap", map[string]string{"0001_a.up.sql": "x;", "0001_a.down.sql": "x;", "0003_c.up.sql": "x;", "0003_c.down.sql": "x;"}, "version 2 missing")
	f("bad name", map[string]string{"1_a.sql": "x;"}, "name is not")
	f("two names", map[string]string{"0001_a.up.sql": "x;", "0001_b.down.sql": "x;"}, "two names")
}
