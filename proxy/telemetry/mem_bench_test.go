package telemetry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
)

// proxyLatencies are latencies shaped like a proxy's traffic: log-normal
// around 800 µs, a tail to tens of milliseconds.
func proxyLatencies(n int, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(800 * math.Exp(rng.NormFloat64()*0.8))
	}
	return out
}

// BenchmarkHistRecord compares one RecordValue into the dense and the
// sparse histogram, on proxy-shaped latencies and on the log-uniform 1 µs –
// 10 s spread of the recorder tests (the sparse form's worst case).
func BenchmarkHistRecord(b *testing.B) {
	ss := samples(1<<16, 1, 5)
	wide := make([]int64, len(ss))
	for i, s := range ss {
		wide[i] = min(max(s.total.Microseconds(), 1), 3_600_000_000)
	}
	for _, d := range []struct {
		name string
		vs   []int64
	}{{"proxy", proxyLatencies(1<<16, 3)}, {"wide", wide}} {
		b.Run("dense/"+d.name, func(b *testing.B) {
			h := hdr.New()
			for i := 0; i < b.N; i++ {
				_ = h.RecordValue(d.vs[i&(1<<16-1)])
			}
		})
		b.Run("packed/"+d.name, func(b *testing.B) {
			h := hdr.NewPacked()
			for i := 0; i < b.N; i++ {
				_ = h.RecordValue(d.vs[i&(1<<16-1)])
			}
		})
	}
}

// BenchmarkMemoryPerKey reports the heap a hop key holds once it has seen
// a few intervals of traffic: keys hop keys, each recording 1000
// proxy-shaped requests per interval, rotated three times (HeapInuse delta
// divided by keys). Measured 2026-11-26 on the shared 2-core machine:
// 1,160,397 B/key with dense since-start sets, 610,714 B/key with sparse
// ones (the rest is the active key's dense interval set, 3 × 188 KB).
func BenchmarkMemoryPerKey(b *testing.B) {
	const keys = 20
	lat := proxyLatencies(1000, 9)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tel, err := New(Config{SamplingRatio: ratio(0)}, "checkout", nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for round := 0; round < 3; round++ {
			for k := 0; k < keys; k++ {
				key := hopKey(fmt.Sprintf("/r%d", k), "GET", "2xx")
				for _, v := range lat {
					d := time.Duration(v) * time.Microsecond
					tel.Finish(&Hop{Key: key, Total: d, Upstream: d * 9 / 10})
				}
			}
			tel.hist.rotate(time.Now())
		}
		// One more interval in progress, as in a running proxy.
		for k := 0; k < keys; k++ {
			key := hopKey(fmt.Sprintf("/r%d", k), "GET", "2xx")
			for _, v := range lat[:100] {
				d := time.Duration(v) * time.Microsecond
				tel.Finish(&Hop{Key: key, Total: d, Upstream: d * 9 / 10})
			}
		}
		_ = tel.Stats()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/keys, "heapB/key")
		runtime.KeepAlive(tel)
	}
}
