// Command load sends OTLP/gRPC span batches at a fixed rate for a fixed
// time: the load of bench/collector/run.sh. telemetrygen does not keep up
// with 10,000 spans/s on a busy 2-core machine (its SDK pipeline costs more
// than the collectors it loads), so this sender builds each request from a
// template, changing only the IDs and times, and spends almost nothing per
// span.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4317", "collector OTLP/gRPC `addr`")
	rate := flag.Int("rate", 10000, "spans per second")
	batch := flag.Int("batch", 100, "spans per request")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	service := flag.String("service", "bench", "service.name of the spans")
	flag.Parse()
	if *rate <= 0 || *batch <= 0 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "load: -rate, -batch and -duration must be positive")
		os.Exit(2)
	}
	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	var seq atomic.Uint64
	seed := uint64(time.Now().UnixNano())
	build := func() ptraceotlp.ExportRequest {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", *service)
		ss := rs.ScopeSpans().AppendEmpty()
		now := time.Now()
		var tid pcommon.TraceID
		var parent pcommon.SpanID
		for i := 0; i < *batch; i++ {
			n := seq.Add(1)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], n^seed)
			if i%10 == 0 {
				binary.BigEndian.PutUint64(tid[:8], seed)
				binary.BigEndian.PutUint64(tid[8:], n)
				parent = sid
			}
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			if i%10 != 0 {
				sp.SetParentSpanID(parent)
			}
			sp.SetName("bench-op")
			sp.SetKind(ptrace.SpanKindServer)
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutStr("url.path", "/bench")
			sp.Attributes().PutInt("http.response.status_code", 200)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		}
		return ptraceotlp.NewExportRequestFromTraces(td)
	}

	requests := int(duration.Seconds() * float64(*rate) / float64(*batch))
	interval := time.Duration(float64(time.Second) * float64(*batch) / float64(*rate))
	var sent, failed atomic.Int64
	// How long each acknowledged request took to be answered, in µs.
	var latMu sync.Mutex
	latency := hdrhistogram.New(1, time.Minute.Microseconds(), 3)
	jobs := make(chan ptraceotlp.ExportRequest, 16)
	var wg sync.WaitGroup
	// At most 32 requests in flight: enough to send 100 requests a second
	// to a collector that answers once a request is stored (meshlens'
	// write-through answers in about 100-200 ms).
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				_, err := client.Export(ctx, req)
				took := time.Since(start)
				cancel()
				if err != nil {
					failed.Add(int64(*batch))
					continue
				}
				sent.Add(int64(*batch))
				latMu.Lock()
				_ = latency.RecordValue(took.Microseconds()) // beyond a minute: left out
				latMu.Unlock()
			}
		}()
	}
	start := time.Now()
	tick := time.NewTicker(interval)
	for i := 0; i < requests; i++ {
		jobs <- build()
		<-tick.C
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	el := time.Since(start)
	ms := func(q float64) float64 { return float64(latency.ValueAtQuantile(q)) / 1000 }
	fmt.Printf("load: %d spans acknowledged, %d refused, in %v (%.0f spans/s); answered in p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		sent.Load(), failed.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(),
		ms(50), ms(99), float64(latency.Max())/1000)
	if failed.Load() > 0 {
		os.Exit(1)
	}
}
