// Command meshproxy is the meshlens sidecar: it forwards a service's inbound
// and outbound traffic and measures every hop.
//
//	meshproxy --config FILE
//	meshproxy --service NAME --inbound ADDR --app ADDR [--outbound ADDR --upstream NAME=HOST:PORT[,...]]
//	          [--admin ADDR] [--collector URL] [--flush-interval DURATION]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshlens/meshlens/proxy"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("meshproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var q proxy.QuickStart
	configPath := fs.String("config", "", "YAML config `file` (reloaded on SIGHUP and when it changes)")
	fs.StringVar(&q.Service, "service", "", "name of the service this sidecar serves")
	fs.StringVar(&q.Inbound, "inbound", "", "listen `addr` for callers of the service")
	fs.StringVar(&q.App, "app", "", "the local app's `addr` (HOST:PORT)")
	fs.StringVar(&q.Outbound, "outbound", "", "listen `addr` for the app's outgoing calls")
	fs.Var((*listFlag)(&q.Upstreams), "upstream", "upstream service `NAME=HOST:PORT[,HOST:PORT...]` (repeatable)")
	fs.StringVar(&q.Admin, "admin", "", "admin listen `addr` (/ready, /live, /metrics, /stats, /config)")
	fs.StringVar(&q.Collector, "collector", "", "collector base `URL` (e.g. http://127.0.0.1:4318)")
	fs.DurationVar(&q.FlushInterval, "flush-interval", 0, "histogram flush interval (default 10s)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meshproxy: unexpected arguments %q\n", fs.Args())
		return 2
	}

	var cfg proxy.Config
	var err error
	if *configPath != "" {
		quick := false
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "config" && f.Name != "log-level" {
				quick = true
			}
		})
		if quick {
			fmt.Fprintln(stderr, "meshproxy: use either --config or the quick-start flags, not both")
			return 2
		}
		cfg, err = proxy.LoadConfig(*configPath)
	} else {
		cfg, err = q.Config()
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshproxy: %v\n", err)
		return 2
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "meshproxy: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	reg := prometheus.NewRegistry()
	// The collectors package would link database/sql into the sidecar; these
	// are the same collectors without it.
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{})) //nolint:staticcheck
	sink, admin, err := newTelemetry(cfg, log, reg)
	if err != nil {
		fmt.Fprintf(stderr, "meshproxy: telemetry: %v\n", err)
		return 1
	}
	p, err := proxy.New(proxy.Options{
		Config:        cfg,
		ConfigPath:    *configPath,
		Logger:        log,
		Registry:      reg,
		Sink:          sink,
		AdminHandlers: admin,
	})
	if err != nil {
		fmt.Fprintf(stderr, "meshproxy: %v\n", err)
		return 2
	}
	if err := p.Start(); err != nil {
		fmt.Fprintf(stderr, "meshproxy: %v\n", err)
		return 1
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if *configPath == "" {
				log.Warn("SIGHUP ignored: no --config file to reload")
				continue
			}
			_ = p.ReloadFile() // logged and counted by the proxy
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		if err := p.Shutdown(context.Background()); err != nil {
			log.Warn("shutdown", "err", err)
		}
		log.Info("stopped")
		return 0
	}
	return 0
}
