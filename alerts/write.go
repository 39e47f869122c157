package alerts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteDir writes files into dir (created if missing), each atomically
// (temporary file, then rename), leaving a file whose content is unchanged
// untouched. It reports whether anything changed.
func WriteDir(dir string, files []File) (changed bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create output directory: %w", err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.Content) {
			continue
		}
		tmp, err := os.CreateTemp(dir, "."+f.Name+".*")
		if err != nil {
			return changed, fmt.Errorf("write %s: %w", path, err)
		}
		_, werr := tmp.Write(f.Content)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o644)
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), path)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return changed, fmt.Errorf("write %s: %w", path, werr)
		}
		changed = true
	}
	return changed, nil
}
