package telemetry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshlens/meshlens/model"
)

// recordSome records ss spread over the given time, so that they fall into
// several intervals.
func recordSome(tel *Telemetry, keys []model.HopKey, ss []sample, over time.Duration) {
	const chunks = 10
	per := len(ss) / chunks
	for c := range chunks {
		for _, s := range ss[c*per : (c+1)*per] {
			tel.Finish(&Hop{Key: keys[s.key], Total: s.total, Upstream: s.upstream, GRPCStatus: -1})
		}
		time.Sleep(over / chunks)
	}
}

// checkSeqs checks that intervals from..to, and only those, arrived. Delivery
// is at least once: a post whose answer was lost (a network error or a
// cancelled request, e.g. on a loaded machine or at Shutdown) is sent again,
// and the collector drops the copy by (instance, seq). So an interval may
// arrive twice only when the sender saw such a failure.
func checkSeqs(t *testing.T, tel *Telemetry, r *histReceiver, from, to uint64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	resendsAllowed := tel.hist.errNetwork.Load() > 0
	for seq, n := range r.received {
		if n != 1 && !(n == 2 && resendsAllowed) {
			t.Errorf("interval %d received %d times (network errors seen by the sender: %d)", seq, n, tel.hist.errNetwork.Load())
		}
		if seq < from || seq > to {
			t.Errorf("interval %d received, want only %d..%d", seq, from, to)
		}
	}
	if len(r.received) != int(to-from+1) {
		seqs := make([]uint64, 0, len(r.received))
		for s := range r.received {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		t.Errorf("received intervals %v, want every one of %d..%d", seqs, from, to)
	}
}

// Histograms flushed every interval reach a receiver that decodes them with
// hdr.DecodeBatch; merged, they equal a serial recording, and every interval
// arrives once with consecutive seqs.
func TestFlushToReceiver(t *testing.T) {
	r := newHistReceiver(t)
	r.token = "s3cret"
	tel := newTest(t, Config{Collector: r.srv.URL + "/", Token: r.token, FlushInterval: 100 * time.Millisecond, SamplingRatio: ratio(0)})
	keys := testKeys(6)
	ss := samples(30000, len(keys), 3)
	recordSome(tel, keys, ss, 450*time.Millisecond)
	eventually(t, 20*time.Second, "3 intervals", func() bool {
		seq, _, _ := tel.hist.lastInterval()
		return seq >= 3
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	seq, _, _ := tel.hist.lastInterval()
	checkSeqs(t, tel, r, 1, seq)
	if r.instance != tel.Instance() {
		t.Errorf("instance %q, want %q", r.instance, tel.Instance())
	}
	sameSets(t, serial(keys, ss), r.merged())
	if got := tel.hist.sentIvs.Load(); got != seq {
		t.Errorf("sent counter %d, want %d", got, seq)
	}
}

// The interval in progress at Shutdown is sent too.
func TestShutdownFlushesPartialInterval(t *testing.T) {
	r := newHistReceiver(t)
	tel := newTest(t, Config{Collector: r.srv.URL, FlushInterval: time.Hour, Backlog: time.Hour, SamplingRatio: ratio(0)})
	keys := testKeys(2)
	ss := samples(1000, 2, 4)
	recordSome(tel, keys, ss, 0)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, tel, r, 1, 1)
	sameSets(t, serial(keys, ss), r.merged())
}

// A collector that is down for several intervals and then comes back gets
// every interval exactly once, in consecutive seqs.
func TestCollectorDownThenUp(t *testing.T) {
	for _, mode := range []string{"503", "429", "refused"} {
		t.Run(mode, func(t *testing.T) {
			r := newHistReceiver(t)
			url := r.srv.URL
			var down atomic.Bool
			down.Store(true)
			comeUp := func() { down.Store(false) }
			switch mode {
			case "503", "429":
				r.setFail(func() int {
					switch {
					case !down.Load():
						return 0
					case mode == "503":
						return http.StatusServiceUnavailable
					}
					return http.StatusTooManyRequests
				})
			case "refused":
				// A port nothing listens on until the collector comes up.
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				url = "http://" + addr
				up := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
				comeUp = func() {
					ln2, err := net.Listen("tcp", addr)
					if err != nil {
						t.Fatalf("listen again on %s: %v", addr, err)
					}
					up.Listener.Close()
					up.Listener = ln2
					up.Start()
					t.Cleanup(up.Close)
					down.Store(false)
				}
			}
			tel := newTest(t, Config{Collector: url, FlushInterval: 100 * time.Millisecond, SamplingRatio: ratio(0)})
			h := tel.hist
			flushErrors := func() uint64 { return h.errNetwork.Load() + h.err4xx.Load() + h.err5xx.Load() }
			keys := testKeys(3)
			ss := samples(3000, 3, 5)
			recordSome(tel, keys, ss, 500*time.Millisecond)
			eventually(t, 20*time.Second, "failed flushes", func() bool {
				seq, _, _ := h.lastInterval()
				return flushErrors() >= 3 && seq >= 5
			})
			comeUp()
			eventually(t, 20*time.Second, "backlog sent", func() bool {
				seq, _, _ := h.lastInterval()
				return h.backlogLen() == 0 && r.count() >= int(seq)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			seq, _, _ := h.lastInterval()
			checkSeqs(t, tel, r, 1, seq)
			sameSets(t, serial(keys, ss), r.merged())
			if d := h.dropFull.Load() + h.dropReject.Load(); d != 0 {
				t.Errorf("%d intervals dropped, want none", d)
			}
			r.mu.Lock()
			batches := r.batches
			r.mu.Unlock()
			if batches >= int(seq) {
				t.Errorf("%d batches for %d intervals: the backlog was not sent several intervals per batch", batches, seq)
			}
		})
	}
}

// Past the backlog bound the oldest intervals are dropped and counted; the
// rest arrive once each.
func TestBacklogBoundDropsOldest(t *testing.T) {
	r := newHistReceiver(t)
	var down atomic.Bool
	down.Store(true)
	r.setFail(func() int {
		if down.Load() {
			return http.StatusBadGateway
		}
		return 0
	})
	tel := newTest(t, Config{Collector: r.srv.URL, FlushInterval: 100 * time.Millisecond, Backlog: 300 * time.Millisecond, SamplingRatio: ratio(0)})
	tel.Finish(&Hop{Key: hopKey("/a", "GET", "2xx"), Total: time.Millisecond})
	eventually(t, 20*time.Second, "8 intervals", func() bool {
		seq, _, _ := tel.hist.lastInterval()
		return seq >= 8
	})
	if n := tel.hist.backlogLen(); n > 3 {
		t.Errorf("backlog holds %d intervals, bound 3", n)
	}
	down.Store(false)
	eventually(t, 20*time.Second, "backlog sent", func() bool { return tel.hist.backlogLen() == 0 && r.count() > 0 })
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	seq, _, _ := tel.hist.lastInterval()
	dropped := tel.hist.dropFull.Load()
	if dropped < 5 {
		t.Errorf("dropped %d, want at least 5 of %d", dropped, seq)
	}
	checkSeqs(t, tel, r, dropped+1, seq)
	r.mu.Lock()
	_, firstKept := r.received[1]
	r.mu.Unlock()
	if firstKept {
		t.Error("interval 1 (the one with the request) arrived: the oldest was not the one dropped")
	}
}

// A permanent 4xx drops the batch and counts it; it is not retried.
func TestPermanentRejectDrops(t *testing.T) {
	r := newHistReceiver(t)
	var posts atomic.Int32
	r.setFail(func() int {
		posts.Add(1)
		return http.StatusBadRequest
	})
	tel := newTest(t, Config{Collector: r.srv.URL, FlushInterval: 100 * time.Millisecond, SamplingRatio: ratio(0)})
	eventually(t, 20*time.Second, "3 intervals rejected", func() bool { return tel.hist.dropReject.Load() >= 3 })
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	seq, _, _ := tel.hist.lastInterval()
	if got := tel.hist.dropReject.Load(); got != seq {
		t.Errorf("rejected %d, want every one of %d intervals", got, seq)
	}
	if p := posts.Load(); int(p) > int(seq) {
		t.Errorf("%d posts for %d intervals: a rejected batch was retried", p, seq)
	}
	if tel.hist.err4xx.Load() == 0 {
		t.Error("no 4xx flush error counted")
	}
}

// A wrong token is retried (the operator may fix it), not dropped.
func TestUnauthorizedIsRetried(t *testing.T) {
	r := newHistReceiver(t)
	r.token = "right"
	tel := newTest(t, Config{Collector: r.srv.URL, Token: "wrong", FlushInterval: 100 * time.Millisecond, SamplingRatio: ratio(0)})
	eventually(t, 20*time.Second, "401s", func() bool { return tel.hist.err4xx.Load() >= 2 })
	if d := tel.hist.dropReject.Load(); d != 0 {
		t.Errorf("%d intervals dropped on 401", d)
	}
	if tel.hist.backlogLen() == 0 {
		t.Error("backlog empty while the collector refuses the token")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := tel.Shutdown(ctx); err == nil {
		t.Error("Shutdown reported success while the collector refused every batch")
	}
	if tel.hist.dropStop.Load() == 0 {
		t.Error("intervals left at shutdown not counted")
	}
}

// With no collector configured, hops are still recorded and rotated (for
// /stats), and nothing is queued.
func TestNoCollector(t *testing.T) {
	tel := newTest(t, Config{FlushInterval: 100 * time.Millisecond})
	if tel.spans != nil {
		t.Error("span exporter without a collector")
	}
	tel.Finish(&Hop{Key: hopKey("/a", "GET", "2xx"), Total: time.Millisecond, Sampled: true})
	eventually(t, 20*time.Second, "a rotation", func() bool {
		seq, _, _ := tel.hist.lastInterval()
		return seq >= 1
	})
	if n := tel.hist.backlogLen(); n != 0 {
		t.Errorf("backlog %d without a collector", n)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBackoffAndRetryAfter(t *testing.T) {
	for attempt := 1; attempt <= 12; attempt++ {
		want := min(100*time.Millisecond<<(attempt-1), 2*time.Second)
		for range 50 {
			d := backoff(100*time.Millisecond, 2*time.Second, attempt, 0)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := backoff(10*time.Millisecond, time.Second, 1, 3*time.Second); d != 3*time.Second {
		t.Errorf("Retry-After 3s gave a wait of %v", d)
	}
	f := func(v string, want time.Duration) {
		t.Helper()
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfterHeader(h); got < want-2*time.Second || got > want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
	f("", 0)
	f("7", 7*time.Second)
	f("-3", 0)
	f("junk", 0)
	f("86400", 5*time.Minute)
	f(time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat), 30*time.Second)
}
