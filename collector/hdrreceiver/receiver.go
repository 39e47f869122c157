package hdrreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"

	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/model"
)

type hdrReceiver struct {
	cfg     *Config
	set     receiver.Settings
	release func()
	now     func() time.Time

	mu      sync.Mutex
	traces  consumer.Traces
	logs    consumer.Logs
	starts  int
	ext     *meshlensextension.Extension
	health  *health.Metrics
	srv     *http.Server
	serving sync.WaitGroup
}

var (
	_ receiver.Traces = (*hdrReceiver)(nil)
	_ receiver.Logs   = (*hdrReceiver)(nil)
)

func newReceiver(set receiver.Settings, cfg *Config, release func()) *hdrReceiver {
	return &hdrReceiver{cfg: cfg, set: set, release: release, now: time.Now}
}

func (r *hdrReceiver) setTraces(c consumer.Traces) { r.mu.Lock(); r.traces = c; r.mu.Unlock() }
func (r *hdrReceiver) setLogs(c consumer.Logs)     { r.mu.Lock(); r.logs = c; r.mu.Unlock() }

// Start starts the HTTP server once, however many pipelines use the
// receiver.
func (r *hdrReceiver) Start(_ context.Context, host component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	if r.starts > 1 {
		return nil
	}
	ext, err := meshlensextension.Get(host, r.cfg.Extension)
	if err != nil {
		return fmt.Errorf("meshlens_hdr receiver: %w", err)
	}
	r.ext, r.health = ext, ext.Health()
	ln, err := net.Listen("tcp", r.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("meshlens_hdr receiver: listen: %w", err)
	}
	r.srv = &http.Server{
		Handler:           r.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(r.set.Logger),
	}
	r.serving.Add(1)
	go func() {
		defer r.serving.Done()
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.set.Logger.Error("meshlens_hdr receiver: server stopped", zap.Error(err))
		}
	}()
	r.set.Logger.Info("meshlens_hdr receiver: serving /v1/histograms and /v1/traces", zap.String("endpoint", ln.Addr().String()))
	return nil
}

// Shutdown stops the server when the last pipeline using it shuts down.
func (r *hdrReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.starts > 1 {
		r.starts--
		r.mu.Unlock()
		return nil
	}
	r.starts = 0
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	r.release()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	r.serving.Wait()
	return err
}

func (r *hdrReceiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+model.HistogramPath, r.histograms)
	mux.HandleFunc("POST /v1/traces", r.otlpTraces)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: this endpoint takes POST %s and POST /v1/traces", req.Method, req.URL.Path, model.HistogramPath))
	})
	return mux
}

func (r *hdrReceiver) consumers() (consumer.Traces, consumer.Logs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.traces, r.logs
}
