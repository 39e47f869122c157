package proxy

import (
	"fmt"
	"strings"
	"time"
)

// QuickStart are the command-line flags that configure a proxy without a
// config file.
type QuickStart struct {
	Service       string
	Inbound, App  string
	Outbound      string
	Upstreams     []string // NAME=HOST:PORT[,HOST:PORT...]
	Admin         string
	Collector     string
	FlushInterval time.Duration
}

// Config turns the flags into a validated config.
func (q QuickStart) Config() (Config, error) {
	c := Config{Service: q.Service, Admin: q.Admin}
	if q.Inbound != "" || q.App != "" {
		if q.Inbound == "" || q.App == "" {
			return Config{}, fmt.Errorf("--inbound and --app go together")
		}
		c.Inbound = &InboundConfig{Listen: q.Inbound, App: q.App}
	}
	if q.Outbound != "" {
		c.Outbound = &OutboundConfig{Listen: q.Outbound}
	}
	for _, s := range q.Upstreams {
		u, err := ParseUpstreamFlag(s)
		if err != nil {
			return Config{}, err
		}
		c.Upstreams = append(c.Upstreams, u)
	}
	if len(c.Upstreams) > 0 && c.Outbound == nil {
		return Config{}, fmt.Errorf("--upstream needs --outbound")
	}
	c.Telemetry.Collector = q.Collector
	c.Telemetry.FlushInterval = q.FlushInterval
	c = c.Defaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseUpstreamFlag parses NAME=HOST:PORT[,HOST:PORT...].
func ParseUpstreamFlag(s string) (UpstreamConfig, error) {
	name, eps, ok := strings.Cut(s, "=")
	if !ok || name == "" || eps == "" {
		return UpstreamConfig{}, fmt.Errorf("--upstream %q: want NAME=HOST:PORT[,HOST:PORT...]", s)
	}
	u := UpstreamConfig{Name: name, Protocol: ProtocolAuto}
	for _, e := range strings.Split(eps, ",") {
		if err := validAddr(e); err != nil {
			return UpstreamConfig{}, fmt.Errorf("--upstream %q: %w", s, err)
		}
		u.Endpoints = append(u.Endpoints, e)
	}
	return u, nil
}
