package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/store"
)

// SpanColumns and SpanRows let the COPY baseline benchmark copy exactly the
// rows WriteSpans copies.
func SpanColumns() []string { return spanColumns }

func SpanRows(spans []store.Span) pgx.CopyFromSource { return &spanRows{spans: spans, i: -1} }
