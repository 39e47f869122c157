package storeexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// groupWriter is the write-through (Config.WriteThrough): requests that
// arrive within Linger of each other are written to the store as one
// group, by one goroutine, and each request's sender waits for its group's
// write. A sender is answered once its spans are in the store: nothing
// acknowledged waits on the collector's disk, and nothing is written to
// that disk and read back while the store keeps up.
type groupWriter struct {
	cfg   WriteThroughConfig
	write func(context.Context, []*spanRequest) error

	in       chan *pendingWrite
	stop     chan struct{} // closed by shutdown
	stopOnce sync.Once
	stopped  chan struct{} // closed when run has returned
}

// pendingWrite is one request waiting for its group.
type pendingWrite struct {
	req  *spanRequest
	at   time.Time  // when it arrived: its group is written by at+Linger
	done chan error // the group's result, sent once
}

// errNotTaken is the error of a request the writer did not take: the
// writer had stopped, or the sender gave up while waiting for it.
var (
	errNotTaken      = errors.New("meshlens_store: not taken by the write-through")
	errWriterStopped = fmt.Errorf("%w: it has stopped", errNotTaken)
)

func newGroupWriter(cfg WriteThroughConfig, write func(context.Context, []*spanRequest) error) *groupWriter {
	w := &groupWriter{cfg: cfg, write: write, in: make(chan *pendingWrite), stop: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// submit waits until req's group is written and returns the write's
// error; or, without taking req, errWriterStopped if the writer has
// stopped, or errNotTaken with ctx's error if the sender gives up first.
// Once taken, the wait is for the group (at most Linger and Timeout), not
// for ctx, so that every request taken is either written or handed back.
func (w *groupWriter) submit(ctx context.Context, req *spanRequest) error {
	p := &pendingWrite{req: req, at: time.Now(), done: make(chan error, 1)}
	select {
	case w.in <- p:
	case <-w.stop:
		return errWriterStopped
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errNotTaken, ctx.Err())
	}
	return <-p.done
}

// shutdown writes what has been taken and stops taking more.
func (w *groupWriter) shutdown() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.stopped
}

func (w *groupWriter) run() {
	defer close(w.stopped)
	var group []*pendingWrite
	for {
		spans := 0
		group = group[:0]
		select {
		case p := <-w.in:
			group, spans = append(group, p), p.req.n
		case <-w.stop:
			return
		}
		timer := time.NewTimer(time.Until(group[0].at.Add(w.cfg.Linger)))
	collect:
		for spans < w.cfg.MaxSpans {
			var p *pendingWrite
			select {
			case p = <-w.in:
				// A sender waiting already joins even past the linger:
				// after a slow write the senders that queued up meanwhile
				// go in one group, not one by one.
			default:
				select {
				case p = <-w.in:
				case <-timer.C:
					break collect
				case <-w.stop:
					break collect
				}
			}
			group, spans = append(group, p), spans+p.req.n
		}
		timer.Stop()
		w.flush(group)
		clear(group) // the requests belong to their senders again
	}
}

func (w *groupWriter) flush(group []*pendingWrite) {
	reqs := make([]*spanRequest, len(group))
	for i, p := range group {
		reqs[i] = p.req
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	err := w.write(ctx, reqs)
	cancel()
	for _, p := range group {
		p.done <- err
	}
}

// inflight counts the senders inside the write-through, so that shutdown
// can wait for those whose group failed to hand their request to the
// sending queue before the queue shuts down.
type inflight struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter reports false once closed.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

func (f *inflight) leave() { f.wg.Done() }

// close stops new entries and waits for those inside to leave.
func (f *inflight) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}
