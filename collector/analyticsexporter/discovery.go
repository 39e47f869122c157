package analyticsexporter

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meshlens/meshlens/store"
)

// discovery keeps the services and edges seen so far and tells the hooks
// about new services, in order, on its own goroutine.
type discovery struct {
	logger *zap.Logger
	hooks  []ServiceHook

	mu       sync.Mutex
	services map[string]*store.Service
	edges    map[[2]string]*store.Edge
	pending  []store.Service
	wake     chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup
	running  bool
}

func newDiscovery(logger *zap.Logger, hooks []ServiceHook) *discovery {
	return &discovery{
		logger: logger, hooks: hooks,
		services: map[string]*store.Service{}, edges: map[[2]string]*store.Edge{},
		wake: make(chan struct{}, 1),
	}
}

// seed marks services as known without calling hooks.
func (d *discovery) seed(ss []store.Service, es []store.Edge) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range ss {
		s := s
		d.services[s.Name] = &s
	}
	for _, e := range es {
		e := e
		d.edges[[2]string{e.Caller, e.Callee}] = &e
	}
}

func (d *discovery) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return
	}
	d.running = true
	d.stop = make(chan struct{})
	d.done.Add(1)
	go d.run(d.stop)
}

func (d *discovery) shutdown() {
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		return
	}
	d.running = false
	close(d.stop)
	d.mu.Unlock()
	d.done.Wait()
}

func (d *discovery) run(stop chan struct{}) {
	defer d.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	for {
		select {
		case <-stop:
			return
		case <-d.wake:
		}
		d.mu.Lock()
		batch := d.pending
		d.pending = nil
		d.mu.Unlock()
		for _, s := range batch {
			for _, h := range d.hooks {
				d.call(ctx, h, s)
			}
		}
	}
}

func (d *discovery) call(ctx context.Context, h ServiceHook, s store.Service) {
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("meshlens_analytics: OnNewService hook panicked", zap.String("service", s.Name), zap.Any("panic", r))
		}
	}()
	h(ctx, s)
}

func (d *discovery) seeService(name string, hasProxy bool, t time.Time) {
	if name == "" || name == "unknown" {
		return
	}
	s, ok := d.services[name]
	if !ok {
		s = &store.Service{Name: name, HasProxy: hasProxy, FirstSeen: t, LastSeen: t}
		d.services[name] = s
		if len(d.hooks) > 0 {
			d.pending = append(d.pending, *s)
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	s.HasProxy = s.HasProxy || hasProxy
	if t.After(s.LastSeen) {
		s.LastSeen = t
	}
	if t.Before(s.FirstSeen) {
		s.FirstSeen = t
	}
}

// see records a service (callers hold no lock).
func (d *discovery) see(name string, hasProxy bool, t time.Time) {
	d.mu.Lock()
	d.seeService(name, hasProxy, t)
	d.mu.Unlock()
}

func (d *discovery) seeEdge(caller, callee string, t time.Time) {
	if caller == "" || callee == "" || caller == "unknown" || callee == "unknown" || caller == callee {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seeService(caller, false, t)
	d.seeService(callee, false, t)
	k := [2]string{caller, callee}
	e, ok := d.edges[k]
	if !ok {
		d.edges[k] = &store.Edge{Caller: caller, Callee: callee, FirstSeen: t, LastSeen: t}
		return
	}
	if t.After(e.LastSeen) {
		e.LastSeen = t
	}
}

// snapshot copies the services and edges.
func (d *discovery) snapshot() ([]store.Service, []store.Edge) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ss := make([]store.Service, 0, len(d.services))
	for _, s := range d.services {
		ss = append(ss, *s)
	}
	es := make([]store.Edge, 0, len(d.edges))
	for _, e := range d.edges {
		es = append(es, *e)
	}
	return ss, es
}
