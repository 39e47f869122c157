package postgres

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/meshlens/meshlens/store"
)

// The spans are COPYed in PostgreSQL's binary format, encoded here straight
// from the store.Span fields into one reused buffer: no interface value per
// column, no per-type encode plan, no JSON marshalling through reflection,
// and no round trip to look the column types up (pgx's CopyFrom does all
// four). The column types are those of migrations/0001_init.up.sql.

// spanColumnList is spanColumns as COPY names them.
var spanColumnList = "(" + strings.Join(spanColumns, ", ") + ")"

// copySpansSQL is the COPY statement for table (spans or spans_staging).
func copySpansSQL(table string) string {
	return "COPY " + table + " " + spanColumnList + " FROM STDIN (FORMAT binary)"
}

// copyHeader is the binary COPY signature, flags and header extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

// encodedSpanGuess is about what one span with a few attributes takes
// encoded, to size the buffer once for a batch.
const encodedSpanGuess = 320

// maxPooledCopyBuf keeps a buffer that grew for one huge batch out of the
// pool.
const maxPooledCopyBuf = 16 << 20

// encodeSpans appends the binary COPY stream of spans (header, one tuple per
// span, trailer) to b. Text goes through the same cleaning as clean: NUL
// bytes dropped and invalid UTF-8 replaced, so one malformed span cannot
// fail a batch forever.
func encodeSpans(b []byte, spans []store.Span) []byte {
	b = slices.Grow(b, len(copyHeader)+len(spans)*encodedSpanGuess)
	b = append(b, copyHeader...)
	for i := range spans {
		sp := &spans[i]
		b = binary.BigEndian.AppendUint16(b, uint16(len(spanColumns)))
		b = appendTextField(b, sp.TraceID)
		b = appendTextField(b, sp.SpanID)
		b = appendTextField(b, sp.ParentSpanID)
		b = appendTextField(b, sp.Service)
		b = appendTextField(b, sp.Name)
		b = appendTextField(b, sp.Kind)
		b = appendInt8Field(b, sp.Start.UnixNano())
		b = appendInt8Field(b, int64(sp.Duration))
		b = appendTextField(b, sp.StatusCode)
		b = appendTextField(b, sp.StatusMsg)
		b = appendTextField(b, sp.RequestID)
		if len(sp.Attributes) == 0 {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff) // NULL
			continue
		}
		at := len(b)
		b = append(b, 0, 0, 0, 0, 1) // length, then jsonb version 1
		b = appendJSONObject(b, sp.Attributes)
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer: -1
}

func appendInt8Field(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendTextField(b []byte, s string) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b = appendClean(b, s)
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// appendClean appends clean(s).
func appendClean(b []byte, s string) []byte {
	if isPlainText(s) {
		return append(b, s...)
	}
	return append(b, clean(s)...)
}

// isPlainText reports whether s is valid UTF-8 without NUL, the text
// PostgreSQL takes as it is; ASCII is checked without decoding runes.
func isPlainText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && strings.IndexByte(s[i:], 0) < 0
		}
	}
	return true
}

// appendJSONObject appends m as a JSON object of strings, keys and values
// cleaned. The order of keys does not matter: jsonb keeps its own.
func appendJSONObject(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	return append(b, '}')
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, NUL dropped (jsonb refuses \u0000), invalid
// UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	invalid := false // the byte before i was invalid UTF-8, already replaced
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			invalid = false
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case 0:
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			// A run of invalid bytes becomes one U+FFFD, as in clean.
			b = append(b, s[start:i]...)
			if !invalid {
				b = append(b, "\uFFFD"...)
			}
			invalid = true
			i++
			start = i
			continue
		}
		invalid = false
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
