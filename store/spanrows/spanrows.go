// Package spanrows is the binary form spans travel in from the collector's
// conversion through its persistent queue to the store: one row per span,
// each PostgreSQL's binary COPY tuple for the columns of the spans table
// (Columns, types as in migrations/0001_init.up.sql: text, bigint and a
// jsonb of string attributes). The PostgreSQL store COPYs rows as they are;
// other stores Decode them into store.Span.
//
// A tuple is a 16-bit field count (12), then per field a 32-bit length (-1
// for NULL) and that many bytes, all big-endian. Text is written cleaned:
// NUL bytes dropped and invalid UTF-8 replaced by U+FFFD, the only text
// PostgreSQL takes, so one malformed span cannot fail its batch forever.
// The attributes are a jsonb: a version byte (1) and a JSON object of
// strings; a span without attributes has NULL.
//
// A change to the columns or their types must change the format version
// the persistent queue records with the rows (storeexporter), so that rows
// queued by an older build are still read right.
package spanrows

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshlens/meshlens/store"
)

// Columns are the spans table's columns, in row order.
var Columns = []string{"trace_id", "span_id", "parent_span_id", "service", "name", "kind", "start_ns",
	"duration_ns", "status_code", "status_msg", "request_id", "attributes"}

// Field indexes in a row.
const (
	TraceID = iota
	SpanID
	ParentSpanID
	Service
	Name
	Kind
	StartNanos
	DurationNanos
	StatusCode
	StatusMsg
	RequestID
	Attributes
	NumFields
)

// Header and Trailer frame rows into a binary COPY stream: signature,
// flags and header extension length; then -1 as a field count.
var (
	Header  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	Trailer = []byte{0xff, 0xff}
)

// BeginRow starts a row.
func BeginRow(b []byte) []byte { return binary.BigEndian.AppendUint16(b, NumFields) }

// AppendText appends a text field holding s, cleaned.
func AppendText(b []byte, s string) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	if isPlainText(s) {
		b = append(b, s...)
	} else {
		b = append(b, Clean(s)...)
	}
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// AppendHex appends a text field holding id in lowercase hex.
func AppendHex(b []byte, id []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(2*len(id)))
	return hex.AppendEncode(b, id)
}

// AppendInt8 appends a bigint field.
func AppendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// AppendNull appends a NULL field.
func AppendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

// Object builds the attributes field: BeginObject, then Member for each
// attribute, then End; with no member it is NULL.
type Object struct {
	at      int
	members int
}

// BeginObject starts the attributes field.
func BeginObject(b []byte) ([]byte, Object) {
	o := Object{at: len(b)}
	return append(b, 0, 0, 0, 0, 1, '{'), o // length, jsonb version 1
}

// Member appends one attribute.
func (o *Object) Member(b []byte, key, value string) []byte {
	if o.members > 0 {
		b = append(b, ',')
	}
	o.members++
	b = AppendJSONString(b, key)
	b = append(b, ':')
	return AppendJSONString(b, value)
}

// End closes the field.
func (o *Object) End(b []byte) []byte {
	if o.members == 0 {
		return AppendNull(b[:o.at])
	}
	b = append(b, '}')
	binary.BigEndian.PutUint32(b[o.at:], uint32(len(b)-o.at-4))
	return b
}

// AppendSpan appends sp as a row.
func AppendSpan(b []byte, sp *store.Span) []byte {
	b = BeginRow(b)
	b = AppendText(b, sp.TraceID)
	b = AppendText(b, sp.SpanID)
	b = AppendText(b, sp.ParentSpanID)
	b = AppendText(b, sp.Service)
	b = AppendText(b, sp.Name)
	b = AppendText(b, sp.Kind)
	b = AppendInt8(b, sp.Start.UnixNano())
	b = AppendInt8(b, int64(sp.Duration))
	b = AppendText(b, sp.StatusCode)
	b = AppendText(b, sp.StatusMsg)
	b = AppendText(b, sp.RequestID)
	b, o := BeginObject(b)
	for k, v := range sp.Attributes {
		b = o.Member(b, k, v)
	}
	return o.End(b)
}

// Row is one row's fields: views of the row bytes, nil for NULL.
type Row [NumFields][]byte

var errShort = errors.New("spanrows: row cut short")

// Next reads the row at the start of data and returns the rest.
func Next(data []byte) (Row, []byte, error) {
	var r Row
	if len(data) < 2 {
		return r, nil, errShort
	}
	if n := binary.BigEndian.Uint16(data); n != NumFields {
		return r, nil, fmt.Errorf("spanrows: row of %d fields, want %d", n, NumFields)
	}
	data = data[2:]
	for i := range r {
		if len(data) < 4 {
			return r, nil, errShort
		}
		n := int32(binary.BigEndian.Uint32(data))
		data = data[4:]
		if n < 0 {
			continue
		}
		if int(n) > len(data) {
			return r, nil, errShort
		}
		r[i] = data[:n:n]
		data = data[n:]
	}
	return r, data, nil
}

// Int8 reads a bigint field.
func (r *Row) Int8(i int) int64 {
	if len(r[i]) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(r[i]))
}

// Span decodes a row.
func (r *Row) Span() (store.Span, error) {
	sp := store.Span{
		TraceID: string(r[TraceID]), SpanID: string(r[SpanID]), ParentSpanID: string(r[ParentSpanID]),
		Service: string(r[Service]), Name: string(r[Name]), Kind: string(r[Kind]),
		Start: time.Unix(0, r.Int8(StartNanos)).UTC(), Duration: time.Duration(r.Int8(DurationNanos)),
		StatusCode: string(r[StatusCode]), StatusMsg: string(r[StatusMsg]), RequestID: string(r[RequestID]),
	}
	if a := r[Attributes]; a != nil {
		if len(a) == 0 || a[0] != 1 {
			return sp, errors.New("spanrows: attributes are not a version 1 jsonb")
		}
		if err := json.Unmarshal(a[1:], &sp.Attributes); err != nil {
			return sp, fmt.Errorf("spanrows: attributes: %w", err)
		}
	}
	return sp, nil
}

// Decode decodes n rows.
func Decode(data []byte, n int) ([]store.Span, error) {
	out := make([]store.Span, 0, n)
	for len(data) > 0 {
		r, rest, err := Next(data)
		if err != nil {
			return nil, err
		}
		sp, err := r.Span()
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
		data = rest
	}
	return out, nil
}

// Writer is a store that takes rows as they are (the PostgreSQL store).
type Writer interface {
	WriteSpanRows(ctx context.Context, b Batch) error
}

// Write stores b in st: as it is when st is a Writer, decoded into
// WriteSpans otherwise.
func Write(ctx context.Context, st store.Store, b Batch) error {
	if w, ok := st.(Writer); ok {
		return w.WriteSpanRows(ctx, b)
	}
	spans, err := Decode(b.Rows, b.N)
	if err != nil {
		return err
	}
	return st.WriteSpans(ctx, spans)
}

// Clean makes s storable as PostgreSQL text: NUL bytes are dropped and
// invalid UTF-8 replaced. Valid text is returned as it is.
func Clean(s string) string {
	if isPlainText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// isPlainText reports whether s is valid UTF-8 without NUL; ASCII is
// checked eight bytes at a time, without decoding runes.
func isPlainText(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if w := word(s[i:]); w&highBits != 0 || hasZeroByte(w) {
			break
		}
	}
	for ; i < len(s); i++ {
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

// IsASCII reports whether s is all ASCII, checked eight bytes at a time.
func IsASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if word(s[i:])&highBits != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Eight bytes at a time: word loads the first eight bytes of s (the
// compiler makes it one load), and the tests below look at all eight.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

func word(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasZeroByte reports whether a byte of w is 0.
func hasZeroByte(w uint64) bool { return (w-lowBits)&^w&highBits != 0 }

// jsonPlain reports whether the eight bytes of w go into a JSON string as
// they are: ASCII, no control character, no quote, no backslash.
func jsonPlain(w uint64) bool {
	const below = lowBits * 0x20 // (w - below) &^ w: a byte below 0x20, for ASCII bytes
	return w&highBits == 0 &&
		(w-below)&^w&highBits == 0 &&
		!hasZeroByte(w^(lowBits*'"')) &&
		!hasZeroByte(w^(lowBits*'\\'))
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string whose value is Clean(s):
// quotes, backslashes and control characters escaped, NUL dropped (jsonb
// refuses \u0000), each run of invalid UTF-8 replaced by one U+FFFD.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	invalid := false // the byte before i was invalid UTF-8, already replaced
	for i := 0; i < len(s); {
		if i+8 <= len(s) && jsonPlain(word(s[i:])) {
			invalid = false
			i += 8
			continue
		}
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
