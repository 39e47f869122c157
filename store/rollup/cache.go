package rollup

import (
	"reflect"
	"sync"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// piece is the content of one compaction (or of one open minute merged from
// its rollups), decoded for merging: the histograms asked for so far (have)
// as their populated buckets, and the counts. A piece in the cache is never
// changed: a query that needs more histograms puts a new one.
type piece struct {
	count, rollups int64
	byClass        map[string]int64
	h              [3]*hdr.Buckets // nil: not decoded (see have) or empty
	have           Histograms
}

func (p *piece) size() int {
	n := 96 + 32*len(p.byClass)
	for _, h := range p.h {
		if h != nil {
			n += h.SizeBytes()
		}
	}
	return n
}

// pieceOf decodes the histograms of c that want selects.
func pieceOf(c store.Compaction, want Histograms) (*piece, error) {
	p := &piece{count: c.Count, rollups: c.Rollups, byClass: c.ByClass, have: want}
	for i, enc := range [3]string{c.Total, c.Upstream, c.Overhead} {
		if enc == "" || want&(1<<i) == 0 {
			continue
		}
		b, err := decodeKeep(enc, histogramNames[i])
		if err != nil {
			return nil, err
		}
		p.h[i] = b
	}
	return p, nil
}

// Cache keeps decoded compactions in memory, so that a repeated query merges
// them without reading their histograms from the store or decoding them
// again. An entry is keyed by the compaction's store, period and write
// generation: a compaction rebuilt after late rollups has a new generation
// and never meets the old entry. It holds at most about its byte budget,
// in two halves: when the newer half is full, the older one is dropped, and
// an entry found in the older half moves to the newer, so what queries keep
// using stays. Safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	max      int
	cur, old map[cacheKey]*piece
	curBytes int
}

type cacheKey struct {
	st      store.Store
	service string
	dir     model.Direction
	period  time.Duration
	start   int64
	gen     int64
}

// NewCache returns a cache of decoded compactions holding at most about
// maxBytes (an hourly compaction of a busy service is some tens of
// kilobytes per histogram).
func NewCache(maxBytes int) *Cache {
	return &Cache{max: maxBytes, cur: map[cacheKey]*piece{}, old: map[cacheKey]*piece{}}
}

// DefaultCacheBytes is the budget of the process-wide cache Query uses.
const DefaultCacheBytes = 64 << 20

// defaultCache serves Query: compactions are immutable per generation, so
// one process-wide cache is safe and spares every caller from holding one.
var defaultCache = NewCache(DefaultCacheBytes)

// cacheable reports whether st can be part of a map key.
func cacheable(st store.Store) bool { return st != nil && reflect.TypeOf(st).Comparable() }

func (k *Cache) get(key cacheKey) *piece {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.cur[key]; p != nil {
		return p
	}
	p := k.old[key]
	if p != nil {
		delete(k.old, key)
		k.putLocked(key, p)
	}
	return p
}

func (k *Cache) put(key cacheKey, p *piece) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.putLocked(key, p)
}

func (k *Cache) putLocked(key cacheKey, p *piece) {
	if prev := k.cur[key]; prev != nil {
		k.curBytes -= prev.size()
	}
	k.cur[key] = p
	k.curBytes += p.size()
	if k.curBytes > k.max/2 {
		k.old, k.cur, k.curBytes = k.cur, map[cacheKey]*piece{}, 0
	}
}
