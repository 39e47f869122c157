package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
)

// env is what a variant needs to start: where to listen, the backend, the
// telemetry sink, a scratch directory and where binaries and configs live.
type env struct {
	Listen, Backend, Sink, Admin string
	Port                         int    // Listen's port
	Dir                          string // scratch directory for this run
	Idle                         int    // idle upstream connections to keep
	Root                         string // repository root
}

// variant is one thing under test. start is nil for "direct" (no proxy).
type variant struct {
	name  string
	start func(e env) (*exec.Cmd, error)
}

// proxyCPU is the CPU the proxy under test runs on alone.
const proxyCPU = "1"

var goOneCore = []string{"GOMAXPROCS=1"}

func variants() []variant {
	return []variant{
		{name: "direct"},
		{name: "meshproxy", start: func(e env) (*exec.Cmd, error) {
			return startPinned(proxyCPU, filepath.Join(e.Dir, "meshproxy.log"), goOneCore,
				filepath.Join(e.Root, "bin/meshproxy"), "--service", "bench",
				"--inbound", e.Listen, "--app", e.Backend, "--admin", e.Admin,
				"--collector", "http://"+e.Sink, "--flush-interval", "5s", "--log-level", "warn")
		}},
		{name: "meshproxy-notel", start: func(e env) (*exec.Cmd, error) {
			// No collector: HDR histograms are still recorded, but no spans
			// are made and nothing is flushed.
			return startPinned(proxyCPU, filepath.Join(e.Dir, "meshproxy.log"), goOneCore,
				filepath.Join(e.Root, "bin/meshproxy"), "--service", "bench",
				"--inbound", e.Listen, "--app", e.Backend, "--admin", e.Admin, "--log-level", "warn")
		}},
		{name: "bare-go", start: func(e env) (*exec.Cmd, error) {
			return startPinned(proxyCPU, filepath.Join(e.Dir, "bareproxy.log"), goOneCore,
				filepath.Join(e.Root, "bin/bench/bareproxy"), "-listen", e.Listen, "-backend", e.Backend,
				"-idle", fmt.Sprint(e.Idle))
		}},
		{name: "haproxy", start: func(e env) (*exec.Cmd, error) {
			cfg, err := render(e, "haproxy.cfg")
			if err != nil {
				return nil, err
			}
			return startPinned(proxyCPU, filepath.Join(e.Dir, "haproxy.log"), nil, "haproxy", "-db", "-f", cfg)
		}},
		{name: "nginx", start: func(e env) (*exec.Cmd, error) {
			cfg, err := render(e, "nginx.conf")
			if err != nil {
				return nil, err
			}
			return startPinned(proxyCPU, filepath.Join(e.Dir, "nginx.log"), nil, "nginx", "-e", "stderr", "-p", e.Dir, "-c", cfg)
		}},
		{name: "caddy", start: func(e env) (*exec.Cmd, error) {
			cfg, err := render(e, "Caddyfile")
			if err != nil {
				return nil, err
			}
			xdg := []string{"GOMAXPROCS=1", "XDG_DATA_HOME=" + e.Dir, "XDG_CONFIG_HOME=" + e.Dir, "HOME=" + e.Dir}
			return startPinned(proxyCPU, filepath.Join(e.Dir, "caddy.log"), xdg,
				"caddy", "run", "--adapter", "caddyfile", "--config", cfg)
		}},
	}
}

// render fills bench/configs/NAME with e and writes it to the scratch dir.
func render(e env, name string) (string, error) {
	t, err := template.ParseFiles(filepath.Join(e.Root, "bench/configs", name))
	if err != nil {
		return "", err
	}
	out := filepath.Join(e.Dir, name)
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := t.Execute(f, e); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return out, f.Close()
}
