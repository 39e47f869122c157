package telemetry

import (
	"context"
	"slices"
	"testing"
	"time"
)

// With the collector black-holed (it accepts connections and never
// answers), Finish keeps its speed while both senders are stuck, what does
// not fit is dropped and counted, and Shutdown returns when its context
// ends.
func TestBlackHoledCollectorNeverBlocks(t *testing.T) {
	bh := newBlackHole(t)
	tel := newTest(t, Config{
		Collector:     "http://" + bh.ln.Addr().String(),
		FlushInterval: 100 * time.Millisecond,
		SpanQueueSize: 1024,
	}, func(tel *Telemetry) {
		// Stuck far longer than the test: a Finish that waited on a sender
		// could not finish its block in time.
		tel.hist.client.Timeout = time.Minute
	})
	keys := testKeys(4)
	ss := samples(4096, len(keys), 7)
	hops := make([]Hop, len(ss))
	for i, s := range ss {
		hops[i] = Hop{Key: keys[s.key], Total: s.total, Upstream: s.upstream, Sampled: true, GRPCStatus: -1}
		hops[i].SpanID[7] = byte(i)
	}
	// Both senders stuck in a request the collector never answers.
	tel.Finish(&hops[0])
	eventually(t, 20*time.Second, "both senders connected to the black hole", func() bool { return bh.accepted() >= 2 })

	// A bounded loop of Finish calls, timed in blocks of 256 calls. With
	// the senders stuck for a minute, no block may wait on them: the slowest
	// block (scheduling and GC included, on a loaded machine) must stay far
	// below that.
	const rounds = 400
	blocks := make([]time.Duration, 0, rounds)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < rounds && time.Now().Before(deadline); i++ {
		start := time.Now()
		for j := range 256 {
			tel.Finish(&hops[(i*256+j)%len(hops)])
		}
		blocks = append(blocks, time.Since(start))
	}
	slices.Sort(blocks)
	median, worst := blocks[len(blocks)/2], blocks[len(blocks)-1]
	t.Logf("256 Finish calls: median %v, worst %v over %d blocks; spans dropped %d", median, worst, len(blocks), tel.spans.dropFull.Load())
	if len(blocks) < rounds {
		t.Fatalf("only %d of %d blocks in 10s: Finish is blocking", len(blocks), rounds)
	}
	if worst > 2*time.Second {
		t.Errorf("slowest block of 256 Finish calls took %v: Finish waited on the sender", worst)
	}
	if tel.spans.dropFull.Load() == 0 {
		t.Error("span queue never filled while the exporter was stuck")
	}
	if bh.accepted() < 2 {
		t.Errorf("senders did not reach the black hole")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tel.Shutdown(ctx)
	took := time.Since(start)
	if err == nil {
		t.Error("Shutdown reported success with a black-holed collector")
	}
	if took > 2*time.Second {
		t.Errorf("Shutdown took %v with a 300ms context", took)
	}
	t.Logf("Shutdown took %v: %v", took, err)
	if tel.hist.dropStop.Load() == 0 {
		t.Error("intervals unsent at shutdown not counted")
	}
}
