package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
)

// interopCases are the standard gRPC interop test cases grpc-go's client
// implements (it has no *_compressed_* cases).
var interopCases = []string{
	"empty_unary", "large_unary", "client_streaming", "server_streaming",
	"ping_pong", "empty_stream", "timeout_on_sleeping_server",
	"cancel_after_begin", "cancel_after_first_response",
	"status_code_and_message", "special_status_message", "custom_metadata",
	"unimplemented_method", "unimplemented_service",
}

// startInteropServer runs the gRPC interop server on a free loopback port.
func startInteropServer(t *testing.T) string {
	t.Helper()
	bin := testenv.Tool(t, "interop-server")
	addr := closedAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-port", port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("interop server did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runInteropCases(t *testing.T, host, addr string, extra ...string) {
	t.Helper()
	bin := testenv.Tool(t, "interop-client")
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range interopCases {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		args := append([]string{"-server_host", host, "-server_port", port, "-test_case", tc}, extra...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: %v\n%s", tc, err, out)
		}
	}
}

// TestGRPCInterop runs every standard interop case through the proxy: h2c
// into the inbound listener, HTTP/2 over TLS into it, and through two
// proxies (A outbound → B inbound).
func TestGRPCInterop(t *testing.T) {
	server := startInteropServer(t)

	t.Run("h2c inbound", func(t *testing.T) {
		p := startProxy(t, inboundConfig("interop", server))
		runInteropCases(t, "127.0.0.1", p.InboundAddr())
		hops := p.sink.wait(t, len(interopCases))
		grpcSeen := false
		for _, h := range hops {
			if h.GRPCStatus >= 0 {
				grpcSeen = true
			}
		}
		if !grpcSeen {
			t.Errorf("no hop recorded a grpc-status")
		}
	})

	t.Run("tls inbound", func(t *testing.T) {
		cert, key := writeTestCert(t, "meshproxy.test")
		cfg := inboundConfig("interop", server)
		cfg.Inbound.TLS = &ServerTLSConfig{CertFile: cert, KeyFile: key}
		p := startProxy(t, cfg)
		runInteropCases(t, "127.0.0.1", p.InboundAddr(), "-use_tls", "-use_test_ca", "-ca_file", cert, "-server_host_override", "meshproxy.test")
	})

	t.Run("A outbound to B inbound", func(t *testing.T) {
		b := startProxy(t, inboundConfig("interop", server))
		a := startProxy(t, outboundConfig("client", UpstreamConfig{Name: "localhost", Endpoints: []string{b.InboundAddr()}}))
		runInteropCases(t, "localhost", a.OutboundAddr())
		hb := b.sink.wait(t, 1)[0]
		if hb.Key.Peer != "client" {
			t.Errorf("B's peer %q, want client", hb.Key.Peer)
		}
	})
}

// writeTestCert writes a self-signed certificate for name (usable as its
// own CA) and its key, returning the two file paths.
func writeTestCert(t testing.TB, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
