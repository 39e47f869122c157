package collector

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meshlens/meshlens/collector/queryapi"
	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/store/postgres"
)

// TestFarFutureSpanDoesNotHoldTheStore: a span starting at the end of the
// nanosecond range (year 2262) once made every PostgreSQL write of its batch
// fail ("empty range bound" creating its day's partition), retried forever,
// so the spans beside it were never stored. Now the receivers leave it out
// and count it (gRPC: a batch of only such spans is INVALID_ARGUMENT), and
// the spans beside it are stored.
func TestFarFutureSpanDoesNotHoldTheStore(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	m, err := postgres.NewMigrator(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	c := startCollector(t, "extensions::meshlens::database_url="+url)

	traces := func(starts ...pcommon.Timestamp) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "far-future")
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		for i, st := range starts {
			sp := ss.AppendEmpty()
			sp.SetTraceID([16]byte{0xfe, byte(i)})
			sp.SetSpanID([8]byte{0xfe, byte(i + 1)})
			sp.SetStartTimestamp(st)
			sp.SetEndTimestamp(st)
		}
		return td
	}
	conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	export := func(td ptrace.Traces) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	const rejected = `meshlens_collector_rejected_total{reason="bad_timestamp",signal="spans"}`
	before := metricValue(t, c.metrics, rejected)
	now := pcommon.NewTimestampFromTime(time.Now())
	if err := export(traces(math.MaxInt64)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("only a far-future span over gRPC: %v, want INVALID_ARGUMENT", err)
	}
	if err := export(traces(now, math.MaxInt64-1)); err != nil {
		t.Fatalf("a good and a far-future span over gRPC: %v", err)
	}
	if got := metricValue(t, c.metrics, rejected); got != before+2 {
		t.Errorf("%s went %v -> %v, want +2", rejected, before, got)
	}
	id := pcommon.TraceID([16]byte{0xfe, 0}).String()
	eventually(t, 30*time.Second, func() error {
		var tr queryapi.Trace
		if code, body := httpGet(t, "http://"+c.api+"/api/v1/traces/"+id, "", &tr); code != 200 || len(tr.Spans) != 1 {
			return fmt.Errorf("the good span beside a far-future one: %d %.200s", code, body)
		}
		return nil
	})
}
