package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshlens/meshlens/store"
)

// IntervalClock places stored rollups at the middle of the flush interval
// they came from. A rollup's Source is "INSTANCE/SEQ" (one per interval of
// one sidecar) and a sidecar's intervals follow each other with no gap at
// its flush interval, so one (seq, start) pair read from the sidecar's
// /stats dates every interval of that sidecar. The store keeps only the
// minute; this gives the demo's report the flush interval's resolution.
type IntervalClock struct {
	mu      sync.Mutex
	anchors map[string]anchor // by instance
}

type anchor struct {
	seq   uint64
	start time.Time
	every time.Duration
}

// NewIntervalClock returns a clock with no sidecar known yet.
func NewIntervalClock() *IntervalClock { return &IntervalClock{anchors: map[string]anchor{}} }

// Observe reads a sidecar's /stats and records its last interval.
func (c *IntervalClock) Observe(ctx context.Context, adminAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/stats", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sidecar stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sidecar stats: %s", resp.Status)
	}
	var st struct {
		Instance      string  `json:"instance"`
		FlushInterval float64 `json:"flush_interval_seconds"`
		LastInterval  struct {
			Seq   uint64    `json:"seq"`
			Start time.Time `json:"start"`
		} `json:"last_interval"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("sidecar stats: %w", err)
	}
	if st.LastInterval.Seq == 0 || st.Instance == "" || st.FlushInterval <= 0 {
		return nil // no interval flushed yet
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.anchors[st.Instance] = anchor{seq: st.LastInterval.Seq, start: st.LastInterval.Start, every: time.Duration(st.FlushInterval * float64(time.Second))}
	return nil
}

// Middle is the middle of the interval a rollup came from; ok is false when
// the rollup's sidecar was never observed. A window then takes the
// intervals whose greater part falls in it.
func (c *IntervalClock) Middle(r store.Rollup) (time.Time, bool) {
	inst, seqS, found := strings.Cut(r.Source, "/")
	if !found {
		return time.Time{}, false
	}
	seq, err := strconv.ParseUint(seqS, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	c.mu.Lock()
	a, ok := c.anchors[inst]
	c.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	return a.start.Add(time.Duration(int64(seq)-int64(a.seq))*a.every + a.every/2), true
}
