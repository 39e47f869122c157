package meshlensextension

import (
	"context"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// startCompactor runs the store's compactor (store/rollup.Compactor) until
// Shutdown: it builds the compactions of every minute and hour of every
// service as they close, in bounded batches, so that latency and
// percentile queries read a few pre-merged periods instead of every rollup,
// and none pays for building them, after a restart or for a window never
// asked for before. It lives here, with the store, rather than on the
// rollup write path: it needs no state from the writes (the store keeps
// which periods changed since they were compacted), it also picks up
// rollups written by other collectors sharing the database, and a slow
// build never holds up ingest.
func (e *Extension) startCompactor(st store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.mu.Lock()
	e.stopCompactor, e.compactorDone = cancel, done
	e.mu.Unlock()
	c := &rollup.Compactor{Store: st, Logger: e.logger}
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
}

// stopCompactorAndWait stops the compactor and waits for it, so that the
// store is closed only after its last build.
func (e *Extension) stopCompactorAndWait() {
	e.mu.Lock()
	stop, done := e.stopCompactor, e.compactorDone
	e.stopCompactor, e.compactorDone = nil, nil
	e.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}
