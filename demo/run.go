package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// runningMesh is the sample services and their sidecars.
type runningMesh struct {
	specs    []ServiceSpec
	services map[string]*Service
	sidecars map[string]*Sidecar
	stopOnce sync.Once
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// startMesh starts every service and its sidecar. Sidecars start leaves
// first, so each knows its dependencies' inbound addresses.
func startMesh(ctx context.Context, o Options, collectorURL, logDir string) (*runningMesh, error) {
	m := &runningMesh{specs: SampleMesh(), services: map[string]*Service{}, sidecars: map[string]*Sidecar{}}
	for i, spec := range m.specs {
		s, err := StartService(spec, uint64(time.Now().UnixNano())+uint64(i), o.Logger)
		if err != nil {
			return m, err
		}
		m.services[spec.Name] = s
	}
	deps := func(spec ServiceSpec) []string {
		seen := map[string]bool{}
		var out []string
		for _, r := range spec.Routes {
			for _, c := range r.Calls {
				if !seen[c.Service] {
					seen[c.Service] = true
					out = append(out, c.Service)
				}
			}
		}
		return out
	}
	for len(m.sidecars) < len(m.specs) {
		progress := false
		for _, spec := range m.specs {
			if m.sidecars[spec.Name] != nil {
				continue
			}
			ups := map[string]string{}
			ready := true
			for _, d := range deps(spec) {
				sc := m.sidecars[d]
				if sc == nil {
					ready = false
					break
				}
				ups[d] = sc.Inbound
			}
			if !ready {
				continue
			}
			sc, err := StartSidecar(ctx, SidecarConfig{
				Binary: o.MeshproxyBinary, Service: spec.Name, App: m.services[spec.Name].Addr(),
				Upstreams: ups, Collector: collectorURL, FlushInterval: o.FlushInterval, LogDir: logDir,
			})
			if err != nil {
				return m, err
			}
			m.sidecars[spec.Name] = sc
			m.services[spec.Name].SetOutbound(sc.Outbound)
			progress = true
		}
		if !progress {
			return m, fmt.Errorf("sample mesh: dependency cycle or unknown dependency")
		}
	}
	return m, nil
}

func (m *runningMesh) names() []string {
	out := make([]string, 0, len(m.specs))
	for _, s := range m.specs {
		out = append(out, s.Name)
	}
	return out
}

func (m *runningMesh) degrade() {
	for _, s := range m.services {
		s.Degrade()
	}
}

// stop stops the sidecars (each drains and flushes its telemetry) and then
// the services. It is safe to call more than once.
func (m *runningMesh) stop() {
	m.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, sc := range m.sidecars {
			wg.Add(1)
			go func() { defer wg.Done(); sc.Stop(ctx) }()
		}
		wg.Wait()
		for _, s := range m.services {
			_ = s.Shutdown(ctx)
		}
	})
}

// observe reads every sidecar's last interval into the clock.
func (m *runningMesh) observe(ctx context.Context, c *IntervalClock, logger *slog.Logger) {
	for _, sc := range m.sidecars {
		if err := c.Observe(ctx, sc.Admin); err != nil {
			logger.Warn("demo: sidecar stats", "service", sc.Service, "err", err)
		}
	}
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o755) }
