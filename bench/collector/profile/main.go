// Command profile runs the meshlens collector in-process (the embedded
// default config, like `meshlens collector`) with a CPU profile, for
// finding where bench/collector/run.sh's CPU goes:
//
//	go run ./bench/collector/profile -cpuprofile /tmp/col.prof -duration 25s \
//	    -database-url postgres://... -set receivers::otlp::protocols::grpc::endpoint=127.0.0.1:14317
//	go tool pprof -top /tmp/col.prof
//
// -memprofile FILE also writes where the run allocated (go tool pprof
// -sample_index=alloc_space -top FILE).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/meshlens/meshlens/collector"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var o collector.Options
	var sets list
	out := flag.String("cpuprofile", "collector.prof", "CPU profile `file`")
	memOut := flag.String("memprofile", "", "also write an allocation profile (go tool pprof -sample_index=alloc_space) to `file`")
	d := flag.Duration("duration", 30*time.Second, "how long to run")
	flag.StringVar(&o.DataDir, "data-dir", "", "data `DIR`")
	flag.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL `URL`")
	flag.Var(&sets, "set", "config override `KEY=VALUE` (repeatable)")
	flag.Parse()
	o.Set = sets
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *d)
	defer cancel()
	err = collector.Run(ctx, o)
	pprof.StopCPUProfile()
	f.Close()
	if *memOut != "" {
		if err := writeHeap(*memOut); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			os.Exit(1)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
