package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes the report as indented JSON (latencies in microseconds).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}
