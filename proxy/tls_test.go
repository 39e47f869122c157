package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func certPool(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	pemData, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatal("no certificate")
	}
	return pool
}

// TestTLSInbound: HTTP/2 by ALPN and HTTP/1.1 over TLS both forward; the
// smuggling guard also covers HTTP/1.1 over TLS.
func TestTLSInbound(t *testing.T) {
	backend := newEchoBackend(t)
	cert, key := writeTestCert(t, "meshproxy.test")
	cfg := inboundConfig("users", hostPort(t, backend.Server))
	cfg.Inbound.TLS = &ServerTLSConfig{CertFile: cert, KeyFile: key}
	p := startProxy(t, cfg)
	tlsCfg := &tls.Config{RootCAs: certPool(t, cert), ServerName: "meshproxy.test"}

	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: tlsCfg.Clone(), ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + p.InboundAddr() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := 1
		if h2 {
			want = 2
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != want {
			t.Errorf("h2=%v: status %d proto %d", h2, resp.StatusCode, resp.ProtoMajor)
		}
		if got := backend.last(t).Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q", got)
		}
	}
	before := backend.count()

	conn, err := tls.Dial("tcp", p.InboundAddr(), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	out, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(out), "HTTP/1.1 400 ") {
		t.Errorf("smuggling over TLS: %q", out)
	}
	if backend.count() != before {
		t.Errorf("smuggled request reached the backend")
	}
}

// TestUpstreamProtocols: protocol tls negotiates HTTP/2 with a TLS
// upstream; protocol h2c speaks cleartext HTTP/2 even to an HTTP/1.1 caller.
func TestUpstreamProtocols(t *testing.T) {
	seen := make(chan string, 4)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := r.Proto
		if r.TLS != nil {
			proto += " tls"
		}
		seen <- proto
		io.WriteString(w, "ok")
	})
	tlsBackend := httptest.NewUnstartedServer(handler)
	tlsBackend.EnableHTTP2 = true
	tlsBackend.StartTLS()
	defer tlsBackend.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsBackend.Certificate().Raw}), 0o600)

	h2cBackend := httptest.NewUnstartedServer(handler)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2cBackend.Config.Protocols = &protos
	h2cBackend.Start()
	defer h2cBackend.Close()

	p := startProxy(t, outboundConfig("web",
		UpstreamConfig{Name: "secure", Endpoints: []string{hostPort(t, tlsBackend)}, Protocol: ProtocolTLS, TLS: &ClientTLSConfig{CAFile: caFile}},
		UpstreamConfig{Name: "fast", Endpoints: []string{hostPort(t, h2cBackend)}, Protocol: ProtocolH2C},
	))
	c := client(t)
	for host, want := range map[string]string{"secure": "HTTP/2.0 tls", "fast": "HTTP/2.0"} {
		code, body := getBody(t, c, "http://"+p.OutboundAddr()+"/", host)
		if code != 200 || body != "ok" {
			t.Errorf("%s: %d %q", host, code, body)
			continue
		}
		if got := <-seen; got != want {
			t.Errorf("%s: upstream saw %q, want %q", host, got, want)
		}
	}
}
