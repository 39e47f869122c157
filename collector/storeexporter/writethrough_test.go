package storeexporter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder is a group write that records the groups it is given.
type recorder struct {
	mu     sync.Mutex
	groups [][]*spanRequest
	err    error
}

func (r *recorder) write(_ context.Context, reqs []*spanRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, append([]*spanRequest(nil), reqs...))
	return r.err
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, g := range r.groups {
		n := 0
		for _, req := range g {
			n += req.n
		}
		out = append(out, n)
	}
	return out
}

// submitAll submits reqs at once and returns each one's result.
func submitAll(w *groupWriter, reqs []*spanRequest) []error {
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { errs[i] = w.submit(context.Background(), r) })
	}
	wg.Wait()
	return errs
}

func requests(n, spans int) []*spanRequest {
	reqs := make([]*spanRequest, n)
	for i := range reqs {
		reqs[i] = &spanRequest{n: spans}
	}
	return reqs
}

// Requests that arrive within the linger are written as one group, and
// each sender learns its group's result.
func TestGroupWriterGroups(t *testing.T) {
	rec := &recorder{}
	w := newGroupWriter(WriteThroughConfig{Enabled: true, Linger: time.Second, MaxSpans: 1000, Timeout: time.Second}, rec.write)
	defer w.shutdown()
	for i, err := range submitAll(w, requests(10, 100)) {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := rec.sizes(); len(got) != 1 || got[0] != 1000 {
		t.Errorf("groups of %v spans, want one of 1000", got)
	}

	rec.err = errors.New("store down")
	for i, err := range submitAll(w, requests(3, 1)) {
		if !errors.Is(err, rec.err) {
			t.Errorf("request %d: %v, want the group's error", i, err)
		}
	}
}

// A group is written as soon as it holds max_spans, without waiting out
// the linger.
func TestGroupWriterMaxSpans(t *testing.T) {
	rec := &recorder{}
	w := newGroupWriter(WriteThroughConfig{Enabled: true, Linger: time.Hour, MaxSpans: 300, Timeout: time.Second}, rec.write)
	defer w.shutdown()
	done := make(chan []error)
	go func() { done <- submitAll(w, requests(6, 100)) }()
	select {
	case errs := <-done:
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("full groups waited for the linger")
	}
	if got := rec.sizes(); len(got) != 2 || got[0] != 300 || got[1] != 300 {
		t.Errorf("groups of %v spans, want two of 300", got)
	}
}

// The senders that queue up while a write is slow go in one group after
// it, though their linger has passed.
func TestGroupWriterBacklog(t *testing.T) {
	rec := &recorder{}
	release := make(chan struct{})
	first := true
	w := newGroupWriter(WriteThroughConfig{Enabled: true, Linger: 10 * time.Millisecond, MaxSpans: 1000, Timeout: time.Minute},
		func(ctx context.Context, reqs []*spanRequest) error {
			if first {
				first = false
				<-release // a slow write
			}
			return rec.write(ctx, reqs)
		})
	defer w.shutdown()
	firstDone := make(chan error)
	go func() { firstDone <- w.submit(context.Background(), &spanRequest{n: 1}) }()
	time.Sleep(100 * time.Millisecond) // the first group is being written
	done := make(chan []error)
	go func() { done <- submitAll(w, requests(8, 1)) }()
	time.Sleep(200 * time.Millisecond) // the 8 wait for the writer, their linger past
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	for i, err := range <-done {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if got := rec.sizes(); len(got) != 2 || got[0] != 1 || got[1] != 8 {
		t.Errorf("groups of %v spans, want 1 then 8", got)
	}
}

// shutdown writes the group it holds; after it, submit says so at once.
func TestGroupWriterShutdown(t *testing.T) {
	rec := &recorder{}
	w := newGroupWriter(WriteThroughConfig{Enabled: true, Linger: time.Hour, MaxSpans: 1000, Timeout: time.Second}, rec.write)
	errc := make(chan error)
	go func() { errc <- w.submit(context.Background(), &spanRequest{n: 5}) }()
	time.Sleep(200 * time.Millisecond) // the writer takes the request and waits out the linger
	w.shutdown()
	if err := <-errc; err != nil {
		t.Errorf("request taken before shutdown: %v", err)
	}
	if got := rec.sizes(); len(got) != 1 || got[0] != 5 {
		t.Errorf("groups of %v spans, want one of 5", got)
	}
	if err := w.submit(context.Background(), &spanRequest{n: 1}); !errors.Is(err, errWriterStopped) {
		t.Errorf("after shutdown: %v, want errWriterStopped", err)
	}
	w.shutdown() // a second shutdown is harmless
}

// A sender that gives up before its request is taken gets errNotTaken.
func TestGroupWriterSenderGivesUp(t *testing.T) {
	block := make(chan struct{})
	w := newGroupWriter(WriteThroughConfig{Enabled: true, Linger: 0, MaxSpans: 1, Timeout: time.Minute},
		func(context.Context, []*spanRequest) error { <-block; return nil })
	defer w.shutdown()
	defer close(block)
	go func() { _ = w.submit(context.Background(), &spanRequest{n: 1}) }() // holds the writer
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	time.Sleep(50 * time.Millisecond)
	if err := w.submit(ctx, &spanRequest{n: 1}); !errors.Is(err, errNotTaken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("submit with the writer busy past the sender's deadline: %v", err)
	}
}
