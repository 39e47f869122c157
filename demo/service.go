// Package demo runs a sample mesh on one machine with no set-up: an embedded
// collector, five small services each behind a meshproxy sidecar, a bounded
// load generator, one dependency that degrades midway, a live table of every
// service's tail in the terminal, and tail-latency reports at the end.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Latency is a service's own work time: log-normal around Median with shape
// Sigma, and with probability TailProb a slow request TailFactor times
// longer (a GC pause, a cold cache, a lock), which makes the long tail.
type Latency struct {
	Median     time.Duration
	Sigma      float64
	TailProb   float64
	TailFactor float64
}

// sample draws one latency.
func (l Latency) sample(rng *rand.Rand) time.Duration {
	d := float64(l.Median) * math.Exp(l.Sigma*rng.NormFloat64())
	if l.TailProb > 0 && rng.Float64() < l.TailProb {
		d *= l.TailFactor * (0.5 + rng.Float64())
	}
	return time.Duration(d)
}

// Behaviour is how a service answers: its latency and its share of 500s.
type Behaviour struct {
	Latency   Latency
	ErrorRate float64
}

// Call is a request a service makes to a dependency for every request it
// serves on a route.
type Call struct {
	Service string
	Method  string
	// Path may hold "{id}", replaced by a random number.
	Path string
}

// Route is one endpoint of a sample service.
type Route struct {
	Method, Path string // Path is a prefix: "/items/" serves /items/42
	Calls        []Call
}

// ServiceSpec describes one sample service.
type ServiceSpec struct {
	Name   string
	Routes []Route
	// Normal is the behaviour before the degradation, Degraded after it
	// (nil: the service does not degrade).
	Normal   Behaviour
	Degraded *Behaviour
}

// Service is a running sample service: an HTTP server whose handler waits
// its latency, calls its dependencies through its sidecar's outbound
// listener, and sometimes fails.
type Service struct {
	spec     ServiceSpec
	ln       net.Listener
	srv      *http.Server
	client   *http.Client
	outbound atomic.Pointer[string] // the sidecar's outbound listener
	degraded atomic.Bool
	mu       sync.Mutex
	rng      *rand.Rand
	done     chan struct{}
}

// StartService listens on a free loopback port and serves spec.
func StartService(spec ServiceSpec, seed uint64, logger *slog.Logger) (*Service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("service %s: listen: %w", spec.Name, err)
	}
	s := &Service{
		spec: spec, ln: ln, done: make(chan struct{}),
		rng: rand.New(rand.NewPCG(seed, uint64(len(spec.Name)))),
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second},
		},
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the service's HOST:PORT.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Name is the service's name.
func (s *Service) Name() string { return s.spec.Name }

// SetOutbound tells the service where its sidecar's outbound listener is.
func (s *Service) SetOutbound(addr string) { s.outbound.Store(&addr) }

// Degrade switches the service to its degraded behaviour, if it has one.
func (s *Service) Degrade() { s.degraded.Store(true) }

// Shutdown stops the server, waiting for requests in flight.
func (s *Service) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	s.client.CloseIdleConnections()
	return err
}

func (s *Service) behaviour() Behaviour {
	if s.degraded.Load() && s.spec.Degraded != nil {
		return *s.spec.Degraded
	}
	return s.spec.Normal
}

func (s *Service) draw() (time.Duration, bool, int) {
	b := s.behaviour()
	s.mu.Lock()
	defer s.mu.Unlock()
	return b.Latency.sample(s.rng), s.rng.Float64() < b.ErrorRate, s.rng.IntN(1000)
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	var route *Route
	for i := range s.spec.Routes {
		rt := &s.spec.Routes[i]
		if r.Method == rt.Method && strings.HasPrefix(r.URL.Path, rt.Path) {
			route = rt
			break
		}
	}
	if route == nil {
		http.Error(w, "no such route", http.StatusNotFound)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	work, fail, id := s.draw()
	// Half the work before the calls, half after.
	if !sleep(r.Context(), work/2) {
		return
	}
	for _, c := range route.Calls {
		code, err := s.call(r, c, id)
		if err != nil || code >= 500 {
			http.Error(w, fmt.Sprintf("%s: dependency %s failed", s.spec.Name, c.Service), http.StatusBadGateway)
			return
		}
	}
	if !sleep(r.Context(), work-work/2) {
		return
	}
	if fail {
		http.Error(w, s.spec.Name+": internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"service\":%q,\"id\":%d}\n", s.spec.Name, id)
}

// call makes one dependency call through the sidecar, passing the request
// ID and trace context on.
func (s *Service) call(in *http.Request, c Call, id int) (int, error) {
	out := s.outbound.Load()
	if out == nil {
		return 0, fmt.Errorf("no outbound listener")
	}
	path := strings.ReplaceAll(c.Path, "{id}", fmt.Sprint(id))
	req, err := http.NewRequestWithContext(in.Context(), c.Method, "http://"+*out+path, nil)
	if err != nil {
		return 0, err
	}
	req.Host = c.Service
	for _, h := range []string{"X-Request-Id", "Traceparent", "Tracestate"} {
		if v := in.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
