package postgres

import (
	"github.com/meshlens/meshlens/store"
)

// EncodeSpans and CopySpansSQL let the COPY baseline benchmark copy exactly
// the bytes WriteSpans copies.
func EncodeSpans(spans []store.Span) []byte { return encodeSpans(nil, spans) }

func CopySpansSQL(table string) string { return copySpansSQL(table) }
