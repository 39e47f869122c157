// Package testenv finds the real components tests talk to. A test that needs
// a component and cannot find it fails: `make test` installs them
// (scripts/install-debs.sh, scripts/install-tools.sh).
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Tool returns the path of an executable, looked up first in the project's
// .tools/bin, then in bin/ (our own binaries), then on PATH. It fails the test
// when the tool is missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	root := RepoRoot(t)
	for _, dir := range []string{filepath.Join(root, ".tools", "bin"), filepath.Join(root, "bin")} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testenv: %s not found; run `make test-deps` (scripts/install-debs.sh, scripts/install-tools.sh)", name)
	}
	return p
}
