package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Formats are the report formats, by name, with their file extension.
var Formats = map[string]struct {
	Ext   string
	Write func(io.Writer, *Report) error
}{
	"text": {".txt", WriteText},
	"json": {".json", WriteJSON},
	"html": {".html", WriteHTML},
	"hlog": {".hlog", WriteHlog},
}

// FormatNames lists the formats in the order they are documented.
var FormatNames = []string{"text", "json", "html", "hlog"}

// Write writes r in the named format.
func Write(w io.Writer, format string, r *Report) error {
	f, ok := Formats[format]
	if !ok {
		return fmt.Errorf("format: %q is not one of %v", format, FormatNames)
	}
	return f.Write(w, r)
}

// WriteFiles writes r in every format into dir as NAME.txt, NAME.json,
// NAME.html and NAME.hlog, and returns the paths written.
func WriteFiles(dir, name string, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report directory: %w", err)
	}
	var paths []string
	for _, format := range FormatNames {
		p := filepath.Join(dir, name+Formats[format].Ext)
		if err := writeFile(p, format, r); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeFile writes through a temporary file, so a reader never sees half a
// report.
func writeFile(path, format string, r *Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := Write(tmp, format, r); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
