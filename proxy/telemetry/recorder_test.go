package telemetry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// sample is one synthetic request: key index and durations.
type sample struct {
	key             int
	total, upstream time.Duration
}

func samples(n, keys int, seed uint64) []sample {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]sample, n)
	for i := range out {
		// Log-uniform from 1 µs to ~10 s, some beyond the hour limit.
		total := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*7))
		if i%997 == 0 {
			total = 2 * time.Hour
		}
		up := time.Duration(rng.Float64() * float64(total))
		if i%13 == 0 {
			up = 0 // no upstream answered
		}
		out[i] = sample{key: rng.IntN(keys), total: total, upstream: up}
	}
	return out
}

func testKeys(n int) []model.HopKey {
	keys := make([]model.HopKey, n)
	for i := range keys {
		keys[i] = hopKey(fmt.Sprintf("/r%d", i%7), []string{"GET", "POST"}[i%2], []string{"2xx", "5xx"}[i/7%2])
	}
	return keys
}

// serial records samples the obvious way, one histogram per key and kind.
func serial(keys []model.HopKey, ss []sample) map[model.HopKey]*hopSet {
	out := map[model.HopKey]*hopSet{}
	for _, s := range ss {
		k := keys[s.key]
		set := out[k]
		if set == nil {
			set = newHopSet()
			out[k] = set
		}
		hdr.Record(set.total, s.total.Microseconds())
		if s.upstream > 0 {
			hdr.Record(set.upstream, s.upstream.Microseconds())
			hdr.Record(set.overhead, (s.total - s.upstream).Microseconds())
		}
	}
	return out
}

func sameSets(t *testing.T, want, got map[model.HopKey]*hopSet) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d hop keys, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g == nil {
			t.Fatalf("hop %+v missing", k)
		}
		for _, p := range []struct {
			name string
			w, g *hdr.Histogram
		}{{"total", w.total, g.total}, {"upstream", w.upstream, g.upstream}, {"overhead", w.overhead, g.overhead}} {
			if p.w.TotalCount() != p.g.TotalCount() || !p.w.Equals(p.g) {
				t.Errorf("hop %v %s: got count %d max %d, want count %d max %d", k.Route, p.name,
					p.g.TotalCount(), p.g.Max(), p.w.TotalCount(), p.w.Max())
			}
		}
	}
}

// Many goroutines recording while intervals rotate underneath them record
// exactly what one goroutine recording serially does.
func TestConcurrentRecordingEqualsSerial(t *testing.T) {
	const goroutines, perG, nkeys = 16, 5000, 14
	keys := testKeys(nkeys)
	all := samples(goroutines*perG, nkeys, 1)
	rec := newRecorder(100)

	got := map[model.HopKey]*hopSet{}
	collect := func(k model.HopKey, s *hopSet) {
		g := got[k]
		if g == nil {
			g = newHopSet()
			got[k] = g
		}
		g.merge(s)
	}
	stop := make(chan struct{})
	rotated := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				rotated <- n
				return
			default:
				rec.rotate(collect)
				n++
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range all[g*perG : (g+1)*perG] {
				rec.record(&Hop{Key: keys[s.key], Total: s.total, Upstream: s.upstream})
			}
		}()
	}
	wg.Wait()
	close(stop)
	n := <-rotated
	rec.rotate(collect)
	t.Logf("%d rotations during recording", n)

	sameSets(t, serial(keys, all), got)
	if want := uint64(goroutines * perG / 997); rec.clampTotal.Load() < want {
		t.Errorf("clamped totals %d, want at least %d", rec.clampTotal.Load(), want)
	}
	var requests uint64
	for _, e := range rec.snapshotEntries() {
		requests += e.requestCount()
	}
	if requests != goroutines*perG {
		t.Errorf("requests %d, want %d", requests, goroutines*perG)
	}
	sameCum(t, serial(keys, all), rec)
}

// sameCum checks that every entry's sparse cumulative set holds exactly the
// counts of want (bucket for bucket, via its dense equivalent) and that the
// /stats summary of it equals the dense one.
func sameCum(t *testing.T, want map[model.HopKey]*hopSet, rec *recorder) {
	t.Helper()
	got := map[model.HopKey]*hopSet{}
	for _, e := range rec.snapshotEntries() {
		e.statsMu.Lock()
		if e.cum != nil {
			d := newHopSet()
			e.cum.total.MergeInto(d.total)
			e.cum.upstream.MergeInto(d.upstream)
			e.cum.overhead.MergeInto(d.overhead)
			got[e.key] = d
		}
		e.statsMu.Unlock()
		if w, ok := want[e.key]; ok {
			if g, ws := e.sinceStart(), summarise(w); g != ws {
				t.Errorf("%v: since-start stats %+v, dense %+v", e.key, g, ws)
			}
		}
	}
	sameSets(t, want, got)
}

// A key idle for a whole interval gives its dense set back and takes one
// again on its next request; its since-start figures are kept.
func TestIdleKeyReleasesDenseSet(t *testing.T) {
	rec := newRecorder(100)
	k := hopKey("/a", "GET", "2xx")
	rec.record(&Hop{Key: k, Total: time.Millisecond, Upstream: 900 * time.Microsecond})
	nop := func(model.HopKey, *hopSet) {}
	rec.rotate(nop)
	e := rec.snapshotEntries()[0]
	if e.cur == nil {
		t.Fatal("active key lost its set")
	}
	rec.rotate(nop) // an empty interval
	if e.cur != nil {
		t.Fatal("idle key kept its dense set")
	}
	if got := e.sinceStart().Total.Count; got != 1 {
		t.Fatalf("since-start count %d after idle interval, want 1", got)
	}
	rec.record(&Hop{Key: k, Total: 2 * time.Millisecond})
	var seen int64
	rec.rotate(func(_ model.HopKey, s *hopSet) { seen = s.total.TotalCount() })
	if seen != 1 {
		t.Fatalf("interval after waking holds %d, want 1", seen)
	}
	if got := e.sinceStart().Total.Count; got != 2 {
		t.Fatalf("since-start count %d, want 2", got)
	}
	if got := e.requestCount(); got != 2 {
		t.Fatalf("requests %d, want 2", got)
	}
}

// The V2 encoding round-trips a recorded histogram exactly.
func TestEncodeDecodeExact(t *testing.T) {
	set := serial(testKeys(1), samples(20000, 1, 2))[testKeys(1)[0]]
	for name, h := range map[string]*hdr.Histogram{"total": set.total, "upstream": set.upstream, "overhead": set.overhead} {
		enc, err := hdr.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := hdr.Decode(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !h.Equals(dec) {
			t.Errorf("%s: decoded histogram differs (count %d/%d, max %d/%d)", name, dec.TotalCount(), h.TotalCount(), dec.Max(), h.Max())
		}
	}
}

func TestRouteFolding(t *testing.T) {
	rec := newRecorder(3)
	for i := range 10 {
		for range 2 {
			rec.record(&Hop{Key: hopKey(fmt.Sprintf("/r%d", i), "GET", "2xx"), Total: time.Millisecond})
		}
	}
	// A known route keeps its own key with another method or status.
	rec.record(&Hop{Key: hopKey("/r1", "POST", "5xx"), Total: time.Millisecond})
	// Another service has its own budget.
	other := hopKey("/x", "GET", "2xx")
	other.Service = "cart"
	rec.record(&Hop{Key: other, Total: time.Millisecond})

	counts := map[string]uint64{}
	for _, e := range rec.snapshotEntries() {
		counts[e.key.Service+" "+e.key.Route+" "+e.key.Method] += e.requestCount()
	}
	want := map[string]uint64{
		"checkout /r0 GET": 2, "checkout /r1 GET": 2, "checkout /r2 GET": 2,
		"checkout other GET": 14, "checkout /r1 POST": 1, "cart /x GET": 1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts by key\n got %v\nwant %v", counts, want)
	}
	if got := rec.folds.Load(); got != 14 {
		t.Errorf("folds %d, want 14", got)
	}
}

// Past maxFoldAliases distinct folded routes, requests still land in
// "other", through the slow path.
func TestRouteFoldingBeyondAliasLimit(t *testing.T) {
	rec := newRecorder(1)
	n := maxFoldAliases + 50
	for i := range n {
		rec.record(&Hop{Key: hopKey(fmt.Sprintf("/r%d", i), "GET", "2xx"), Total: time.Millisecond})
	}
	rec.record(&Hop{Key: hopKey(fmt.Sprintf("/r%d", n-1), "GET", "2xx"), Total: time.Millisecond})
	if len(*rec.keys.Load()) > maxFoldAliases+2 {
		t.Errorf("key map holds %d keys, bound is %d", len(*rec.keys.Load()), maxFoldAliases+2)
	}
	entries := rec.snapshotEntries()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want /r0 and other", len(entries))
	}
	if got := entries[1].requestCount(); entries[1].key.Route != model.OtherRoute || got != uint64(n) {
		t.Errorf("other: %v %d requests, want %d", entries[1].key.Route, got, n)
	}
}

func TestRecordClampsAndNoUpstream(t *testing.T) {
	rec := newRecorder(10)
	k := hopKey("/a", "GET", "2xx")
	rec.record(&Hop{Key: k, Total: 2 * time.Hour, Upstream: 90 * time.Minute})
	rec.record(&Hop{Key: k, Total: 300 * time.Nanosecond, Upstream: 100 * time.Nanosecond})
	rec.record(&Hop{Key: k, Total: 5 * time.Millisecond}) // no upstream answered
	var got *hopSet
	rec.rotate(func(_ model.HopKey, s *hopSet) {
		got = newHopSet()
		got.merge(s)
	})
	if c := got.total.TotalCount(); c != 3 {
		t.Errorf("total count %d, want 3", c)
	}
	if c := got.upstream.TotalCount(); c != 2 {
		t.Errorf("upstream count %d, want 2 (the hop without upstream is left out)", c)
	}
	if m := got.total.Max(); !got.total.ValuesAreEquivalent(m, model.HighestTrackableMicros) {
		t.Errorf("total max %d, want the clamp %d", m, int64(model.HighestTrackableMicros))
	}
	if m := got.total.Min(); m != 1 {
		t.Errorf("total min %d, want 1 (sub-microsecond raised to 1)", m)
	}
	if rec.clampTotal.Load() != 1 || rec.clampUpstream.Load() != 1 || rec.clampOverhead.Load() != 0 {
		t.Errorf("clamps total/upstream/overhead = %d/%d/%d, want 1/1/0",
			rec.clampTotal.Load(), rec.clampUpstream.Load(), rec.clampOverhead.Load())
	}
}

// Callers inventing peer names cannot grow the key set without bound.
func TestPeerFolding(t *testing.T) {
	rec := newRecorder(10)
	for i := range maxPeersPerService + 100 {
		k := hopKey("/a", "GET", "2xx")
		k.Direction, k.Peer = model.Inbound, fmt.Sprintf("caller-%d", i)
		rec.record(&Hop{Key: k, Total: time.Millisecond})
	}
	entries := rec.snapshotEntries()
	if len(entries) != maxPeersPerService+1 {
		t.Fatalf("%d entries, want %d peers and unknown", len(entries), maxPeersPerService)
	}
	last := entries[len(entries)-1]
	if last.key.Peer != unknownPeer || last.requestCount() != 100 {
		t.Errorf("last entry %+v with %d requests", last.key, last.requestCount())
	}
	if rec.peerFolds.Load() != 100 || rec.folds.Load() != 0 {
		t.Errorf("peer folds %d, route folds %d; want 100, 0", rec.peerFolds.Load(), rec.folds.Load())
	}
}
