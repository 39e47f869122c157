package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodConfig = `
service: users
admin: 127.0.0.1:9901
inbound:
  listen: 127.0.0.1:15006
  app: 127.0.0.1:8080
  routes: ["/users/{id}", "/users"]
outbound:
  listen: 127.0.0.1:15001
upstreams:
  - name: orders
    endpoints: [127.0.0.1:9000, 127.0.0.1:9001]
    routes: ["/orders/{id}"]
  - name: billing
    endpoints: [billing.internal:443]
    protocol: tls
    tls:
      ca_file: /etc/ca.pem
      cert_file: /etc/client.pem
      key_file: /etc/client-key.pem
timeouts:
  response: 5s
telemetry:
  collector: http://127.0.0.1:4318
  token: s3cret
  flush_interval: 2s
`

func TestParseConfigGood(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeouts.Response != 5*time.Second || c.Timeouts.Connect != 2*time.Second {
		t.Errorf("timeouts %+v", c.Timeouts)
	}
	if c.Telemetry.FlushInterval != 2*time.Second || c.Telemetry.MaxRoutesPerService != 100 {
		t.Errorf("telemetry %+v", c.Telemetry)
	}
	if c.Upstreams[0].Protocol != ProtocolAuto || c.Inbound.AppProtocol != ProtocolAuto {
		t.Errorf("protocol defaults not applied")
	}
	r := c.Redacted()
	if r.Telemetry.Token != "REDACTED" || r.Upstreams[1].TLS.KeyFile != "REDACTED" {
		t.Errorf("not redacted: %+v %+v", r.Telemetry, r.Upstreams[1].TLS)
	}
	if c.Telemetry.Token != "s3cret" || c.Upstreams[1].TLS.KeyFile != "/etc/client-key.pem" {
		t.Errorf("Redacted changed the original")
	}
}

// TestConfigErrors checks that each bad config is refused with an error
// naming the field path, on one line.
func TestConfigErrors(t *testing.T) {
	base := "service: users\noutbound:\n  listen: 127.0.0.1:1\n"
	f := func(yaml, want string) {
		t.Helper()
		_, err := ParseConfig([]byte(yaml))
		if err == nil {
			t.Errorf("accepted:\n%s", yaml)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error spans lines: %q", err)
		}
	}
	f("service: users\nbogus: 1\noutbound:\n  listen: 127.0.0.1:1\n", "field bogus not found")
	f("service: users\noutbound:\n  listen: 127.0.0.1:1\n  extra: 2\n", "field extra not found")
	f("outbound:\n  listen: 127.0.0.1:1\n", "service: must not be empty")
	f("service: 'a b'\noutbound:\n  listen: 127.0.0.1:1\n", "service:")
	f("service: users\n", "inbound, outbound: at least one")
	f("service: users\ninbound:\n  listen: nope\n  app: 127.0.0.1:1\n", "inbound.listen:")
	f("service: users\ninbound:\n  listen: 127.0.0.1:1\n", "inbound.app: must not be empty")
	f("service: users\ninbound:\n  listen: 127.0.0.1:1\n  app: 127.0.0.1:2\n  app_protocol: spdy\n", "inbound.app_protocol:")
	f("service: users\ninbound:\n  listen: 127.0.0.1:1\n  app: 127.0.0.1:2\n  routes: [/a, users]\n", "inbound.routes[1]:")
	f("service: users\ninbound:\n  listen: 127.0.0.1:1\n  app: 127.0.0.1:2\n  tls:\n    cert_file: a\n", "inbound.tls.key_file:")
	f(base+"upstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\n  - name: b\n    endpoints: [127.0.0.1:1, 'x:99999']\n", "upstreams[1].endpoints[1]:")
	f(base+"upstreams:\n  - endpoints: [127.0.0.1:1]\n", "upstreams[0].name:")
	f(base+"upstreams:\n  - name: a\n", "upstreams[0].endpoints:")
	f(base+"upstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\n  - name: a\n    endpoints: [127.0.0.1:1]\n", "upstreams[1].name:")
	f(base+"upstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\n    routes: ['/x/{id']\n", "upstreams[0].routes[0]:")
	f(base+"upstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\n    tls: {}\n", "upstreams[0].tls:")
	f(base+"upstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\n    protocol: tls\n    tls: {cert_file: a}\n", "upstreams[0].tls.cert_file:")
	f("service: users\nupstreams:\n  - name: a\n    endpoints: [127.0.0.1:1]\ninbound:\n  listen: 127.0.0.1:1\n  app: 127.0.0.1:2\n", "upstreams: set but there is no outbound")
	f(base+"timeouts:\n  response: -1s\n", "timeouts.response:")
	f(base+"timeouts:\n  connect: soon\n", "cannot unmarshal")
	f(base+"telemetry:\n  collector: ftp://x\n", "telemetry.collector:")
	f(base+"telemetry:\n  flush_interval: 1ms\n", "telemetry.flush_interval:")
	f(base+"telemetry:\n  unknown: 1\n", "field unknown not found")
	f(base+"---\nservice: other\n", "more than one YAML document")
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meshproxy.yaml")
	os.WriteFile(path, []byte("service: users\n"), 0o600)
	_, err := LoadConfig(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("error %v does not start with the file name", err)
	}
}

func TestQuickStart(t *testing.T) {
	c, err := QuickStart{
		Service: "web", Inbound: "127.0.0.1:1", App: "127.0.0.1:2", Outbound: "127.0.0.1:3",
		Upstreams: []string{"users=127.0.0.1:4,127.0.0.1:5", "orders=127.0.0.1:6"},
		Admin:     "127.0.0.1:7", Collector: "http://127.0.0.1:4318", FlushInterval: time.Second,
	}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Upstreams) != 2 || len(c.Upstreams[0].Endpoints) != 2 || c.Telemetry.FlushInterval != time.Second {
		t.Errorf("config %+v", c)
	}
	for _, q := range []QuickStart{
		{Service: "web", Inbound: "127.0.0.1:1"},
		{Service: "web", Outbound: "127.0.0.1:3", Upstreams: []string{"users"}},
		{Service: "web", Outbound: "127.0.0.1:3", Upstreams: []string{"users=nohostport"}},
		{Service: "web", Upstreams: []string{"users=127.0.0.1:4"}, Inbound: "127.0.0.1:1", App: "127.0.0.1:2"},
		{Inbound: "127.0.0.1:1", App: "127.0.0.1:2"},
	} {
		if _, err := q.Config(); err == nil {
			t.Errorf("accepted %+v", q)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("service: a\noutbound: {listen: ':1'}\nupstreams: [{name: b, endpoints: ['c:2'], routes: ['/{x...}']}]"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// Whatever parses must validate, redact and build its routing.
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		_ = c.Redacted()
		if _, err := newRouting(c, nil); err != nil && !strings.Contains(err.Error(), "tls") {
			t.Fatalf("valid config has no routing: %v", err)
		}
	})
}

// TestConfigFixtures: testdata/*.good.yaml load, *.bad.yaml are refused
// with a one-line error.
func TestConfigFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		_, err := LoadConfig(f)
		switch {
		case strings.HasSuffix(f, ".good.yaml") && err != nil:
			t.Errorf("%s: %v", f, err)
		case strings.HasSuffix(f, ".bad.yaml") && (err == nil || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: error %v", f, err)
		}
	}
}
