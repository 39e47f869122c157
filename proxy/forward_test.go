package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshlens/meshlens/model"
)

// echoBackend answers with the request headers it saw (as X-Seen-*
// response headers are too lossy, it stores them for the test).
type echoBackend struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func newEchoBackend(t testing.TB) *echoBackend {
	b := &echoBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r2 := r.Clone(r.Context())
		b.mu.Lock()
		b.seen = append(b.seen, r2)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Keep-Alive", "timeout=5") // hop-by-hop: must not reach the caller
		_, _ = w.Write(body)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *echoBackend) last(t testing.TB) *http.Request {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("backend saw no request")
	}
	return b.seen[len(b.seen)-1]
}

func (b *echoBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestTwoProxiesKeepIdentity sends a request app → A (outbound) → B
// (inbound) → backend and checks request ID, trace and hop keys.
func TestTwoProxiesKeepIdentity(t *testing.T) {
	backend := newEchoBackend(t)
	bCfg := inboundConfig("users", hostPort(t, backend.Server))
	bCfg.Inbound.Routes = []string{"/users/{id}"}
	b := startProxy(t, bCfg)
	a := startProxy(t, outboundConfig("frontend", UpstreamConfig{
		Name: "users", Endpoints: []string{b.InboundAddr()}, Routes: []string{"/users/{id}"},
	}))

	const callerTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest("GET", "http://"+a.OutboundAddr()+"/users/42", nil)
	req.Host = "users"
	req.Header.Set("X-Request-Id", "req-abc-1")
	req.Header.Set("Traceparent", callerTrace)
	req.Header.Set("Tracestate", "vendor=1")
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "req-abc-1" {
		t.Errorf("caller got x-request-id %q, want req-abc-1", got)
	}
	if resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop Keep-Alive reached the caller")
	}

	seen := backend.last(t)
	if got := seen.Header.Get("X-Request-Id"); got != "req-abc-1" {
		t.Errorf("app got x-request-id %q", got)
	}
	if seen.Header.Get(callerHeader) != "" {
		t.Errorf("%s leaked to the app", callerHeader)
	}
	if got := seen.Header.Get("Tracestate"); got != "vendor=1" {
		t.Errorf("tracestate %q", got)
	}
	appTID, appParent, flags, ok := parseTraceparent(seen.Header.Get("Traceparent"))
	if !ok {
		t.Fatalf("app got invalid traceparent %q", seen.Header.Get("Traceparent"))
	}

	ha := a.sink.wait(t, 1)[0]
	hb := b.sink.wait(t, 1)[0]
	wantTID, callerSpan, _, _ := parseTraceparent(callerTrace)
	if ha.TraceID != wantTID || hb.TraceID != wantTID || appTID != wantTID {
		t.Errorf("trace IDs differ: caller %x A %x B %x app %x", wantTID, ha.TraceID, hb.TraceID, appTID)
	}
	if ha.ParentSpanID != callerSpan {
		t.Errorf("A's parent %x, want the caller's span %x", ha.ParentSpanID, callerSpan)
	}
	if hb.ParentSpanID != ha.SpanID {
		t.Errorf("B's parent %x, want A's span %x", hb.ParentSpanID, ha.SpanID)
	}
	if appParent != hb.SpanID {
		t.Errorf("app's parent %x, want B's span %x", appParent, hb.SpanID)
	}
	if ha.SpanID == hb.SpanID || ha.SpanID == callerSpan {
		t.Errorf("span IDs not new per hop")
	}
	if flags&1 != 1 || !ha.Sampled || !hb.Sampled {
		t.Errorf("sampled flag lost")
	}
	if ha.RequestID != "req-abc-1" || hb.RequestID != "req-abc-1" {
		t.Errorf("hop request IDs %q %q", ha.RequestID, hb.RequestID)
	}
	wantA := model.HopKey{Service: "frontend", Direction: model.Outbound, Peer: "users", Route: "/users/{id}", Method: "GET", StatusClass: "2xx"}
	wantB := model.HopKey{Service: "users", Direction: model.Inbound, Peer: "frontend", Route: "/users/{id}", Method: "GET", StatusClass: "2xx"}
	if ha.Key != wantA {
		t.Errorf("A key %+v, want %+v", ha.Key, wantA)
	}
	if hb.Key != wantB {
		t.Errorf("B key %+v, want %+v", hb.Key, wantB)
	}
	for _, h := range []struct {
		name string
		tot  time.Duration
		up   time.Duration
	}{{"A", ha.Total, ha.Upstream}, {"B", hb.Total, hb.Upstream}} {
		if h.up <= 0 || h.tot < h.up {
			t.Errorf("%s: total %v upstream %v", h.name, h.tot, h.up)
		}
	}
	if ha.Total < hb.Total {
		t.Errorf("A's total %v is shorter than B's %v", ha.Total, hb.Total)
	}
	if ha.UpstreamEndpoint != b.InboundAddr() || ha.Status != 200 || ha.GRPCStatus != -1 {
		t.Errorf("A hop: endpoint %q status %d grpc %d", ha.UpstreamEndpoint, ha.Status, ha.GRPCStatus)
	}
}

func TestRequestIDAndTraceStarted(t *testing.T) {
	backend := newEchoBackend(t)
	p := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	for _, tp := range []string{"", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-xyz"} {
		req, _ := http.NewRequest("GET", "http://"+p.InboundAddr()+"/x", nil)
		if tp != "" {
			req.Header.Set("Traceparent", tp)
		}
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rid := resp.Header.Get("X-Request-Id")
		if !uuidV4.MatchString(rid) {
			t.Errorf("generated request id %q is not a UUIDv4", rid)
		}
		seen := backend.last(t)
		if seen.Header.Get("X-Request-Id") != rid {
			t.Errorf("app got %q, caller %q", seen.Header.Get("X-Request-Id"), rid)
		}
		tid, parent, _, ok := parseTraceparent(seen.Header.Get("Traceparent"))
		if !ok {
			t.Fatalf("traceparent %q -> app got %q", tp, seen.Header.Get("Traceparent"))
		}
		if tp != "" && strings.Contains(seen.Header.Get("Traceparent"), "4bf92f3577b34da6a3ce929d0e0e4736") {
			t.Errorf("invalid traceparent %q was continued", tp)
		}
		_ = tid
		_ = parent
	}
	hops := p.sink.wait(t, 4)
	for _, h := range hops {
		if h.ParentSpanID != ([8]byte{}) {
			t.Errorf("new trace has a parent %x", h.ParentSpanID)
		}
	}
}

func TestB3Accepted(t *testing.T) {
	backend := newEchoBackend(t)
	p := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	cases := []struct {
		name string
		set  map[string]string
	}{
		{"single", map[string]string{"B3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"}},
		{"multi", map[string]string{"X-B3-TraceId": "80f198ee56343ba864fe8b2a57d3eff7", "X-B3-SpanId": "e457b5a2e4d86bd1", "X-B3-Sampled": "1"}},
	}
	for i, c := range cases {
		req, _ := http.NewRequest("GET", "http://"+p.InboundAddr()+"/x", nil)
		for k, v := range c.set {
			req.Header.Set(k, v)
		}
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := p.sink.wait(t, i+1)[i]
		if got := encodeHexString(h.TraceID[:]); got != "80f198ee56343ba864fe8b2a57d3eff7" {
			t.Errorf("%s: trace %s", c.name, got)
		}
		if got := encodeHexString(h.ParentSpanID[:]); got != "e457b5a2e4d86bd1" {
			t.Errorf("%s: parent %s", c.name, got)
		}
		seen := backend.last(t)
		if seen.Header.Get("X-B3-Spanid") != "" {
			t.Errorf("%s: stale X-B3-SpanId forwarded", c.name)
		}
		if want := "80f198ee56343ba864fe8b2a57d3eff7-" + encodeHexString(h.SpanID[:]) + "-1"; seen.Header.Get("B3") != want {
			t.Errorf("%s: b3 %q, want %q", c.name, seen.Header.Get("B3"), want)
		}
	}
}

func encodeHexString(b []byte) string {
	out := make([]byte, 2*len(b))
	encodeHex(out, b)
	return string(out)
}

func TestHopByHopAndForwardedHeaders(t *testing.T) {
	backend := newEchoBackend(t)
	p := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	req, _ := http.NewRequest("GET", "http://"+p.InboundAddr()+"/x", nil)
	req.Header.Set("Connection", "keep-alive, X-Private")
	req.Header.Set("X-Private", "secret")
	req.Header.Set("Proxy-Authorization", "Basic abc")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-End-To-End", "kept")
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := backend.last(t)
	for _, k := range []string{"X-Private", "Proxy-Authorization", "Keep-Alive"} {
		if v := seen.Header.Get(k); v != "" {
			t.Errorf("hop-by-hop %s=%q forwarded", k, v)
		}
	}
	if got := seen.Header.Get("Te"); got != "trailers" {
		t.Errorf("TE %q, want trailers", got)
	}
	if got := seen.Header.Get("X-End-To-End"); got != "kept" {
		t.Errorf("end-to-end header lost: %q", got)
	}
	if got := seen.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", got)
	}
	if got := seen.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto %q", got)
	}
}

// TestLargeBodiesStream checks that request and response bodies flow
// through while they are still being produced (never buffered whole), and
// arrive intact.
func TestLargeBodiesStream(t *testing.T) {
	firstChunk := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 4096)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Errorf("backend read: %v", err)
			return
		}
		close(firstChunk) // the client has not sent the rest yet
		h := sha256.New()
		h.Write(buf)
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Sha256", encodeHexString(h.Sum(nil)))
		w.Header().Set("X-Len", strconv.FormatInt(n+4096, 10))
		// Stream a response larger than any buffer.
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		for i := 0; i < 256; i++ { // 16 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer backend.Close()
	p := startProxy(t, inboundConfig("users", hostPort(t, backend)))

	pr, pw := io.Pipe()
	sum := sha256.New()
	go func() {
		block := bytes.Repeat([]byte("a"), 4096)
		pw.Write(block)
		sum.Write(block)
		select {
		case <-firstChunk:
		case <-time.After(5 * time.Second):
			pw.CloseWithError(io.ErrUnexpectedEOF)
			return
		}
		block = bytes.Repeat([]byte("b"), 1<<20)
		for i := 0; i < 32; i++ { // 32 MiB more
			pw.Write(block)
			sum.Write(block)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+p.InboundAddr()+"/upload", pr)
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	if n != 16<<20 {
		t.Errorf("response body %d bytes, want %d", n, 16<<20)
	}
	if got, want := resp.Header.Get("X-Sha256"), encodeHexString(sum.Sum(nil)); got != want {
		t.Errorf("request body hash %s, want %s (len %s)", got, want, resp.Header.Get("X-Len"))
	}
}

// TestExpectContinue: a backend that refuses without reading means the
// caller's body is never sent; one that reads gets it.
func TestExpectContinue(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer backend.Close()
	p := startProxy(t, inboundConfig("users", hostPort(t, backend)))
	tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for _, path := range []string{"/refuse", "/accept"} {
		body := &watchedReader{r: strings.NewReader("hello body")}
		req, _ := http.NewRequest("POST", "http://"+p.InboundAddr()+path, body)
		req.ContentLength = 10
		req.Header.Set("Expect", "100-continue")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s: took %v: 100 Continue not relayed", path, time.Since(start))
		}
		switch path {
		case "/refuse":
			if resp.StatusCode != 401 || body.wasRead() {
				t.Errorf("refuse: status %d, body sent %v", resp.StatusCode, body.wasRead())
			}
		case "/accept":
			if resp.StatusCode != 200 || string(got) != "hello body" {
				t.Errorf("accept: status %d body %q", resp.StatusCode, got)
			}
		}
	}
}

type watchedReader struct {
	mu   sync.Mutex
	r    io.Reader
	read bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	w.mu.Lock()
	w.read = true
	w.mu.Unlock()
	return w.r.Read(p)
}

func (w *watchedReader) wasRead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.read
}

// TestUpgradePassthrough relays a WebSocket-style Upgrade both ways.
func TestUpgradePassthrough(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	}))
	defer backend.Close()
	p := startProxy(t, inboundConfig("users", hostPort(t, backend)))
	conn, err := net.Dial("tcp", p.InboundAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: users\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	io.WriteString(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	h := p.sink.wait(t, 1)[0]
	if h.Status != 101 || h.Key.StatusClass != "1xx" {
		t.Errorf("hop status %d %s", h.Status, h.Key.StatusClass)
	}
}

// TestH2CTrailers: an HTTP/2 response's trailers reach an h2c caller.
func TestH2CTrailers(t *testing.T) {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		w.Write([]byte{0, 0, 0, 0, 0})
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "")
	}))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	backend.Config.Protocols = &protos
	backend.Start()
	defer backend.Close()
	p := startProxy(t, inboundConfig("users", hostPort(t, backend)))
	req, _ := http.NewRequest("POST", "http://"+p.InboundAddr()+"/pkg.Svc/Method", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("proto %d trailers %v", resp.ProtoMajor, resp.Trailer)
	}
	h := p.sink.wait(t, 1)[0]
	if h.GRPCStatus != 0 || h.Key.Route != "/pkg.Svc/Method" || h.Protocol != "2" || h.Key.StatusClass != "2xx" {
		t.Errorf("hop %+v", h)
	}
}

// TestUpstreamSelection: Host (with or without port, a DNS suffix, any
// case) picks the upstream; its endpoints take turns.
func TestUpstreamSelection(t *testing.T) {
	one, two := namedBackend(t, "one", nil), namedBackend(t, "two", nil)
	p := startProxy(t, outboundConfig("web", UpstreamConfig{Name: "users", Endpoints: []string{hostPort(t, one), hostPort(t, two)}}))
	c := client(t)
	got := map[string]int{}
	for _, host := range []string{"users", "users:8080", "users.prod.svc.cluster.local", "USERS"} {
		code, body := getBody(t, c, "http://"+p.OutboundAddr()+"/", host)
		if code != 200 {
			t.Fatalf("%s: %d %q", host, code, body)
		}
		got[body]++
	}
	if got["one"] != 2 || got["two"] != 2 {
		t.Errorf("round robin %v, want 2 each", got)
	}
}

// TestConcurrentChain: many concurrent requests over HTTP/1.1 and h2c
// through A → B all arrive, each recorded once per hop.
func TestConcurrentChain(t *testing.T) {
	backend := newEchoBackend(t)
	b := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	a := startProxy(t, outboundConfig("web", UpstreamConfig{Name: "users", Endpoints: []string{b.InboundAddr()}}))
	const workers, each = 8, 40
	clients := []*http.Client{client(t), h2cClient(t)}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%2]
			for i := 0; i < each; i++ {
				req, _ := http.NewRequest("POST", "http://"+a.OutboundAddr()+"/users/1", strings.NewReader("payload"))
				req.Host = "users"
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "payload" {
					errs <- &statusErr{resp.StatusCode, string(body)}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	a.sink.wait(t, workers*each)
	b.sink.wait(t, workers*each)
	if n := a.sink.count(); n != workers*each {
		t.Errorf("A recorded %d hops, want %d", n, workers*each)
	}
	ids := map[string]bool{}
	for _, h := range b.sink.wait(t, workers*each) {
		if ids[h.RequestID] {
			t.Fatalf("request id %s reused", h.RequestID)
		}
		ids[h.RequestID] = true
	}
}

type statusErr struct {
	code int
	body string
}

func (e *statusErr) Error() string { return "status " + strconv.Itoa(e.code) + ": " + e.body }
