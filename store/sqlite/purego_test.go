package sqlite_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPureGo: the embedded store needs no cgo. No package it links has cgo
// files, apart from the standard library's optional ones (runtime/cgo and
// net, which build without cgo), so `CGO_ENABLED=0 go build` gives a
// working SQLite store.
func TestPureGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	driver := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("go list: %q", line)
		}
		if f[0] == "modernc.org/sqlite" {
			driver = true
		}
		if f[2] != "0" && f[1] != "true" {
			t.Errorf("%s has cgo files: the SQLite store must stay pure Go", f[0])
		}
	}
	if !driver {
		t.Error("the SQLite store does not link modernc.org/sqlite (the pure-Go driver)")
	}
}
