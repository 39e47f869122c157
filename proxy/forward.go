package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/proxy/telemetry"
)

// callerHeader names the calling service; the outbound side sets it and the
// inbound side reads (and removes) it to know its hop's peer.
const callerHeader = "X-Meshlens-Caller"

const unknownPeer = "unknown"

// exchange is the per-request state, pooled: the hop reported to the sink
// and the timer that bounds the wait for response headers.
type exchange struct {
	hop      telemetry.Hop
	timedOut atomic.Bool
	cancel   context.CancelFunc
	timer    *time.Timer
}

func (e *exchange) fire() {
	e.timedOut.Store(true)
	e.cancel()
}

var exchangePool = sync.Pool{New: func() any {
	e := new(exchange)
	e.timer = time.AfterFunc(time.Hour, e.fire)
	e.timer.Stop()
	return e
}}

// stopTimer stops the header timer; it reports false when the timer has
// fired (or is firing), in which case the exchange must not be reused.
func (e *exchange) stopTimer() bool { return e.timer.Stop() }

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forwarder is the handler of one listener (inbound or outbound).
type forwarder struct {
	p      *Proxy
	dir    model.Direction
	di     int
	scheme []string // this listener's scheme, for X-Forwarded-Proto
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p := f.p
	m := p.metrics
	m.requests[f.di].Inc()
	m.inFlight[f.di].Inc()

	ex := exchangePool.Get().(*exchange)
	reusable := true
	h := &ex.hop
	h.Start = start
	h.GRPCStatus = -1
	h.Key.Service = p.service
	h.Key.Direction = f.dir
	h.Key.Method = normMethod(r.Method)
	h.Method = r.Method
	h.Path = r.URL.Path
	h.ServerAddress = r.Host
	h.PeerAddress = clientIP(r.RemoteAddr)
	h.UserAgent = headerValue(r.Header, "User-Agent")
	h.Protocol = protocolOf(r)

	rt := p.routing.Load()
	grpc := isGRPC(r)
	var up *upstream
	if f.dir == model.Inbound {
		up = rt.app
		h.Key.Peer = unknownPeer
		if c := headerValue(r.Header, callerHeader); c != "" && len(c) <= 63 && validName(c) {
			h.Key.Peer = c
		}
		delete(r.Header, callerHeader)
	} else {
		up = rt.lookup(r.Host)
		h.Key.Peer = unknownPeer
		if up != nil {
			h.Key.Peer = up.name
		}
	}

	// Request identity: keep or generate x-request-id, continue the trace.
	rid := r.Header["X-Request-Id"]
	if len(rid) == 0 || !validRequestID(rid[0]) {
		rid = []string{newRequestID()}
	} else if len(rid) > 1 {
		rid = rid[:1:1]
	}
	r.Header["X-Request-Id"] = rid
	w.Header()["X-Request-Id"] = rid
	h.RequestID = rid[0]
	tc := continueTrace(r.Header, p.sampleRatio)
	h.TraceID, h.SpanID, h.ParentSpanID, h.Sampled, h.TraceState = tc.traceID, tc.spanID, tc.parentID, tc.sampled, tc.state

	var routes *routeTable
	if up != nil {
		routes = up.routes
	}
	h.Key.Route = routes.Match(r.URL.Path, grpc)

	switch {
	case up == nil:
		m.upstreamError(f.dir, errKindNoUpstream)
		h.Err = "no upstream for host"
		writeError(w, h, grpc, http.StatusNotFound, grpcUnimplemented, "meshproxy: no upstream service for this host")
		f.finish(ex, reusable, grpc)
		return
	case r.Method == http.MethodConnect:
		h.Err = "CONNECT refused"
		writeError(w, h, grpc, http.StatusMethodNotAllowed, grpcUnimplemented, "meshproxy: CONNECT is not supported")
		f.finish(ex, reusable, grpc)
		return
	}

	// The outgoing request: same method, path, body and end-to-end headers.
	upType := ""
	if r.ProtoMajor == 1 {
		upType = upgradeType(r.Header)
	}
	removeHopByHop(r.Header)
	if upType != "" {
		r.Header["Connection"] = connUpgrade
		r.Header["Upgrade"] = []string{upType}
	}
	r.Header["Traceparent"] = []string{formatTraceparent(tc.traceID, tc.spanID, tc.sampled)}
	if tc.b3 {
		for _, k := range [...]string{"X-B3-Traceid", "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags"} {
			delete(r.Header, k)
		}
		r.Header["B3"] = []string{formatB3(tc.traceID, tc.spanID, tc.sampled)}
	}
	appendForwarded(r.Header, h.PeerAddress, f.scheme)
	if f.dir == model.Outbound {
		r.Header[callerHeader] = p.callerValue
	}

	tr, scheme := up.transport(grpc, upType != "")
	endpoint := up.pick()
	h.UpstreamEndpoint = endpoint

	// The response-header bound of plain requests is the transport's; a
	// gRPC call with grpc-timeout gets a context deadline (and its own
	// DEADLINE_EXCEEDED answer) instead.
	out := new(http.Request)
	*out = *r
	var cancel context.CancelFunc = noCancel
	armed := false
	if grpc {
		if d, ok := parseGRPCTimeout(headerValue(r.Header, "Grpc-Timeout")); ok {
			var ctx context.Context
			ctx, cancel = context.WithCancel(r.Context())
			ex.cancel = cancel
			ex.timedOut.Store(false)
			ex.timer.Reset(d)
			out = out.WithContext(ctx)
			armed = true
		}
	}
	u := *r.URL
	u.Scheme, u.Host = scheme, endpoint
	out.URL = &u
	out.RequestURI = ""
	out.Close = false
	switch {
	case r.ContentLength == 0:
		out.Body = nil // no body: don't make the transport send a chunked empty one
	case r.ContentLength > 0 && r.ContentLength <= smallBodyMax && !grpc && upType == "" && headerValue(r.Header, "Expect") == "":
		// A small body already on its way is read first and handed over
		// in memory: the HTTP/1.1 transport then writes headers and body
		// in one write instead of flushing the headers on their own.
		body, ok := readSmallBody(r)
		if !ok {
			m.clientAborts[f.di].Inc()
			h.Err = errClientAborted
			f.finish(ex, reusable, grpc)
			return
		}
		out.Body = body
	}

	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// Let an HTTP/1.1 request body keep streaming upstream after the
		// response has started (bidirectional streams); HTTP/2 always can.
		if fd, ok := w.(interface{ EnableFullDuplex() error }); ok {
			_ = fd.EnableFullDuplex()
		}
	}

	upStart := time.Now()
	resp, err := tr.RoundTrip(out)
	if armed && !ex.stopTimer() {
		reusable = false
	}
	if err != nil {
		cancel()
		f.failed(w, r, ex, grpc, err)
		f.finish(ex, reusable, grpc)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		f.relayUpgrade(w, r, resp, ex, upStart)
		cancel()
		f.finish(ex, reusable, grpc)
		return
	}
	abort := f.copyResponse(w, r, resp, ex, grpc, upStart)
	cancel()
	f.finish(ex, reusable, grpc)
	if abort {
		// The upstream broke off mid-body: make the caller see a broken
		// response rather than a short one that looks complete.
		panic(http.ErrAbortHandler)
	}
}

// failed answers a request the upstream did not answer: 504 on timeout, 502
// otherwise (gRPC: trailers-only DEADLINE_EXCEEDED / UNAVAILABLE).
func (f *forwarder) failed(w http.ResponseWriter, r *http.Request, ex *exchange, grpc bool, err error) {
	h := &ex.hop
	m := f.p.metrics
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	var ne net.Error
	if ex.timedOut.Load() || (!dial && errors.As(err, &ne) && ne.Timeout() && r.Context().Err() == nil) {
		m.upstreamError(f.dir, errKindTimeout)
		h.Err = "upstream timeout"
		writeError(w, h, grpc, http.StatusGatewayTimeout, grpcDeadlineExceeded, "meshproxy: upstream timeout")
		return
	}
	if r.Context().Err() != nil {
		m.clientAborts[f.di].Inc()
		h.Err = errClientAborted // no response was written: Status stays 0
		return
	}
	if dial {
		m.upstreamError(f.dir, errKindConnect)
		h.Err = "upstream connect failed"
		writeError(w, h, grpc, http.StatusBadGateway, grpcUnavailable, "meshproxy: upstream unavailable (connect failed)")
		return
	}
	m.upstreamError(f.dir, errKindReset)
	h.Err = "upstream connection failed"
	writeError(w, h, grpc, http.StatusBadGateway, grpcUnavailable, "meshproxy: upstream unavailable (connection failed)")
}

func noCancel() {}

// smallBodyMax is the largest request body read before forwarding (see
// readSmallBody); larger ones stream.
const smallBodyMax = 16 << 10

// readSmallBody reads a request body of known small length. ok is false
// when the caller sent less than it announced.
func readSmallBody(r *http.Request) (io.ReadCloser, bool) {
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return nil, false
	}
	// Reach EOF so that net/http starts watching for a caller hanging up.
	var one [1]byte
	_, _ = r.Body.Read(one[:])
	return io.NopCloser(bytes.NewReader(buf)), true
}

// errClientAborted is the hop error of a caller that left before its
// response was complete. Such a hop is classed "4xx" (nginx's 499: not the
// server's fault) even when no status was written.
const errClientAborted = "client aborted"

// writeError answers with the proxy's own error and records it on the hop.
func writeError(w http.ResponseWriter, h *telemetry.Hop, grpc bool, status, grpcCode int, msg string) {
	hdr := w.Header()
	if grpc {
		h.Status, h.GRPCStatus = http.StatusOK, grpcCode
		// Trailers-only response: HTTP 200, the status in the headers.
		hdr["Content-Type"] = grpcContentType
		hdr["Grpc-Status"] = grpcStatusValues[grpcCode]
		hdr["Grpc-Message"] = []string{msg}
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Status = status
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
	_, _ = io.WriteString(w, "\n")
}

// finish completes the hop and hands it to the sink.
func (f *forwarder) finish(ex *exchange, reusable, grpc bool) {
	h := &ex.hop
	h.Total = time.Since(h.Start)
	switch {
	case h.Status == 0 && h.Err == errClientAborted:
		h.Key.StatusClass = "4xx"
	case grpc && h.GRPCStatus >= 0:
		h.Key.StatusClass = model.GRPCStatusClass(h.GRPCStatus)
	default:
		h.Key.StatusClass = model.StatusClass(h.Status)
	}
	f.p.sink.Finish(h)
	f.p.metrics.inFlight[f.di].Dec()
	*h = telemetry.Hop{}
	ex.cancel = nil
	if reusable {
		exchangePool.Put(ex)
	}
}
