package proxy

import (
	"bytes"
	"net"
)

// Request smuggling guard.
//
// Go's net/http tolerates a few framings that let a front end and a back end
// disagree on where a request ends: Content-Length together with
// Transfer-Encoding (it drops the Content-Length), repeated identical
// Content-Length headers, and obs-fold continuation lines. guardedConn reads
// the raw HTTP/1.1 byte stream of a connection before net/http does, follows
// its framing (headers, Content-Length bodies, chunked bodies with trailers)
// and, on a framing it refuses, hands net/http a read error instead of the
// offending header block. net/http then answers "400 Bad Request" and closes
// the connection; the request never reaches a handler, so nothing is
// forwarded. Connections that switch protocol (h2c prior knowledge, Upgrade,
// CONNECT) are passed through once they do.

// Smuggling rejection reasons (the label of the rejection counter).
const (
	rejectCLAndTE       = "content_length_and_transfer_encoding"
	rejectDuplicateCL   = "duplicate_content_length"
	rejectMalformedCL   = "malformed_content_length"
	rejectObsFold       = "obs_fold"
	rejectTEUnsupported = "unsupported_transfer_encoding"
)

// smugglingError is returned by guardedConn.Read; it is deliberately not a
// net.Error so that net/http answers 400 rather than closing silently.
type smugglingError struct{ reason string }

func (e *smugglingError) Error() string { return "request smuggling refused: " + e.reason }

type guardState uint8

const (
	gRequestLine guardState = iota
	gHeaders
	gBody
	gChunkSize
	gChunkData
	gChunkDataEnd
	gTrailers
	gPassthrough
)

// maxGuardLine bounds how much of one line the guard keeps; net/http
// rejects header sections over its own limit anyway.
const maxGuardLine = 16 << 10

// framingGuard follows HTTP/1.1 request framing byte by byte.
type framingGuard struct {
	state     guardState
	line      []byte
	truncated bool
	remaining int64 // body or chunk bytes still to skip

	// the current request's header facts
	http10     bool
	clCount    int
	clValid    bool
	clValue    int64
	teCount    int
	teChunked  bool
	upgrade    bool
	connectReq bool
}

// feed consumes p. On a violation it returns the reason and how many bytes
// of p may still be delivered: those before the refused header block plus
// its first few bytes, never enough to complete it. reason is "" when p is
// fine.
func (g *framingGuard) feed(p []byte) (blockStart int, reason string) {
	blockStart = 0
	i := 0
	for i < len(p) {
		switch g.state {
		case gPassthrough:
			return 0, ""
		case gBody:
			n := int64(len(p) - i)
			if n > g.remaining {
				n = g.remaining
			}
			i += int(n)
			g.remaining -= n
			if g.remaining == 0 {
				g.state = gRequestLine
				blockStart = i
			}
		case gChunkData:
			n := int64(len(p) - i)
			if n > g.remaining {
				n = g.remaining
			}
			i += int(n)
			g.remaining -= n
			if g.remaining == 0 {
				g.state = gChunkDataEnd
			}
		default: // line-oriented states
			j := bytes.IndexByte(p[i:], '\n')
			end := len(p)
			if j >= 0 {
				end = i + j
			}
			if room := maxGuardLine - len(g.line); room > 0 {
				chunk := p[i:end]
				if len(chunk) > room {
					chunk = chunk[:room]
					g.truncated = true
				}
				g.line = append(g.line, chunk...)
			} else if end > i {
				g.truncated = true
			}
			if j < 0 {
				return blockStart, ""
			}
			i = end + 1
			line := g.line
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if r := g.endLine(line); r != "" {
				// Deliver a few bytes of the refused block: net/http then
				// fails inside the request (and answers 400) instead of
				// while waiting for one (where it closes silently).
				return min(blockStart+4, i), r
			}
			g.line, g.truncated = g.line[:0], false
			if g.state == gRequestLine {
				blockStart = i
			}
		}
	}
	return blockStart, ""
}

// endLine handles one complete line (without its line ending).
func (g *framingGuard) endLine(line []byte) string {
	switch g.state {
	case gRequestLine:
		if len(line) == 0 {
			return "" // tolerated empty line between requests
		}
		g.startRequest(line)
	case gHeaders:
		if len(line) == 0 {
			return g.endHeaders()
		}
		return g.header(line)
	case gChunkSize:
		size, ok := parseChunkSize(line)
		if !ok || g.truncated {
			g.state = gPassthrough // net/http rejects it and closes the connection
			return ""
		}
		if size == 0 {
			g.state = gTrailers
			return ""
		}
		g.remaining = size
		g.state = gChunkData
	case gChunkDataEnd:
		if len(line) != 0 {
			g.state = gPassthrough // malformed; net/http fails the body
			return ""
		}
		g.state = gChunkSize
	case gTrailers:
		if len(line) == 0 {
			g.state = gRequestLine
			return ""
		}
		if line[0] == ' ' || line[0] == '\t' {
			return rejectObsFold
		}
	}
	return ""
}

func (g *framingGuard) startRequest(line []byte) {
	*g = framingGuard{line: g.line, state: gHeaders}
	if bytes.Equal(line, []byte("PRI * HTTP/2.0")) {
		g.state = gPassthrough // HTTP/2 prior knowledge: its own framing
		return
	}
	g.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
	g.connectReq = bytes.HasPrefix(line, []byte("CONNECT "))
}

var (
	hdrContentLength    = []byte("content-length")
	hdrTransferEncoding = []byte("transfer-encoding")
	hdrUpgrade          = []byte("upgrade")
)

func (g *framingGuard) header(line []byte) string {
	if line[0] == ' ' || line[0] == '\t' {
		return rejectObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "" // net/http rejects a line without a field name
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	switch {
	case bytes.EqualFold(name, hdrContentLength):
		g.clCount++
		if g.clCount > 1 {
			return rejectDuplicateCL
		}
		n, ok := parseContentLength(value)
		if !ok || g.truncated {
			return rejectMalformedCL
		}
		g.clValid, g.clValue = true, n
	case bytes.EqualFold(name, hdrTransferEncoding):
		g.teCount++
		if g.teCount > 1 || !bytes.EqualFold(value, []byte("chunked")) || g.http10 {
			return rejectTEUnsupported
		}
		g.teChunked = true
	case bytes.EqualFold(name, hdrUpgrade):
		g.upgrade = true
	}
	return ""
}

func (g *framingGuard) endHeaders() string {
	if g.clCount > 0 && g.teCount > 0 {
		return rejectCLAndTE
	}
	switch {
	case g.upgrade || g.connectReq:
		g.state = gPassthrough // the connection may change protocol
	case g.teChunked:
		g.state = gChunkSize
	case g.clValid && g.clValue > 0:
		g.state, g.remaining = gBody, g.clValue
	default:
		g.state = gRequestLine
	}
	return ""
}

// parseContentLength accepts 1..18 ASCII digits and nothing else: no sign,
// no list, no spaces inside.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line: hex digits, optionally followed
// by whitespace and ";extensions".
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// guardedConn runs a framingGuard over everything read from the connection.
type guardedConn struct {
	net.Conn
	guard    framingGuard
	err      error
	onReject func(reason string)
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return c.refuse(p)
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.guard.state != gPassthrough {
		if keep, reason := c.guard.feed(p[:n]); reason != "" {
			// net/http never sees the end of the refused header block, so
			// the request cannot reach a handler.
			c.err = &smugglingError{reason: reason}
			if c.onReject != nil {
				c.onReject(reason)
			}
			if keep > 0 {
				return keep, nil // earlier requests, the start of the refused one
			}
			return c.refuse(p)
		}
	}
	return n, err
}

// refuse answers a read once a violation is pending. net/http reads one
// byte at a time in the background while a handler runs (to notice a
// caller that hangs up); failing that read would cancel the request in
// progress, which came before the refused one and is legitimate. So a
// one-byte read waits, discarding input, until net/http ends it with a
// deadline; the next request read gets the error, and net/http answers
// 400 and closes the connection.
func (c *guardedConn) refuse(p []byte) (int, error) {
	if len(p) != 1 {
		return 0, c.err
	}
	var scratch [512]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			return 0, err
		}
	}
}

// guardedListener wraps every accepted connection in a guardedConn.
type guardedListener struct {
	net.Listener
	onReject func(reason string)
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, onReject: l.onReject}, nil
}
