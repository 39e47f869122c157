package postgres

import (
	"io"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// CopyStream and CopySpansSQL let the COPY baseline benchmark copy exactly
// the bytes WriteSpans copies.
func CopyStream(spans []store.Span) io.Reader {
	var b []byte
	for i := range spans {
		b = spanrows.AppendSpan(b, &spans[i])
	}
	return copyStream(b)
}

func CopySpansSQL(table string) string { return copySpansSQL(table) }

// TraceSQL, RequestTraceSQL and FindTracesSQL are the span queries of the
// read path, for the test that checks they can use the span indexes.
const RequestTraceSQL = requestTraceSQL

var TraceSQL = traceSQL

func FindTracesSQL(q store.TraceQuery) (string, []any) { return findTracesSQL(q) }
