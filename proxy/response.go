package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// copyResponse streams resp to w: headers, body (pooled 32 KiB buffer,
// flushed as it arrives when the response is a stream) and trailers. It
// reports whether the handler must abort the caller's response because the
// upstream broke off mid-body.
func (f *forwarder) copyResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, ex *exchange, grpc bool, upStart time.Time) (abort bool) {
	h := &ex.hop
	if grpc && resp.StatusCode != http.StatusOK {
		if _, ok := grpcStatusOf(resp.Header); !ok {
			// An upstream that is not speaking gRPC (an HTTP error page from
			// something in between): answer with the gRPC status the spec
			// maps the HTTP status to, never a bare HTTP error.
			code := grpcCodeForHTTP(resp.StatusCode)
			resp.Body.Close()
			h.Upstream = time.Since(upStart)
			writeError(w, h, true, 0, code, "meshproxy: upstream answered HTTP "+strconv.Itoa(resp.StatusCode))
			return false
		}
	}
	removeHopByHop(resp.Header)
	dst := w.Header()
	rid := dst["X-Request-Id"]
	for k, vv := range resp.Header {
		dst[k] = vv
	}
	dst["X-Request-Id"] = rid
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		dst["Trailer"] = []string{strings.Join(names, ", ")}
	}
	if grpc {
		if code, ok := grpcStatusOf(resp.Header); ok {
			h.GRPCStatus = code // trailers-only response
		}
	}
	h.Status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)

	fl, _ := w.(http.Flusher)
	streaming := grpc || resp.ContentLength < 0
	var bodyErr, writeErr error
	wroteBody := false
	// A gRPC trailers-only answer (status in the headers) and any response
	// without a body end right here; a body-less h2 response from Go's
	// transport is not http.NoBody, so look at what it said.
	trailersOnly := grpc && h.GRPCStatus >= 0
	if resp.Body != http.NoBody && !trailersOnly && resp.ContentLength != 0 {
		if fl != nil && (grpc || strings.HasPrefix(headerValue(resp.Header, "Content-Type"), "text/event-stream")) {
			fl.Flush() // a stream's headers go out before its first message
		}
		bp := copyBufPool.Get().(*[]byte)
		buf := *bp
		for {
			n, rerr := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					writeErr = werr
					break
				}
				wroteBody = true
				if streaming && fl != nil {
					fl.Flush()
				}
			}
			if rerr != nil {
				if rerr != io.EOF {
					bodyErr = rerr
				}
				break
			}
		}
		copyBufPool.Put(bp)
	}
	h.Upstream = time.Since(upStart)
	resp.Body.Close()

	switch {
	case writeErr != nil || (bodyErr != nil && r.Context().Err() != nil):
		f.p.metrics.clientAborts[f.di].Inc()
		h.Err = errClientAborted
		if grpc && h.GRPCStatus < 0 {
			h.GRPCStatus = grpcCancelled // what the caller's side records
		}
		return false
	case bodyErr != nil:
		f.p.metrics.upstreamError(f.dir, errKindBody)
		h.Err = "upstream response body broke off"
		if grpc {
			// Keep the gRPC contract: end the stream with a status.
			dst[http.TrailerPrefix+"Grpc-Status"] = grpcStatusValues[grpcUnavailable]
			dst[http.TrailerPrefix+"Grpc-Message"] = []string{"meshproxy: upstream stream broke off"}
			h.GRPCStatus = grpcUnavailable
			return false
		}
		return true
	}

	if len(resp.Trailer) > 0 {
		if len(resp.Trailer) == announced {
			for k, vv := range resp.Trailer {
				dst[k] = vv
			}
		} else {
			for k, vv := range resp.Trailer {
				dst[http.TrailerPrefix+k] = vv
			}
		}
		if grpc {
			if code, ok := grpcStatusOf(resp.Trailer); ok {
				h.GRPCStatus = code
			}
		}
	}
	// Push the last bytes out now, so Total ends when the caller has them
	// (an HTTP/1.1 chunked response is ended by net/http in one write).
	// Never flush a response without body bytes: on HTTP/2 that would send
	// its HEADERS without END_STREAM and break gRPC trailers-only answers.
	if fl != nil && wroteBody && (r.ProtoMajor == 2 || resp.ContentLength >= 0) && len(resp.Trailer) == 0 {
		fl.Flush()
	}
	return false
}

// relayUpgrade passes a 101 Switching Protocols response (WebSocket and
// other Upgrade protocols) to the caller and relays bytes both ways until
// either side closes.
func (f *forwarder) relayUpgrade(w http.ResponseWriter, r *http.Request, resp *http.Response, ex *exchange, upStart time.Time) {
	h := &ex.hop
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		f.p.metrics.upstreamError(f.dir, errKindReset)
		h.Err = "upstream switched protocols without a usable connection"
		writeError(w, h, false, http.StatusBadGateway, 0, "meshproxy: upstream upgrade failed")
		return
	}
	defer back.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		h.Err = "upgrade over a connection that cannot be hijacked"
		writeError(w, h, false, http.StatusBadGateway, 0, "meshproxy: upgrade not possible on this connection")
		return
	}
	upType := headerValue(resp.Header, "Upgrade")
	removeHopByHop(resp.Header)
	resp.Header["Connection"] = connUpgrade
	resp.Header["Upgrade"] = []string{upType}
	resp.Header["X-Request-Id"] = w.Header()["X-Request-Id"]
	conn, brw, err := hj.Hijack()
	if err != nil {
		h.Err = "hijack failed"
		h.Status = http.StatusBadGateway
		return
	}
	defer conn.Close()
	h.Status = resp.StatusCode
	untrack := f.p.trackHijacked(conn)
	defer untrack()

	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		h.Err = errClientAborted
		return
	}
	if err := brw.Flush(); err != nil {
		h.Err = errClientAborted
		return
	}
	relay(conn, brw.Reader, back)
	h.Upstream = time.Since(upStart)
}

// relay copies both ways until one side ends, then closes both.
func relay(client net.Conn, clientBuf *bufio.Reader, back io.ReadWriteCloser) {
	var wg sync.WaitGroup
	done := make(chan struct{}, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyPooled(back, clientBuf)
		done <- struct{}{}
	}()
	copyPooled(client, back)
	done <- struct{}{}
	<-done
	client.Close()
	back.Close()
	wg.Wait()
}

func copyPooled(dst io.Writer, src io.Reader) {
	bp := copyBufPool.Get().(*[]byte)
	_, _ = io.CopyBuffer(dst, src, *bp)
	copyBufPool.Put(bp)
}

// grpcCodeForHTTP maps an HTTP status to a gRPC code as gRPC's
// "HTTP to gRPC status code mapping" document does.
func grpcCodeForHTTP(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 13 // INTERNAL
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return 2 // UNKNOWN
}
