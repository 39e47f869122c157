package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshlens/meshlens/model"
)

func benchHop() Hop {
	return Hop{
		Key:   model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "frontend", Route: "/api/cart/{id}", Method: "GET", StatusClass: "2xx"},
		Start: time.Now(), Total: 850 * time.Microsecond, Upstream: 790 * time.Microsecond,
		TraceID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		ParentSpanID: [8]byte{8, 7, 6, 5, 4, 3, 2, 1}, Sampled: true,
		RequestID: "0b9c4a52-5f0e-4d43-9c0e-2b7c4d1f9a11", Method: "GET", Path: "/api/cart/42", Status: 200, GRPCStatus: -1,
		ServerAddress: "checkout:8080", PeerAddress: "10.1.2.3", UserAgent: "fortio.org/fortio-1.69.0",
		UpstreamEndpoint: "127.0.0.1:9090", Protocol: "1.1",
	}
}

func discardServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkFinish is the per-request telemetry path for a known hop key:
// with sampling 0 (histograms only) and 1.0 (histograms and a span queued;
// the queue is emptied outside the timer so pushes succeed, as they do
// when the exporter keeps up).
func BenchmarkFinish(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ratio float64
	}{{"sampling=0", 0}, {"sampling=1", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			tel, err := New(Config{Collector: "http://127.0.0.1:1", SamplingRatio: ratio(tc.ratio)}, "checkout", nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			h := benchHop()
			h.Sampled = tc.ratio > 0
			tel.Finish(&h)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.SpanID[7] = byte(i)
				tel.Finish(&h)
				if tel.spans != nil && i%2048 == 2047 {
					b.StopTimer()
					tel.spans.drain(context.Background()) // no collector: counts them as unsent
					b.StartTimer()
				}
			}
			if tel.spans != nil && tel.spans.dropFull.Load() > 0 {
				b.Fatalf("%d spans dropped: the benchmark measured the drop path", tel.spans.dropFull.Load())
			}
		})
	}
}

// BenchmarkFinishParallel is BenchmarkFinish from every P at once on a few
// hop keys: contention on the per-key mutexes.
func BenchmarkFinishParallel(b *testing.B) {
	tel, err := New(Config{SamplingRatio: ratio(0)}, "checkout", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	keys := testKeys(8)
	for _, k := range keys {
		tel.Finish(&Hop{Key: k, Total: time.Millisecond})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		h := benchHop()
		i := 0
		for pb.Next() {
			h.Key = keys[i%len(keys)]
			i++
			tel.Finish(&h)
		}
	})
}

// BenchmarkSpanExport is the exporter's cost per span, off the request
// path: encode to OTLP protobuf and POST in batches of 512 to a local
// receiver.
func BenchmarkSpanExport(b *testing.B) {
	srv := discardServer(b)
	tel, err := New(Config{Collector: srv.URL, SpanQueueSize: 4096}, "checkout", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tel.hist.client.CloseIdleConnections()
	h := benchHop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.SpanID[7] = byte(i)
		tel.spans.push(&h)
		if i%4096 == 4095 || i == b.N-1 {
			tel.spans.exportQueued(context.Background())
		}
	}
	if d := tel.spans.dropFull.Load() + tel.spans.dropFailed.Load(); d > 0 {
		b.Fatalf("%d spans dropped", d)
	}
}

// BenchmarkSpanEncode is the protobuf encoding alone, per span.
func BenchmarkSpanEncode(b *testing.B) {
	e := newSpanEncoder("checkout", "0123456789abcdef")
	h := benchHop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.add(&h)
		if e.n == maxSpansPerExport {
			_ = e.request()
			e.reset()
		}
	}
}

// BenchmarkSDKSpan is the same span through the OpenTelemetry Go SDK, for
// comparison: "request path" is starting and ending the span with the same
// attributes into a BatchSpanProcessor whose exporter discards;
// "export" adds the SDK's OTLP/HTTP exporter posting to a local receiver.
func BenchmarkSDKSpan(b *testing.B) {
	for _, mode := range []string{"request-path", "export"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			var exp sdktrace.SpanExporter = discardExporter{}
			if mode == "export" {
				srv := discardServer(b)
				var err error
				exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
				if err != nil {
					b.Fatal(err)
				}
			}
			tp := sdktrace.NewTracerProvider(
				sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(8192), sdktrace.WithBlocking()),
				sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))),
			)
			defer func() { _ = tp.Shutdown(ctx) }()
			tracer := tp.Tracer(scopeName)
			h := benchHop()
			parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: h.TraceID, SpanID: h.ParentSpanID, TraceFlags: trace.FlagsSampled, Remote: true})
			pctx := trace.ContextWithRemoteSpanContext(ctx, parent)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, span := tracer.Start(pctx, "GET /api/cart/{id}",
					trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(h.Start),
					trace.WithAttributes(
						attribute.String("http.request.method", h.Method),
						attribute.Int("http.response.status_code", h.Status),
						attribute.String("url.path", h.Path),
						attribute.String("http.route", h.Key.Route),
						attribute.String("server.address", h.ServerAddress),
						attribute.String("network.peer.address", h.PeerAddress),
						attribute.String("user_agent.original", h.UserAgent),
						attribute.String("network.protocol.version", h.Protocol),
						attribute.String("meshlens.request_id", h.RequestID),
						attribute.StringSlice("http.request.header.x-request-id", []string{h.RequestID}),
						attribute.String("meshlens.upstream.endpoint", h.UpstreamEndpoint),
						attribute.String("meshlens.hop.direction", string(h.Key.Direction)),
						attribute.String("meshlens.peer.service", h.Key.Peer),
					))
				if h.Status >= 500 {
					span.SetStatus(codes.Error, "")
				}
				span.End(trace.WithTimestamp(h.Start.Add(h.Total)))
			}
			if err := tp.ForceFlush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkRotate is one hop key's share of a flush: swap, encode the three
// interval histograms, merge them into the cumulative set, summarise.
func BenchmarkRotate(b *testing.B) {
	tel, err := New(Config{}, "checkout", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ss := samples(20000, 1, 11)
	k := hopKey("/a", "GET", "2xx")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, s := range ss {
			tel.Finish(&Hop{Key: k, Total: s.total, Upstream: s.upstream})
		}
		b.StartTimer()
		tel.hist.rotate(time.Now())
	}
}
