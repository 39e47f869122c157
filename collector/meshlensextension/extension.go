package meshlensextension

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"

	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/internal/zapslog"
	"github.com/meshlens/meshlens/collector/queryapi"
	"github.com/meshlens/meshlens/jaeger"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/open"
)

// Extension holds what the meshlens components of one collector share: the
// store, the Prometheus registry with the health metrics, and the ingest
// token check.
type Extension struct {
	cfg    *Config
	zl     *zap.Logger
	logger *slog.Logger
	reg    *prometheus.Registry
	health *health.Metrics

	mu      sync.Mutex
	st      store.Store
	servers []*http.Server
	addrs   map[string]string // server name -> bound address
	done    sync.WaitGroup

	// The background compactor (store/rollup.Compactor): stopCompactor
	// ends it, compactorDone is closed when it has.
	stopCompactor context.CancelFunc
	compactorDone chan struct{}
}

var (
	_ extension.Extension  = (*Extension)(nil)
	_ extensionauth.Server = (*Extension)(nil)
)

func newExtension(set extension.Settings, cfg *Config) (*Extension, error) {
	reg := prometheus.NewRegistry()
	h, err := health.New(reg)
	if err != nil {
		return nil, fmt.Errorf("meshlens extension: register health metrics: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("meshlens extension: register go metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("meshlens extension: register process metrics: %w", err)
	}
	return &Extension{cfg: cfg, zl: set.Logger, logger: zapslog.New(set.Logger), reg: reg, health: h}, nil
}

// Get returns the meshlens extension id from the host, for components that
// name it in their config.
func Get(host component.Host, id component.ID) (*Extension, error) {
	c, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("extension %q is not configured (add it under extensions and service.extensions)", id)
	}
	e, ok := c.(*Extension)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a meshlens extension", id)
	}
	return e, nil
}

// Store is the opened store; nil before Start.
func (e *Extension) Store() store.Store {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// MetricsAddr is the address the metrics server listens on (useful with
// port 0); empty when it is not serving.
func (e *Extension) MetricsAddr() string { return e.addr("metrics") }

// APIAddr is the address the query API listens on; empty when it is not
// serving.
func (e *Extension) APIAddr() string { return e.addr("api") }

func (e *Extension) addr(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addrs[name]
}

// Registerer is where components register their Prometheus metrics.
func (e *Extension) Registerer() prometheus.Registerer { return e.reg }

// Health is the collector's health metrics.
func (e *Extension) Health() *health.Metrics { return e.health }

// Start opens the store and starts the metrics and query servers.
func (e *Extension) Start(ctx context.Context, _ component.Host) error {
	st, err := open.Open(ctx, open.Options{
		DataDir:     e.cfg.DataDir,
		DatabaseURL: string(e.cfg.DatabaseURL),
		Retention:   e.cfg.Retention,
		Logger:      e.logger,
	})
	if err != nil {
		return fmt.Errorf("meshlens extension: open store: %w", err)
	}
	e.mu.Lock()
	e.st = st
	e.mu.Unlock()
	e.startCompactor(st)

	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          zap.NewStdLog(e.zl),
	}))
	if err := e.serve("metrics", e.cfg.Metrics.Endpoint, metricsMux); err != nil {
		return errors.Join(err, e.Shutdown(ctx))
	}

	apiMux := http.NewServeMux()
	apiMux.Handle("/api/v1/", queryapi.NewHandler(st, e.logger))
	apiMux.Handle("/api/", jaeger.NewHandler(st, e.logger))
	apiMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if err := e.serve("api", e.cfg.API.Endpoint, RequireToken(string(e.cfg.API.AuthToken), apiMux)); err != nil {
		return errors.Join(err, e.Shutdown(ctx))
	}
	return nil
}

func (e *Extension) serve(name, endpoint string, h http.Handler) error {
	ln, err := net.Listen("tcp", endpoint)
	if err != nil {
		return fmt.Errorf("meshlens extension: %s server: %w", name, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(e.zl),
	}
	e.mu.Lock()
	e.servers = append(e.servers, srv)
	if e.addrs == nil {
		e.addrs = map[string]string{}
	}
	e.addrs[name] = ln.Addr().String()
	e.mu.Unlock()
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("meshlens extension: server stopped", "server", name, "err", err)
		}
	}()
	e.logger.Info("meshlens extension: serving", "server", name, "endpoint", ln.Addr().String())
	return nil
}

// Shutdown stops the servers and the compactor, and closes the store.
func (e *Extension) Shutdown(ctx context.Context) error {
	e.stopCompactorAndWait()
	e.mu.Lock()
	servers, st := e.servers, e.st
	e.servers, e.st, e.addrs = nil, nil, nil
	e.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	e.done.Wait()
	if st != nil {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ErrUnauthorized is returned by Authenticate for a missing or wrong token.
var ErrUnauthorized = errors.New("missing or wrong bearer token")

// Authenticate checks the ingest bearer token in a request's headers (HTTP)
// or metadata (gRPC). With no ingest token configured, every sender passes.
func (e *Extension) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	if e.cfg.IngestToken == "" {
		return ctx, nil
	}
	for k, vs := range sources {
		if !strings.EqualFold(k, "authorization") {
			continue
		}
		for _, v := range vs {
			if tokenMatches(string(e.cfg.IngestToken), v) {
				return ctx, nil
			}
		}
	}
	e.health.Rejected.WithLabelValues("any", "unauthorized").Inc()
	return ctx, ErrUnauthorized
}

// CheckIngest reports whether an HTTP request carries the ingest token (or
// none is configured).
func (e *Extension) CheckIngest(r *http.Request) bool {
	return e.cfg.IngestToken == "" || tokenMatches(string(e.cfg.IngestToken), r.Header.Get("Authorization"))
}

func tokenMatches(token, header string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

// RequireToken wraps h so that every request must carry "Authorization:
// Bearer token"; an empty token lets every request through.
func RequireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || tokenMatches(token, r.Header.Get("Authorization")) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshlens"`)
		http.Error(w, `{"error":"missing or wrong bearer token"}`, http.StatusUnauthorized)
	})
}
