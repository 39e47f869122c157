package rollup

import (
	"reflect"
	"sync"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// Cache keeps decoded compactions in memory, so that a repeated query merges
// them without decoding them again. An entry is keyed by the compaction's
// store and write generation: a compaction rebuilt after late rollups has a
// new generation and never meets the old entry. Safe for concurrent use.
type Cache struct {
	mu  sync.Mutex
	max int
	m   map[cacheKey]*[3]*hdr.Packed
}

type cacheKey struct {
	st      store.Store
	service string
	dir     model.Direction
	period  time.Duration
	start   int64
	gen     int64
}

// NewCache returns a cache of at most max compactions (each a few to a few
// tens of kilobytes).
func NewCache(max int) *Cache {
	return &Cache{max: max, m: map[cacheKey]*[3]*hdr.Packed{}}
}

// defaultCache serves Query: compactions are immutable per generation, so
// one process-wide cache is safe and spares every caller from holding one.
var defaultCache = NewCache(4096)

// addCompaction merges c into m through the cache.
func (k *Cache) addCompaction(m *Merged, st store.Store, c store.Compaction) error {
	if !reflect.TypeOf(st).Comparable() {
		return m.add(c.Count, c.Total, c.Upstream, c.Overhead) // cannot be a map key
	}
	key := cacheKey{st, c.Service, c.Direction, c.Period, c.Start.UnixNano(), c.Generation}
	k.mu.Lock()
	e := k.m[key]
	k.mu.Unlock()
	encs := [3]string{c.Total, c.Upstream, c.Overhead}
	var fresh [3]*hdr.Packed
	if e != nil {
		fresh = *e
	}
	missing := false
	for i := range encs {
		if fresh[i] == nil && encs[i] != "" && m.wants(i) {
			p, err := decodeChecked(encs[i], histogramNames[i])
			if err != nil {
				return err
			}
			fresh[i], missing = p, true
		}
	}
	if missing {
		k.mu.Lock()
		if len(k.m) >= k.max {
			// Full: start over rather than track recency; the next
			// queries refill what they use.
			k.m = map[cacheKey]*[3]*hdr.Packed{}
		}
		k.m[key] = &fresh
		k.mu.Unlock()
	}
	into := [3]*hdr.Histogram{m.Total, m.Upstream, m.Overhead}
	for i, p := range fresh {
		if p != nil && m.wants(i) {
			p.MergeInto(into[i])
		}
	}
	m.Count += c.Count
	return nil
}
