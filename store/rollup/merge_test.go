package rollup

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

func encode(t testing.TB, values []int64) string {
	h := hdr.New()
	for _, v := range values {
		hdr.Record(h, v)
	}
	s, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMergeIsExact: values split at random over rollups merge into the
// histogram of one recorder that saw them all.
func TestMergeIsExact(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for round := range 20 {
		all := hdr.New()
		var rs []store.Rollup
		var count int64
		for range 1 + r.Intn(8) {
			var vs []int64
			for range r.Intn(300) {
				v := 1 + r.Int63n(int64(1)<<uint(1+r.Intn(40)))
				vs = append(vs, v)
				hdr.Record(all, v)
			}
			count += int64(len(vs))
			rs = append(rs, store.Rollup{Count: int64(len(vs)), Total: encode(t, vs), Upstream: encode(t, vs), Overhead: ""})
		}
		m, err := Merge(rs)
		if err != nil {
			t.Fatal(err)
		}
		if m.Count != count || !m.Total.Equals(all) || !m.Upstream.Equals(all) || m.Overhead.TotalCount() != 0 {
			t.Fatalf("round %d: merge of %d rollups differs from one histogram of every value (count %d/%d, total %d/%d)",
				round, len(rs), m.Count, count, m.Total.TotalCount(), all.TotalCount())
		}
	}
}

func TestGroupBy(t *testing.T) {
	m0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := []store.Rollup{
		{Minute: m0, Count: 2, Total: encode(t, []int64{10, 20})},
		{Minute: m0, Count: 1, Total: encode(t, []int64{30})},
		{Minute: m0.Add(time.Minute), Count: 1, Total: encode(t, []int64{40})},
	}
	g, err := GroupBy(rs, func(r store.Rollup) time.Time { return r.Minute })
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 2 || g[m0].Count != 3 || g[m0].Total.TotalCount() != 3 || g[m0.Add(time.Minute)].Total.Max() < 40 {
		t.Fatalf("groups: %+v", g)
	}
}

func TestMergeNamesTheBadRollup(t *testing.T) {
	rs := []store.Rollup{{
		Minute: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Source: "proxy-7",
		Key:   model.HopKey{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/x", Method: "GET", StatusClass: "2xx"},
		Total: "not a histogram",
	}}
	_, err := Merge(rs)
	if err == nil || !strings.Contains(err.Error(), "proxy-7") || !strings.Contains(err.Error(), "total histogram") {
		t.Fatalf("err %v, want it to name the rollup and the histogram", err)
	}
}

// FuzzAdd: whatever a stored histogram holds, merging it errors or merges,
// never panics, and never changes the count on error.
func FuzzAdd(f *testing.F) {
	f.Add(encode(f, []int64{1, 2, 3, 1000000}))
	f.Add(encode(f, nil))
	f.Add("")
	f.Add("HISTFAAAAB54nJNpmSzMwMDAxwABzFAaxmey38YAAQCIGgQL")
	f.Fuzz(func(t *testing.T, enc string) {
		m := New()
		r := store.Rollup{Count: 5, Total: enc, Upstream: enc}
		err := m.Add(r)
		// Merge (by bucket index into dense sums) agrees with Add (into
		// the dense histograms).
		merged, mergeErr := Merge([]store.Rollup{r})
		if (err == nil) != (mergeErr == nil) {
			t.Fatalf("Add: %v, Merge: %v", err, mergeErr)
		}
		if err != nil {
			if m.Count != 0 {
				t.Fatalf("count %d after a failed add", m.Count)
			}
			return
		}
		if m.Total.TotalCount() != m.Upstream.TotalCount() {
			t.Fatalf("the same encoding merged into different totals")
		}
		if !merged.Total.Equals(m.Total) || merged.Count != m.Count {
			t.Fatalf("Merge differs from Add")
		}
	})
}
