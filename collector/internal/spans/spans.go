// Package spans turns OTLP spans into the store's rows: IDs as hex,
// attributes as strings with credentials removed (authorization headers and cookies
// never reach the store), the request ID lifted out, and the services and
// edges the spans reveal.
package spans

import (
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// DefaultRedact lists the attribute-key suffixes removed at ingest (matched
// case-insensitively against the whole key or its last dotted part).
var DefaultRedact = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie",
	"x-api-key", "api-key", "x-auth-token",
}

// RequestIDKeys are the span attributes that carry the x-request-id, first
// match wins.
var RequestIDKeys = []string{
	"http.request.header.x-request-id",
	"meshlens.request_id",
	"request_id",
	"x-request-id",
}

// PeerKeys name the other side of a hop on a span, first match wins:
// meshlens' own attributes (meshproxy sends meshlens.peer.service), then the
// conventional peer.service.
var PeerKeys = []string{"meshlens.peer.service", "meshlens.peer", "peer.service"}

// Redactor removes credentials from attributes.
type Redactor struct {
	suffixes []string // lowercased
	// last marks the last bytes of the suffixes: an ASCII key whose last
	// byte, lowercased, is not one of them matches none.
	last [256]bool
}

// NewRedactor returns a Redactor removing keys that end in one of suffixes.
func NewRedactor(suffixes []string) *Redactor {
	r := &Redactor{}
	for _, s := range suffixes {
		s = strings.ToLower(s)
		r.suffixes = append(r.suffixes, s)
		if s == "" { // "" ends every key: no byte tells
			for i := range r.last {
				r.last[i] = true
			}
			continue
		}
		r.last[s[len(s)-1]] = true
	}
	return r
}

// Redacted reports whether an attribute key must not be stored: the key is
// one of the suffixes, or ends in "." or "_" and one of them, compared
// without regard to case. It runs for every attribute of every span, so an
// ASCII key (all real ones) is matched in place: for each suffix one length
// check, one separator byte and, only then, a case-insensitive compare; no
// string is built. Most keys are passed on their last byte alone.
func (r *Redactor) Redacted(key string) bool {
	if n := len(key); n > 0 && key[n-1] < utf8.RuneSelf && !r.last[lowerASCII(key[n-1])] {
		return false
	}
	if !spanrows.IsASCII(key) {
		return r.redactedFolded(key)
	}
	for _, s := range r.suffixes {
		n := len(key) - len(s)
		if n < 0 || (n > 0 && key[n-1] != '.' && key[n-1] != '_') {
			continue
		}
		if asciiEqualLower(key[n:], s) {
			return true
		}
	}
	return false
}

// redactedFolded is Redacted for keys with non-ASCII bytes, whose lower
// case may differ in length (strings.ToLower maps the Kelvin sign to k).
func (r *Redactor) redactedFolded(key string) bool {
	k := strings.ToLower(key)
	for _, s := range r.suffixes {
		if k == s || strings.HasSuffix(k, "."+s) || strings.HasSuffix(k, "_"+s) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiEqualLower reports whether the ASCII string a equals lower once
// lowercased; lower is already lower case.
func asciiEqualLower(a, lower string) bool {
	if len(a) != len(lower) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lower[i] {
			return false
		}
	}
	return true
}

func serviceName(rs ptrace.ResourceSpans) string {
	if v, ok := rs.Resource().Attributes().Get("service.name"); ok && v.Str() != "" {
		return v.Str()
	}
	return "unknown"
}

// discoveries collects the services and edges spans reveal.
type discoveries struct {
	services map[string]*store.Service
	edges    map[[2]string]*store.Edge
	last     *store.Service // the service of the span before, most often the same
}

// span notes one span's service and, for a client or server span with a
// known peer, the edge.
func (d *discoveries) span(k ptrace.SpanKind, service, peer string, start time.Time) {
	d.see(service, start)
	if peer == "" {
		return
	}
	switch k {
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		d.edge(service, peer, start)
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		d.edge(peer, service, start)
	}
}

func (d *discoveries) see(name string, t time.Time) {
	if name == "" || name == "unknown" {
		return
	}
	s := d.last
	if s == nil || s.Name != name {
		var ok bool
		if s, ok = d.services[name]; !ok {
			if d.services == nil {
				d.services = map[string]*store.Service{}
			}
			name = strings.Clone(name) // kept past the payload
			s = &store.Service{Name: name, FirstSeen: t, LastSeen: t}
			d.services[name] = s
		}
		d.last = s
	}
	if t.Before(s.FirstSeen) {
		s.FirstSeen = t
	}
	if t.After(s.LastSeen) {
		s.LastSeen = t
	}
}

func (d *discoveries) edge(caller, callee string, t time.Time) {
	if caller == "" || callee == "" || caller == "unknown" || callee == "unknown" || caller == callee {
		return
	}
	d.see(caller, t)
	d.see(callee, t)
	k := [2]string{caller, callee}
	e, ok := d.edges[k]
	if !ok {
		if d.edges == nil {
			d.edges = map[[2]string]*store.Edge{}
		}
		k = [2]string{strings.Clone(caller), strings.Clone(callee)}
		d.edges[k] = &store.Edge{Caller: k[0], Callee: k[1], FirstSeen: t, LastSeen: t}
		return
	}
	if t.Before(e.FirstSeen) {
		e.FirstSeen = t
	}
	if t.After(e.LastSeen) {
		e.LastSeen = t
	}
}

func (d *discoveries) result() ([]store.Service, []store.Edge) {
	var ss []store.Service
	var es []store.Edge
	for _, s := range d.services {
		ss = append(ss, *s)
	}
	for _, e := range d.edges {
		es = append(es, *e)
	}
	return ss, es
}

// unsafeString is b as a string, without a copy: b must not change while
// the string is used.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// firstString is v as a string; a slice gives its first element (HTTP
// header attributes are string arrays).
func firstString(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeSlice {
		if v.Slice().Len() == 0 {
			return ""
		}
		return v.Slice().At(0).AsString()
	}
	return v.AsString()
}

// keyPick finds a key among a few in the one pass over a span's attributes:
// most keys are told apart by their length alone.
type keyPick struct {
	keys []string
	lens uint64 // bit n set: one of keys is n bytes long (n < 64)
}

var (
	requestIDPick = newKeyPick(RequestIDKeys)
	peerPick      = newKeyPick(PeerKeys)
)

func newKeyPick(keys []string) keyPick {
	p := keyPick{keys: keys}
	for _, k := range keys {
		if len(k) >= 64 {
			panic("spans: an attribute key to pick is 64 bytes or longer: " + k)
		}
		p.lens |= 1 << len(k)
	}
	return p
}

// PeerRank is k's index in PeerKeys, or -1.
func PeerRank(k string) int { return peerPick.rank(k) }

// rank is k's index in the keys, or -1.
func (p *keyPick) rank(k string) int {
	if len(k) >= 64 || p.lens&(1<<len(k)) == 0 {
		return -1
	}
	for i, key := range p.keys {
		if k == key {
			return i
		}
	}
	return -1
}

func kind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	default:
		return "internal"
	}
}

func status(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	default:
		return "unset"
	}
}
