package collector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/queryapi"
)

// metricValue reads one sample of the collector's /metrics, 0 when absent.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// TestOTLPGRPCCountedAndRedacted: spans sent over OTLP gRPC (the stock otlp
// receiver on 4317) are counted in meshlens_collector_received_total like
// those over OTLP/HTTP, and their Authorization and Cookie attributes never
// reach the store.
func TestOTLPGRPCCountedAndRedacted(t *testing.T) {
	c := startCollector(t)
	const received = `meshlens_collector_received_total{signal="spans"}`
	before := metricValue(t, c.metrics, received)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "grpc-sender")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	traceID := [16]byte{0xab, 0xcd, 1, 2, 3}
	now := time.Now()
	for i := range 3 {
		sp := ss.AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID([8]byte{9, byte(i + 1)})
		sp.SetName(fmt.Sprintf("op%d", i))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("http.request.header.authorization", "Bearer grpc-secret")
		a.PutStr("http.request.header.cookie", "sid=grpc-secret")
		a.PutStr("Cookie", "sid=grpc-secret")
		a.PutStr("http.route", "/kept")
	}
	conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, c.metrics, received); got != before+3 {
		t.Errorf("%s went %v -> %v after 3 spans over gRPC, want +3", received, before, got)
	}

	var tr queryapi.Trace
	eventually(t, 30*time.Second, func() error {
		tr = queryapi.Trace{}
		code, body := httpGet(t, "http://"+c.api+"/api/v1/traces/"+pcommon.TraceID(traceID).String(), "", &tr)
		if code != 200 || len(tr.Spans) != 3 {
			return fmt.Errorf("trace: %d, %d spans of 3 (%.200s)", code, len(tr.Spans), body)
		}
		return nil
	})
	for _, s := range tr.Spans {
		if s.Attributes["http.route"] != "/kept" {
			t.Errorf("span %s: attributes %v lack http.route", s.SpanID, s.Attributes)
		}
		for k, v := range s.Attributes {
			if strings.Contains(v, "grpc-secret") {
				t.Errorf("span %s: stored %s=%q holds the credential", s.SpanID, k, v)
			}
		}
	}
}

// TestSpanCounter: spans the pipeline refuses are counted as rejected,
// retryable refusals as overloaded, permanent ones as pipeline_refused.
func TestSpanCounter(t *testing.T) {
	m, err := health.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	f := func(next consumer.Traces, series prometheus.Counter) {
		t.Helper()
		c := &spanCounter{next: next}
		c.health.Store(m)
		before := testutil.ToFloat64(series)
		_ = c.ConsumeTraces(context.Background(), td)
		if got := testutil.ToFloat64(series); got != before+1 {
			t.Errorf("%v -> %v, want +1", before, got)
		}
	}
	f(consumertest.NewNop(), m.Received.WithLabelValues("spans"))
	f(consumertest.NewErr(errors.New("data refused due to high memory usage")), m.Rejected.WithLabelValues("spans", "overloaded"))
	f(consumertest.NewErr(consumererror.NewPermanent(errors.New("bad"))), m.Rejected.WithLabelValues("spans", "pipeline_refused"))
}

// TestOTLPGRPCIngestToken: with an ingest token, the stock otlp receiver on
// 4317 (auth: meshlens, as in the default config) refuses a sender without
// it with UNAUTHENTICATED and takes spans from one with it; with an API
// token, the query API answers 401 without it and 200 with it.
func TestOTLPGRPCIngestToken(t *testing.T) {
	const token, apiToken = "grpc-ingest-token-0123456789", "query-api-token-0123456789"
	c := startCollector(t, "extensions::meshlens::ingest_token="+token, "extensions::meshlens::api::auth_token="+apiToken)
	for _, tok := range []string{"", "wrong-token-0123456789", apiToken} {
		want := 401
		if tok == apiToken {
			want = 200
		}
		if code, body := httpGet(t, "http://"+c.api+"/api/v1/services", tok, nil); code != want {
			t.Errorf("query API with token %q: %d %.100s, want %d", tok, code, body, want)
		}
	}
	conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{7})
	sp.SetSpanID([8]byte{7})
	client := ptraceotlp.NewGRPCClient(conn)
	export := func(auth string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if auth != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
		}
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		if err := export(auth); status.Code(err) != codes.Unauthenticated {
			t.Errorf("authorization %q: %v, want UNAUTHENTICATED", auth, err)
		}
	}
	const received = `meshlens_collector_received_total{signal="spans"}`
	before := metricValue(t, c.metrics, received)
	if err := export("Bearer " + token); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if got := metricValue(t, c.metrics, received); got != before+1 {
		t.Errorf("%s went %v -> %v, want +1", received, before, got)
	}
}
