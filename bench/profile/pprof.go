//go:build meshproxy_pprof

// This file is compiled into cmd/meshproxy only by bench/profile/run.sh
// (go build -overlay, tag meshproxy_pprof): it serves net/http/pprof on
// $MESHPROXY_PPROF so the real binary can be profiled under load, with
// mutex and block profiling on (one event in 10, blocking ≥ 100 µs).
package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

func init() {
	if addr := os.Getenv("MESHPROXY_PPROF"); addr != "" {
		runtime.SetMutexProfileFraction(10)
		runtime.SetBlockProfileRate(100_000)
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
