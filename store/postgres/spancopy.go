package postgres

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/meshlens/meshlens/store/spanrows"
)

// Spans are COPYed in PostgreSQL's binary format, as the rows of package
// spanrows framed by its header and trailer: no interface value per
// column, no per-type encode plan, no JSON marshalling through reflection,
// and no round trip to look the column types up (pgx's CopyFrom does all
// four).

// spanColumns are the spans table's columns in row order.
var spanColumns = spanrows.Columns

// copySpansSQL is the COPY statement for table (spans or spans_staging).
func copySpansSQL(table string) string {
	return "COPY " + table + " (" + strings.Join(spanColumns, ", ") + ") FROM STDIN (FORMAT binary)"
}

// copyStream is rows as a binary COPY stream.
func copyStream(rows []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(spanrows.Header), bytes.NewReader(rows), bytes.NewReader(spanrows.Trailer))
}

var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

// encodedSpanGuess is about what one span with a few attributes takes
// encoded, to size the buffer once for a batch.
const encodedSpanGuess = 320

// maxPooledCopyBuf keeps a buffer that grew for one huge batch out of the
// pool.
const maxPooledCopyBuf = 16 << 20
