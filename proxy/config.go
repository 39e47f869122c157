// Package proxy is meshproxy's data plane: the inbound and outbound
// listeners, forwarding (HTTP/1.1, HTTP/2 over TLS, h2c, gRPC), request
// identity and trace context, the admin listener, reload and shutdown.
package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meshlens/meshlens/proxy/telemetry"
)

// Config is meshproxy's configuration file.
type Config struct {
	// Service is the name of the service this sidecar sits beside.
	Service string `yaml:"service" json:"service"`
	// Admin is the admin listener's address (/ready, /live, /metrics,
	// /stats, /config). Empty: no admin listener.
	Admin string `yaml:"admin" json:"admin"`
	// Inbound listens for callers of Service and forwards to the local app.
	Inbound *InboundConfig `yaml:"inbound" json:"inbound,omitempty"`
	// Outbound listens for the local app's calls; the request's Host or
	// :authority picks the upstream service.
	Outbound *OutboundConfig `yaml:"outbound" json:"outbound,omitempty"`
	// Upstreams are the services the outbound listener can reach.
	Upstreams []UpstreamConfig `yaml:"upstreams" json:"upstreams,omitempty"`
	// Timeouts bound connection set-up, waiting for upstream response
	// headers and draining at shutdown.
	Timeouts TimeoutsConfig `yaml:"timeouts" json:"timeouts"`
	// Telemetry configures histograms and spans (proxy/telemetry).
	Telemetry telemetry.Config `yaml:"telemetry" json:"telemetry"`
}

// InboundConfig is the listener for callers of this service.
type InboundConfig struct {
	Listen string `yaml:"listen" json:"listen"`
	// App is the local application's HOST:PORT.
	App string `yaml:"app" json:"app"`
	// AppProtocol is how the app is reached: auto (cleartext HTTP/2 for
	// gRPC calls, HTTP/1.1 otherwise), http1, h2c or tls.
	AppProtocol string `yaml:"app_protocol" json:"app_protocol"`
	// AppTLS configures TLS to the app when AppProtocol is tls.
	AppTLS *ClientTLSConfig `yaml:"app_tls,omitempty" json:"app_tls,omitempty"`
	// TLS, when set, serves HTTP/1.1 and HTTP/2 (ALPN) over TLS instead of
	// cleartext HTTP/1.1 and h2c.
	TLS *ServerTLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Routes are this service's route templates ("/users/{id}").
	Routes []string `yaml:"routes,omitempty" json:"routes,omitempty"`
}

// OutboundConfig is the listener for the local app's calls.
type OutboundConfig struct {
	Listen string `yaml:"listen" json:"listen"`
}

// UpstreamConfig is a service reachable through the outbound listener.
type UpstreamConfig struct {
	// Name is the service name; a request whose Host (without port) is
	// Name, or starts with Name followed by a dot, goes here.
	Name      string   `yaml:"name" json:"name"`
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Protocol: auto, http1, h2c or tls (see InboundConfig.AppProtocol).
	Protocol string           `yaml:"protocol" json:"protocol"`
	TLS      *ClientTLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Routes are the upstream service's route templates.
	Routes []string `yaml:"routes,omitempty" json:"routes,omitempty"`
}

// ServerTLSConfig is a listener's certificate.
type ServerTLSConfig struct {
	CertFile string `yaml:"cert_file" json:"cert_file"`
	KeyFile  string `yaml:"key_file" json:"key_file"`
}

// ClientTLSConfig is how the proxy verifies an upstream's certificate.
type ClientTLSConfig struct {
	CAFile             string `yaml:"ca_file" json:"ca_file,omitempty"`
	ServerName         string `yaml:"server_name" json:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
	// CertFile and KeyFile are an optional client certificate (mTLS).
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file" json:"key_file,omitempty"`
}

// TimeoutsConfig bounds the phases of a request and of shutdown.
type TimeoutsConfig struct {
	// Connect bounds dialling an upstream (default 2s).
	Connect time.Duration `yaml:"connect" json:"connect"`
	// Response bounds the wait for the upstream's response headers
	// (default 30s); past it the caller gets 504 (gRPC: DEADLINE_EXCEEDED).
	Response time.Duration `yaml:"response" json:"response"`
	// Idle closes idle upstream connections (default 90s).
	Idle time.Duration `yaml:"idle" json:"idle"`
	// Drain bounds how long shutdown waits for in-flight requests
	// (default 20s).
	Drain time.Duration `yaml:"drain" json:"drain"`
	// MaxIdlePerUpstream is the idle-connection pool per upstream endpoint
	// (default 1024): sized so that steady load never re-dials.
	MaxIdlePerUpstream int `yaml:"max_idle_per_upstream" json:"max_idle_per_upstream"`
}

// Protocols an upstream or the app can be reached with.
const (
	ProtocolAuto  = "auto"
	ProtocolHTTP1 = "http1"
	ProtocolH2C   = "h2c"
	ProtocolTLS   = "tls"
)

// Defaults returns c with zero fields set to their defaults.
func (c Config) Defaults() Config {
	if c.Timeouts.Connect == 0 {
		c.Timeouts.Connect = 2 * time.Second
	}
	if c.Timeouts.Response == 0 {
		c.Timeouts.Response = 30 * time.Second
	}
	if c.Timeouts.Idle == 0 {
		c.Timeouts.Idle = 90 * time.Second
	}
	if c.Timeouts.Drain == 0 {
		c.Timeouts.Drain = 20 * time.Second
	}
	if c.Timeouts.MaxIdlePerUpstream == 0 {
		c.Timeouts.MaxIdlePerUpstream = 1024
	}
	if c.Inbound != nil {
		in := *c.Inbound
		if in.AppProtocol == "" {
			in.AppProtocol = ProtocolAuto
		}
		c.Inbound = &in
	}
	if len(c.Upstreams) > 0 {
		ups := make([]UpstreamConfig, len(c.Upstreams))
		copy(ups, c.Upstreams)
		for i := range ups {
			if ups[i].Protocol == "" {
				ups[i].Protocol = ProtocolAuto
			}
		}
		c.Upstreams = ups
	}
	c.Telemetry = c.Telemetry.Defaults()
	return c
}

// Validate checks c (after Defaults). The error names the field path.
func (c Config) Validate() error {
	if c.Service == "" {
		return errors.New("service: must not be empty")
	}
	if !validName(c.Service) {
		return fmt.Errorf("service: %q must be letters, digits, '-', '_' or '.'", c.Service)
	}
	if c.Inbound == nil && c.Outbound == nil {
		return errors.New("inbound, outbound: at least one listener is required")
	}
	if c.Admin != "" {
		if err := validAddr(c.Admin); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	if in := c.Inbound; in != nil {
		if err := validAddr(in.Listen); err != nil {
			return fmt.Errorf("inbound.listen: %w", err)
		}
		if err := validAddr(in.App); err != nil {
			return fmt.Errorf("inbound.app: %w", err)
		}
		if err := validProtocol(in.AppProtocol); err != nil {
			return fmt.Errorf("inbound.app_protocol: %w", err)
		}
		if in.AppTLS != nil && in.AppProtocol != ProtocolTLS {
			return fmt.Errorf("inbound.app_tls: set but app_protocol is %q, not %q", in.AppProtocol, ProtocolTLS)
		}
		if err := in.AppTLS.validate(); err != nil {
			return fmt.Errorf("inbound.app_tls.%w", err)
		}
		if t := in.TLS; t != nil {
			if t.CertFile == "" {
				return errors.New("inbound.tls.cert_file: must not be empty")
			}
			if t.KeyFile == "" {
				return errors.New("inbound.tls.key_file: must not be empty")
			}
		}
		for i, r := range in.Routes {
			if err := validRoute(r); err != nil {
				return fmt.Errorf("inbound.routes[%d]: %w", i, err)
			}
		}
	}
	if out := c.Outbound; out != nil {
		if err := validAddr(out.Listen); err != nil {
			return fmt.Errorf("outbound.listen: %w", err)
		}
	}
	if len(c.Upstreams) > 0 && c.Outbound == nil {
		return errors.New("upstreams: set but there is no outbound listener")
	}
	seen := make(map[string]int, len(c.Upstreams))
	for i, u := range c.Upstreams {
		if err := u.validate(); err != nil {
			return fmt.Errorf("upstreams[%d].%w", i, err)
		}
		if j, dup := seen[u.Name]; dup {
			return fmt.Errorf("upstreams[%d].name: %q already defined by upstreams[%d]", i, u.Name, j)
		}
		seen[u.Name] = i
	}
	t := c.Timeouts
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect", t.Connect}, {"response", t.Response}, {"idle", t.Idle}, {"drain", t.Drain}} {
		if d.v <= 0 {
			return fmt.Errorf("timeouts.%s: must be > 0, got %v", d.name, d.v)
		}
	}
	if t.MaxIdlePerUpstream < 1 {
		return fmt.Errorf("timeouts.max_idle_per_upstream: must be > 0, got %d", t.MaxIdlePerUpstream)
	}
	return c.Telemetry.Validate()
}

func (u UpstreamConfig) validate() error {
	if u.Name == "" {
		return errors.New("name: must not be empty")
	}
	if !validName(u.Name) {
		return fmt.Errorf("name: %q must be letters, digits, '-', '_' or '.'", u.Name)
	}
	if len(u.Endpoints) == 0 {
		return errors.New("endpoints: at least one HOST:PORT is required")
	}
	for i, e := range u.Endpoints {
		if err := validAddr(e); err != nil {
			return fmt.Errorf("endpoints[%d]: %w", i, err)
		}
	}
	if err := validProtocol(u.Protocol); err != nil {
		return fmt.Errorf("protocol: %w", err)
	}
	if u.TLS != nil && u.Protocol != ProtocolTLS {
		return fmt.Errorf("tls: set but protocol is %q, not %q", u.Protocol, ProtocolTLS)
	}
	if err := u.TLS.validate(); err != nil {
		return fmt.Errorf("tls.%w", err)
	}
	for i, r := range u.Routes {
		if err := validRoute(r); err != nil {
			return fmt.Errorf("routes[%d]: %w", i, err)
		}
	}
	return nil
}

func (t *ClientTLSConfig) validate() error {
	if t == nil {
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("cert_file: cert_file and key_file go together")
	}
	return nil
}

func validProtocol(p string) error {
	switch p {
	case ProtocolAuto, ProtocolHTTP1, ProtocolH2C, ProtocolTLS:
		return nil
	}
	return fmt.Errorf("%q is not one of auto, http1, h2c, tls", p)
}

func validAddr(a string) error {
	if a == "" {
		return errors.New("must not be empty (HOST:PORT)")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", a)
	}
	if strings.ContainsAny(host, " /?#@") {
		return fmt.Errorf("%q has an invalid host", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port", a)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ParseConfig decodes a YAML config, rejecting unknown fields, then applies
// Defaults and Validate.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse config: %s", oneLine(err.Error()))
	}
	// A second document is a mistake, not something to ignore.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Config{}, errors.New("parse config: more than one YAML document")
	}
	c = c.Defaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads and parses the config file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.TrimPrefix(s, "yaml: ")
}

// Redacted returns a copy of c safe to show: tokens and key file paths are
// replaced by "REDACTED".
func (c Config) Redacted() Config {
	const r = "REDACTED"
	if c.Telemetry.Token != "" {
		c.Telemetry.Token = r
	}
	if c.Inbound != nil {
		in := *c.Inbound
		if in.TLS != nil {
			t := *in.TLS
			t.KeyFile = r
			in.TLS = &t
		}
		if in.AppTLS != nil {
			in.AppTLS = in.AppTLS.redacted()
		}
		c.Inbound = &in
	}
	ups := make([]UpstreamConfig, len(c.Upstreams))
	copy(ups, c.Upstreams)
	for i := range ups {
		ups[i].TLS = ups[i].TLS.redacted()
	}
	c.Upstreams = ups
	return c
}

func (t *ClientTLSConfig) redacted() *ClientTLSConfig {
	if t == nil || t.KeyFile == "" {
		return t
	}
	c := *t
	c.KeyFile = "REDACTED"
	return &c
}
