package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshlens/meshlens/internal/freeport"
)

// Sidecar is a running meshproxy process.
type Sidecar struct {
	Service  string
	Inbound  string // callers reach the service here
	Outbound string // the service calls its dependencies here
	Admin    string
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *os.File
}

// SidecarConfig starts one sidecar.
type SidecarConfig struct {
	Binary        string // meshproxy
	Service       string
	App           string            // the service's HOST:PORT
	Upstreams     map[string]string // dependency name → its sidecar's inbound
	Collector     string            // http://127.0.0.1:PORT
	FlushInterval time.Duration
	LogDir        string
}

// FreePort returns a loopback address nobody listens on right now.
func FreePort() (string, error) { return freeport.Addr() }

// StartSidecar starts meshproxy with the quick-start flags on free loopback
// ports and waits until it is ready. The process gets its own process group
// (a terminal's Ctrl-C reaches the demo, which stops the sidecars in order)
// and is killed by the kernel if the demo dies.
//
// A port found free can be taken by another process before meshproxy binds
// it; a sidecar that exits during start-up is started again on new ports,
// up to three times.
func StartSidecar(ctx context.Context, c SidecarConfig) (*Sidecar, error) {
	for attempt := 1; ; attempt++ {
		s, err := startSidecar(ctx, c)
		if err == nil || !errors.Is(err, errExitedEarly) || attempt == 3 {
			return s, err
		}
	}
}

var errExitedEarly = errors.New("meshproxy exited during start-up")

func startSidecar(ctx context.Context, c SidecarConfig) (*Sidecar, error) {
	s := &Sidecar{Service: c.Service, exited: make(chan struct{})}
	var err error
	for _, p := range []*string{&s.Inbound, &s.Outbound, &s.Admin} {
		if *p, err = FreePort(); err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", c.Service, err)
		}
	}
	args := []string{"--service", c.Service, "--inbound", s.Inbound, "--app", c.App, "--outbound", s.Outbound,
		"--admin", s.Admin, "--collector", c.Collector, "--flush-interval", c.FlushInterval.String(), "--log-level", "warn"}
	for name, addr := range c.Upstreams {
		args = append(args, "--upstream", name+"="+addr)
	}
	// Appended to: the log keeps every attempt.
	s.log, err = os.OpenFile(filepath.Join(c.LogDir, c.Service+"-meshproxy.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sidecar %s: log file: %w", c.Service, err)
	}
	s.cmd = exec.Command(c.Binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("sidecar %s: start %s: %w", c.Service, c.Binary, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, 20*time.Second); err != nil {
		s.Stop(context.Background())
		return nil, fmt.Errorf("sidecar %s: %w (log: %s)", c.Service, err, s.log.Name())
	}
	return s, nil
}

func (s *Sidecar) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Admin+"/ready", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errExitedEarly
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v", limit)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM (the proxy drains and flushes its telemetry), waits,
// and kills the process if ctx ends first.
func (s *Sidecar) Stop(ctx context.Context) {
	defer s.log.Close()
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// FindBinary finds an executable: next to the running program, in bin/
// below the working directory, then on PATH.
func FindBinary(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := filepath.Abs(filepath.Join("bin", name)); err == nil {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found next to this program, in ./bin or on PATH; run make build", name)
}
