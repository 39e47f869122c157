package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// upstream is one service the proxy forwards to: the local app (inbound) or
// a configured upstream (outbound).
type upstream struct {
	name      string
	endpoints []string
	next      atomic.Uint32 // round-robin cursor
	protocol  string
	routes    *routeTable

	// http carries plain requests and bounds the wait for response headers
	// (Timeouts.Response, enforced by the transport itself so the hot path
	// needs no context or timer of its own). grpc carries gRPC calls with
	// no such bound: a stream may wait long for its first message, and
	// grpc-timeout is the caller's bound. upgrade carries Upgrade requests
	// (HTTP/1.1 or TLS).
	http, grpc, upgrade *http.Transport
	// def is the definition the transports were built from, so a reload
	// keeps an unchanged upstream's warm connection pool.
	def string
}

// pick returns the next endpoint, round robin.
func (u *upstream) pick() string {
	if len(u.endpoints) == 1 {
		return u.endpoints[0]
	}
	n := u.next.Add(1)
	return u.endpoints[int(n)%len(u.endpoints)]
}

// transport returns the transport and URL scheme for a request.
func (u *upstream) transport(grpc, upgrade bool) (*http.Transport, string) {
	scheme := "http"
	if u.protocol == ProtocolTLS {
		scheme = "https"
	}
	switch {
	case upgrade:
		return u.upgrade, scheme
	case grpc:
		return u.grpc, scheme
	}
	return u.http, scheme
}

func (u *upstream) closeIdle() {
	for _, t := range []*http.Transport{u.http, u.grpc, u.upgrade} {
		t.CloseIdleConnections()
	}
}

// newUpstream builds an upstream and its transports. "auto" speaks
// HTTP/1.1 for plain requests and cleartext HTTP/2 for gRPC (which needs
// HTTP/2); "h2c" speaks cleartext HTTP/2 for all but Upgrade requests;
// "tls" negotiates HTTP/2 or HTTP/1.1 by ALPN.
func newUpstream(name string, endpoints []string, protocol string, tlsc *ClientTLSConfig, routes []string, t TimeoutsConfig) (*upstream, error) {
	rt, err := newRouteTable(routes)
	if err != nil {
		return nil, err
	}
	u := &upstream{
		name:      name,
		endpoints: endpoints,
		protocol:  protocol,
		routes:    rt,
		def:       fmt.Sprintf("%v|%s|%+v|%v|%+v", endpoints, protocol, tlsc, routes, t),
	}
	dialer := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	newTransport := func(headerTimeout time.Duration, protos ...func(*http.Protocols, bool)) *http.Transport {
		tr := &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          0, // no global cap: the per-host cap sizes the pool
			MaxIdleConnsPerHost:   t.MaxIdlePerUpstream,
			IdleConnTimeout:       t.Idle,
			ResponseHeaderTimeout: headerTimeout,
			ExpectContinueTimeout: time.Second,
			TLSHandshakeTimeout:   t.Connect,
			DisableCompression:    true, // pass bodies through untouched
			WriteBufferSize:       16 << 10,
			ReadBufferSize:        16 << 10,
			HTTP2: &http.HTTP2Config{
				MaxConcurrentStreams: 1000,
				SendPingTimeout:      30 * time.Second,
				PingTimeout:          10 * time.Second,
			},
		}
		var p http.Protocols
		for _, set := range protos {
			set(&p, true)
		}
		tr.Protocols = &p
		return tr
	}
	h1 := (*http.Protocols).SetHTTP1
	h2 := (*http.Protocols).SetHTTP2
	h2c := (*http.Protocols).SetUnencryptedHTTP2
	switch protocol {
	case ProtocolTLS:
		cfg, err := tlsc.clientConfig()
		if err != nil {
			return nil, err
		}
		u.http, u.grpc, u.upgrade = newTransport(t.Response, h1, h2), newTransport(0, h1, h2), newTransport(0, h1)
		for _, tr := range []*http.Transport{u.http, u.grpc, u.upgrade} {
			tr.TLSClientConfig = cfg.Clone()
		}
	case ProtocolH2C:
		u.http, u.grpc, u.upgrade = newTransport(t.Response, h2c), newTransport(0, h2c), newTransport(0, h1)
	case ProtocolHTTP1:
		u.http, u.grpc = newTransport(t.Response, h1), newTransport(0, h1)
		u.upgrade = u.grpc
	default: // auto
		u.http, u.grpc = newTransport(t.Response, h1), newTransport(0, h2c)
		u.upgrade = newTransport(0, h1)
	}
	return u, nil
}

func (c *ClientTLSConfig) clientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c == nil {
		return cfg, nil
	}
	cfg.ServerName = c.ServerName
	cfg.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// routing is the reloadable part of the proxy: routes and upstreams.
type routing struct {
	cfg       Config
	app       *upstream            // inbound: the local app
	upstreams map[string]*upstream // outbound, by service name
}

// newRouting builds the routing for cfg, reusing the upstreams of prev
// whose definition did not change (so their idle connections stay warm).
func newRouting(cfg Config, prev *routing) (*routing, error) {
	rt := &routing{cfg: cfg, upstreams: make(map[string]*upstream, len(cfg.Upstreams))}
	reuse := func(key string, u *upstream) *upstream {
		if prev == nil {
			return u
		}
		var old *upstream
		if key == "" {
			old = prev.app
		} else {
			old = prev.upstreams[key]
		}
		if old != nil && old.def == u.def {
			return old
		}
		return u
	}
	if in := cfg.Inbound; in != nil {
		u, err := newUpstream(cfg.Service, []string{in.App}, in.AppProtocol, in.AppTLS, in.Routes, cfg.Timeouts)
		if err != nil {
			return nil, fmt.Errorf("inbound: %w", err)
		}
		rt.app = reuse("", u)
	}
	for i, uc := range cfg.Upstreams {
		u, err := newUpstream(uc.Name, uc.Endpoints, uc.Protocol, uc.TLS, uc.Routes, cfg.Timeouts)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%d].%w", i, err)
		}
		rt.upstreams[uc.Name] = reuse(uc.Name, u)
	}
	return rt, nil
}

// retired returns the upstreams of r that next no longer uses.
func (r *routing) retired(next *routing) []*upstream {
	var out []*upstream
	if r.app != nil && (next.app != r.app) {
		out = append(out, r.app)
	}
	for name, u := range r.upstreams {
		if next.upstreams[name] != u {
			out = append(out, u)
		}
	}
	return out
}

// lookup finds the upstream for a Host or :authority value: the name
// without port, or its first DNS label ("orders.prod.svc" → "orders").
func (r *routing) lookup(host string) *upstream {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if u := r.upstreams[host]; u != nil {
		return u
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if u := r.upstreams[host[:i]]; u != nil {
			return u
		}
	}
	if hasUpper(host) { // host names are case-insensitive
		return r.lookup(strings.ToLower(host))
	}
	return nil
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
