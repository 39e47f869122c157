// Package migrations holds the PostgreSQL schema as versioned up and down SQL
// files, embedded in the binary. File names are NNNN_name.up.sql and
// NNNN_name.down.sql; versions start at 1 and have no gaps. The runner is in
// store/postgres (meshlens migrate up|down|status).
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

//go:embed *.sql
var files embed.FS

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// All returns the migrations in version order. It fails when a version lacks
// its up or down file, or when versions have a gap.
func All() ([]Migration, error) { return parse(files) }

func parse(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			if e.Name() != "." && !e.IsDir() {
				return nil, fmt.Errorf("migrations: %s: name is not NNNN_name.up.sql or NNNN_name.down.sql", e.Name())
			}
			continue
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		mg := byVersion[v]
		if mg == nil {
			mg = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mg
		}
		if mg.Name != m[2] {
			return nil, fmt.Errorf("migrations: version %d has two names, %q and %q", v, mg.Name, m[2])
		}
		if m[3] == "up" {
			mg.Up = string(b)
		} else {
			mg.Down = string(b)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: version %d missing", i+1)
		}
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migrations: version %d (%s) needs both an up and a down file", m.Version, m.Name)
		}
	}
	return out, nil
}

// Latest is the newest schema version this build knows.
func Latest() int {
	all, err := All()
	if err != nil {
		panic(err) // the embedded files are checked by the tests
	}
	return len(all)
}
