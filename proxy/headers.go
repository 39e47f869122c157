package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Shared read-only header values: assigning these slices to a header map
// costs no allocation. Nothing in the proxy or net/http mutates header
// value slices in place.
var (
	teTrailers      = []string{"trailers"}
	connUpgrade     = []string{"Upgrade"}
	grpcContentType = []string{"application/grpc"}
	textPlain       = []string{"text/plain; charset=utf-8"}
	noSniff         = []string{"nosniff"}
	schemeHTTP      = []string{"http"}
	schemeHTTPS     = []string{"https"}
)

// hopHeaders are the hop-by-hop fields of RFC 9110 section 7.6.1 (and the
// legacy ones proxies still see).
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop deletes hop-by-hop fields, including those the Connection
// field names. "TE: trailers" is kept (gRPC needs it end to end).
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			switch {
			case tok == "", strings.EqualFold(tok, "close"), strings.EqualFold(tok, "keep-alive"), strings.EqualFold(tok, "upgrade"):
				// no field of that name, or one removed below anyway
			default:
				delete(h, http.CanonicalHeaderKey(tok))
			}
		}
	}
	keepTE := false
	for _, v := range h["Te"] {
		if containsToken(v, "trailers") {
			keepTE = true
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if keepTE {
		h["Te"] = teTrailers
	}
}

func containsToken(v, token string) bool {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(tok), token) {
			return true
		}
	}
	return false
}

// upgradeType returns the protocol an HTTP/1.1 request asks to switch to,
// or "".
func upgradeType(h http.Header) string {
	for _, v := range h["Connection"] {
		if containsToken(v, "upgrade") {
			return headerValue(h, "Upgrade")
		}
	}
	return ""
}

// clientIP is the host part of a RemoteAddr, without allocating.
func clientIP(remoteAddr string) string {
	i := strings.LastIndexByte(remoteAddr, ':')
	if i < 0 {
		return remoteAddr
	}
	host := remoteAddr[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

// appendForwarded appends the caller's address to X-Forwarded-For and this
// listener's scheme to X-Forwarded-Proto.
func appendForwarded(h http.Header, ip string, scheme []string) {
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
	} else {
		h["X-Forwarded-For"] = []string{ip}
	}
	if prior := h["X-Forwarded-Proto"]; len(prior) > 0 {
		h["X-Forwarded-Proto"] = []string{strings.Join(prior, ", ") + ", " + scheme[0]}
	} else {
		h["X-Forwarded-Proto"] = scheme
	}
}

// isGRPC reports whether r is a gRPC call (content-type application/grpc,
// application/grpc+proto, ...).
func isGRPC(r *http.Request) bool {
	ct := headerValue(r.Header, "Content-Type")
	return len(ct) >= 16 && ct[:16] == "application/grpc" && (len(ct) == 16 || ct[16] == '+' || ct[16] == ';')
}

// parseGRPCTimeout parses a grpc-timeout header: up to 8 digits and a unit
// (H, M, S, m, u, n).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// normMethod bounds the method label: the standard methods, else "_OTHER"
// (as OpenTelemetry's HTTP conventions do).
func normMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return m
	}
	return "_OTHER"
}

func protocolOf(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}

// grpcStatusValues are the grpc-status header values by code.
var grpcStatusValues = func() [17][]string {
	var v [17][]string
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// gRPC status codes the proxy itself produces.
const (
	grpcCancelled        = 1
	grpcDeadlineExceeded = 4
	grpcUnimplemented    = 12
	grpcUnavailable      = 14
)

func grpcStatusOf(h http.Header) (int, bool) {
	v := h["Grpc-Status"]
	if len(v) == 0 {
		return 0, false
	}
	if len(v[0]) == 1 && v[0][0] >= '0' && v[0][0] <= '9' {
		return int(v[0][0] - '0'), true
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
