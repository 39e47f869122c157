package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/proxy/telemetry"
)

// Options configure a Proxy.
type Options struct {
	Config Config
	// ConfigPath, when set, is re-read by ReloadFile and watched for
	// changes every WatchInterval (default 1s).
	ConfigPath    string
	WatchInterval time.Duration
	Logger        *slog.Logger
	// Registry receives the data plane's counters and is served on /metrics.
	Registry *prometheus.Registry
	// Sink receives every finished hop (required).
	Sink telemetry.Sink
	// AdminHandlers are extra admin endpoints by path (e.g. "/stats").
	AdminHandlers map[string]http.Handler
}

// Proxy is one meshproxy: inbound and outbound listeners, admin listener.
type Proxy struct {
	log         *slog.Logger
	sink        telemetry.Sink
	reg         *prometheus.Registry
	metrics     *metrics
	service     string
	callerValue []string
	sampleRatio float64
	opts        Options

	routing  atomic.Pointer[routing]
	reloadMu sync.Mutex

	inbound, outbound, admin *http.Server
	inLn, outLn, adminLn     net.Listener
	tlsLn                    *tlsGuardListener

	draining  atomic.Bool
	stopped   atomic.Bool
	serveWG   sync.WaitGroup
	stopWatch chan struct{}
	watchWG   sync.WaitGroup

	hijackMu sync.Mutex
	hijacked map[net.Conn]struct{}
	relayWG  sync.WaitGroup
}

// New builds a proxy from a validated config. Nothing listens until Start.
func New(o Options) (*Proxy, error) {
	if o.Logger == nil {
		return nil, errors.New("proxy: Options.Logger is required")
	}
	if o.Registry == nil {
		return nil, errors.New("proxy: Options.Registry is required")
	}
	if o.Sink == nil {
		return nil, errors.New("proxy: Options.Sink is required")
	}
	o.Config = o.Config.Defaults()
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.WatchInterval == 0 {
		o.WatchInterval = time.Second
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	p := &Proxy{
		log:         o.Logger,
		sink:        o.Sink,
		reg:         o.Registry,
		metrics:     m,
		service:     o.Config.Service,
		callerValue: []string{o.Config.Service},
		sampleRatio: 1,
		opts:        o,
		stopWatch:   make(chan struct{}),
		hijacked:    make(map[net.Conn]struct{}),
	}
	if r := o.Config.Telemetry.SamplingRatio; r != nil {
		p.sampleRatio = *r
	}
	rt, err := newRouting(o.Config, nil)
	if err != nil {
		return nil, err
	}
	p.routing.Store(rt)
	return p, nil
}

// Start binds the listeners and serves. It returns once all are listening.
func (p *Proxy) Start() error {
	cfg := p.routing.Load().cfg
	errLog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	newServer := func(h http.Handler, proto http.Protocols) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    1 << 20,
			ErrorLog:          errLog,
			Protocols:         &proto,
		}
	}
	if in := cfg.Inbound; in != nil {
		ln, err := net.Listen("tcp", in.Listen)
		if err != nil {
			return fmt.Errorf("inbound.listen: %w", err)
		}
		fwd := &forwarder{p: p, dir: model.Inbound, di: dirIndex(model.Inbound), scheme: schemeHTTP}
		var proto http.Protocols
		proto.SetHTTP1(true)
		if in.TLS != nil {
			cert, err := tls.LoadX509KeyPair(in.TLS.CertFile, in.TLS.KeyFile)
			if err != nil {
				ln.Close()
				return fmt.Errorf("inbound.tls: %w", err)
			}
			fwd.scheme = schemeHTTPS
			proto.SetHTTP2(true)
			p.inbound = newServer(fwd, proto)
			p.inbound.TLSConfig = &tls.Config{
				Certificates: []tls.Certificate{cert},
				NextProtos:   []string{"h2", "http/1.1"},
				MinVersion:   tls.VersionTLS12,
			}
			p.tlsLn = newTLSGuardListener(ln, p.inbound.TLSConfig, p.metrics.smugglingRejected)
			p.inLn = p.tlsLn
		} else {
			proto.SetUnencryptedHTTP2(true)
			p.inbound = newServer(fwd, proto)
			p.inLn = &guardedListener{Listener: ln, onReject: p.metrics.smugglingRejected}
		}
		p.serve(p.inbound, p.inLn)
	}
	if out := cfg.Outbound; out != nil {
		ln, err := net.Listen("tcp", out.Listen)
		if err != nil {
			p.closeListeners()
			return fmt.Errorf("outbound.listen: %w", err)
		}
		var proto http.Protocols
		proto.SetHTTP1(true)
		proto.SetUnencryptedHTTP2(true)
		p.outbound = newServer(&forwarder{p: p, dir: model.Outbound, di: dirIndex(model.Outbound), scheme: schemeHTTP}, proto)
		p.outLn = &guardedListener{Listener: ln, onReject: p.metrics.smugglingRejected}
		p.serve(p.outbound, p.outLn)
	}
	if cfg.Admin != "" {
		ln, err := net.Listen("tcp", cfg.Admin)
		if err != nil {
			p.closeListeners()
			return fmt.Errorf("admin: %w", err)
		}
		var proto http.Protocols
		proto.SetHTTP1(true)
		p.admin = newServer(p.adminHandler(), proto)
		p.adminLn = ln
		p.serve(p.admin, ln)
	}
	if p.opts.ConfigPath != "" {
		p.watchWG.Add(1)
		go p.watch(p.opts.ConfigPath)
	}
	p.log.Info("meshproxy started", "service", cfg.Service, "inbound", addrOf(p.inLn), "outbound", addrOf(p.outLn), "admin", addrOf(p.adminLn))
	return nil
}

func (p *Proxy) serve(srv *http.Server, ln net.Listener) {
	p.serveWG.Add(1)
	go func() {
		defer p.serveWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

func (p *Proxy) closeListeners() {
	for _, ln := range []net.Listener{p.inLn, p.outLn, p.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// InboundAddr, OutboundAddr and AdminAddr are the bound addresses (useful
// with port 0); "" when the listener is not configured.
func (p *Proxy) InboundAddr() string  { return addrOf(p.inLn) }
func (p *Proxy) OutboundAddr() string { return addrOf(p.outLn) }
func (p *Proxy) AdminAddr() string    { return addrOf(p.adminLn) }

// Config returns the effective config.
func (p *Proxy) Config() Config { return p.routing.Load().cfg }

// Reload swaps routes and upstreams for those of next. In-flight requests
// finish on what they started with; unchanged upstreams keep their idle
// connections. Changes that need new listeners or telemetry are refused.
func (p *Proxy) Reload(next Config) error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	err := p.reload(next)
	if err != nil {
		p.metrics.reloadsFailed.Inc()
		p.log.Error("config reload refused; keeping the running config", "err", err)
		return err
	}
	p.metrics.reloadsOK.Inc()
	p.log.Info("config reloaded", "upstreams", len(next.Upstreams))
	return nil
}

func (p *Proxy) reload(next Config) error {
	next = next.Defaults()
	if err := next.Validate(); err != nil {
		return err
	}
	cur := p.routing.Load()
	if err := restartOnly(cur.cfg, next); err != nil {
		return err
	}
	rt, err := newRouting(next, cur)
	if err != nil {
		return err
	}
	p.routing.Store(rt)
	retired := cur.retired(rt)
	for _, u := range retired {
		u.closeIdle()
	}
	if len(retired) > 0 {
		// Connections still busy now go idle once their requests end.
		time.AfterFunc(next.Timeouts.Drain, func() {
			for _, u := range retired {
				u.closeIdle()
			}
		})
	}
	return nil
}

// restartOnly refuses changes a reload cannot apply.
func restartOnly(cur, next Config) error {
	switch {
	case cur.Service != next.Service:
		return errors.New("service: changed; restart meshproxy to apply")
	case cur.Admin != next.Admin:
		return errors.New("admin: changed; restart meshproxy to apply")
	case (cur.Inbound == nil) != (next.Inbound == nil):
		return errors.New("inbound: added or removed; restart meshproxy to apply")
	case (cur.Outbound == nil) != (next.Outbound == nil):
		return errors.New("outbound: added or removed; restart meshproxy to apply")
	case cur.Outbound != nil && cur.Outbound.Listen != next.Outbound.Listen:
		return errors.New("outbound.listen: changed; restart meshproxy to apply")
	case !reflect.DeepEqual(cur.Telemetry, next.Telemetry):
		return errors.New("telemetry: changed; restart meshproxy to apply")
	}
	if cur.Inbound != nil {
		if cur.Inbound.Listen != next.Inbound.Listen {
			return errors.New("inbound.listen: changed; restart meshproxy to apply")
		}
		if !reflect.DeepEqual(cur.Inbound.TLS, next.Inbound.TLS) {
			return errors.New("inbound.tls: changed; restart meshproxy to apply")
		}
	}
	return nil
}

// ReloadFile re-reads Options.ConfigPath and reloads it.
func (p *Proxy) ReloadFile() error {
	if p.opts.ConfigPath == "" {
		return errors.New("reload: no config file")
	}
	cfg, err := LoadConfig(p.opts.ConfigPath)
	if err != nil {
		p.reloadMu.Lock()
		p.metrics.reloadsFailed.Inc()
		p.reloadMu.Unlock()
		p.log.Error("config reload refused; keeping the running config", "err", err)
		return err
	}
	return p.Reload(cfg)
}

// watch reloads the config file when its modification time or size changes.
func (p *Proxy) watch(path string) {
	defer p.watchWG.Done()
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mt, sz := stamp()
	t := time.NewTicker(p.opts.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stopWatch:
			return
		case <-t.C:
			nmt, nsz := stamp()
			if nsz < 0 || (nmt.Equal(mt) && nsz == sz) {
				continue
			}
			mt, sz = nmt, nsz
			_ = p.ReloadFile() // logged and counted
		}
	}
}

// trackHijacked registers an upgraded connection so Shutdown can end it.
func (p *Proxy) trackHijacked(c net.Conn) (untrack func()) {
	p.hijackMu.Lock()
	p.hijacked[c] = struct{}{}
	p.hijackMu.Unlock()
	p.relayWG.Add(1)
	p.metrics.hijacked.Inc()
	return func() {
		p.hijackMu.Lock()
		delete(p.hijacked, c)
		p.hijackMu.Unlock()
		p.metrics.hijacked.Dec()
		p.relayWG.Done()
	}
}

// Shutdown stops accepting, waits for in-flight requests (and upgraded
// connections) until ctx ends or the drain timeout passes, closes what is
// left, then flushes telemetry by closing the sink when it can be closed.
func (p *Proxy) Shutdown(ctx context.Context) error {
	if p.stopped.Swap(true) {
		return nil
	}
	p.draining.Store(true)
	close(p.stopWatch)
	p.watchWG.Wait()
	cfg := p.routing.Load().cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeouts.Drain)
	defer cancel()

	var firstErr error
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{p.inbound, p.outbound} {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}()
	}
	wg.Wait()
	relayed := make(chan struct{})
	go func() { p.relayWG.Wait(); close(relayed) }()
	select {
	case <-relayed:
	case <-ctx.Done():
		p.hijackMu.Lock()
		for c := range p.hijacked {
			c.Close()
		}
		p.hijackMu.Unlock()
		<-relayed
	}
	if ctx.Err() != nil {
		firstErr = fmt.Errorf("drain: %w; remaining requests were cut", ctx.Err())
		p.log.Warn("drain deadline passed; cut the remaining requests", "drain", cfg.Timeouts.Drain)
	}
	if p.tlsLn != nil {
		p.tlsLn.wait()
	}
	rt := p.routing.Load()
	if rt.app != nil {
		rt.app.closeIdle()
	}
	for _, u := range rt.upstreams {
		u.closeIdle()
	}
	// Telemetry gets its own few seconds even when draining used them all.
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer fcancel()
	if err := closeSink(fctx, p.sink); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("flush telemetry: %w", err)
	}
	if p.admin != nil {
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		_ = p.admin.Shutdown(sctx)
		scancel()
	}
	p.serveWG.Wait()
	return firstErr
}

// closeSink flushes a sink that can be shut down or closed.
func closeSink(ctx context.Context, s telemetry.Sink) error {
	switch c := s.(type) {
	case interface{ Shutdown(context.Context) error }:
		return c.Shutdown(ctx)
	case interface{ Close(context.Context) error }:
		return c.Close(ctx)
	case io.Closer:
		return c.Close()
	}
	return nil
}
