// Package store defines what the collector keeps and how it reads it back:
// spans, per-minute HDR rollups, and the discovered services and edges. Two
// drivers implement Store: PostgreSQL (store/postgres) and embedded SQLite
// (store/sqlite). Both pass the shared suite in store/storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/meshlens/meshlens/model"
)

// ErrNotFound is returned by lookups that find nothing.
var ErrNotFound = errors.New("not found")

// Span is one stored span. IDs are lowercase hex (32 and 16 characters).
type Span struct {
	TraceID      string
	SpanID       string
	ParentSpanID string // empty for a root span
	Service      string
	Name         string
	Kind         string // "server", "client", "internal", "producer", "consumer"
	Start        time.Time
	Duration     time.Duration
	StatusCode   string // "unset", "ok", "error"
	StatusMsg    string
	RequestID    string // x-request-id, when the span carries one
	// Attributes are the span's attributes rendered as strings; authorization
	// headers and cookies are removed before a span reaches the store.
	Attributes map[string]string
}

// Rollup is the merged latency histograms of one hop over one minute, as
// written by one source. Several rollups may exist for the same minute and key
// (one per proxy instance, or per collector); queries merge them.
type Rollup struct {
	Minute time.Time // truncated to the minute, UTC
	Key    model.HopKey
	// Source names the writer of this partial rollup. Writing the same
	// (Minute, Key, Source) again replaces the row, so writes are idempotent.
	Source string
	Count  int64 // requests in Total
	// HdrHistogram V2 compressed encodings (base64), microseconds.
	Total    string
	Upstream string
	Overhead string
}

// Service is a discovered service.
type Service struct {
	Name      string
	FirstSeen time.Time
	LastSeen  time.Time
	// HasProxy is false for a peer seen only from its callers' side.
	HasProxy bool
}

// Edge is a discovered caller → callee pair.
type Edge struct {
	Caller    string
	Callee    string
	FirstSeen time.Time
	LastSeen  time.Time
}

// Widen makes s cover o's sightings too: the earlier first seen, the later
// last seen, and a proxy if either had one.
func (s *Service) Widen(o Service) {
	s.FirstSeen, s.LastSeen = earliest(s.FirstSeen, o.FirstSeen), latest(s.LastSeen, o.LastSeen)
	s.HasProxy = s.HasProxy || o.HasProxy
}

// Widen makes e cover o's sightings too.
func (e *Edge) Widen(o Edge) {
	e.FirstSeen, e.LastSeen = earliest(e.FirstSeen, o.FirstSeen), latest(e.LastSeen, o.LastSeen)
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// RollupFilter selects rollups. Empty strings match everything.
type RollupFilter struct {
	From, To  time.Time // minutes in [From, To)
	Service   string
	Direction model.Direction
	Peer      string
	Route     string
}

// TraceQuery is a trace search (the shape of Jaeger's /api/traces).
type TraceQuery struct {
	Service     string
	Operation   string            // span name
	Tags        map[string]string // attribute equality
	MinDuration time.Duration     // 0: no bound
	MaxDuration time.Duration     // 0: no bound
	Start, End  time.Time
	Limit       int
}

// Store is what the collector writes to and the query API reads from.
type Store interface {
	// WriteSpans stores spans; a span already stored (same trace and span
	// ID) is left as it is.
	WriteSpans(ctx context.Context, spans []Span) error
	// WriteRollups stores rollups, replacing any with the same minute, key
	// and source.
	WriteRollups(ctx context.Context, rollups []Rollup) error
	// ObserveServices and ObserveEdges record discoveries, widening first
	// and last seen.
	ObserveServices(ctx context.Context, services []Service) error
	ObserveEdges(ctx context.Context, edges []Edge) error

	Rollups(ctx context.Context, f RollupFilter) ([]Rollup, error)
	Services(ctx context.Context) ([]Service, error)
	Edges(ctx context.Context) ([]Edge, error)
	// Trace returns every span of a trace, ErrNotFound when there is none.
	Trace(ctx context.Context, traceID string) ([]Span, error)
	// TraceIDByRequestID returns the trace a request ID was seen in.
	TraceIDByRequestID(ctx context.Context, requestID string) (string, error)
	// FindTraceIDs returns the IDs of traces matching q, newest first.
	FindTraceIDs(ctx context.Context, q TraceQuery) ([]string, error)
	// Operations lists the span names seen for a service, with their kinds.
	Operations(ctx context.Context, service string) ([]Operation, error)

	// DropBefore removes spans and rollups older than t (retention).
	DropBefore(ctx context.Context, t time.Time) error
	Close() error
}

// Operation is a span name and kind seen for a service.
type Operation struct {
	Name string
	Kind string
}

// Compaction is the merge of every rollup of one service and direction over
// one period (a minute or an hour), across hop keys and sources. Queries that
// need no finer key read compactions instead of thousands of rollups.
// Generation is the period's write generation the compaction was built from;
// a compaction is current while no rollup of its service and period has been
// written since.
type Compaction struct {
	Service    string
	Direction  model.Direction
	Start      time.Time // UTC, aligned to Period
	Period     time.Duration
	Generation int64
	Count      int64 // the sum of the rollups' counts
	// Rollups is the number of rollups merged.
	Rollups int64
	// ByClass is the sum of the rollups' counts per status class; nil when
	// there are none.
	ByClass map[string]int64
	// HdrHistogram V2 compressed encodings (base64), microseconds; empty
	// when nothing was recorded, or when not asked for (CompactionQuery).
	Total    string
	Upstream string
	Overhead string
}

// Histograms selects some of the three histograms of a rollup or compaction.
type Histograms uint8

// The three histograms.
const (
	TotalHistogram Histograms = 1 << iota
	UpstreamHistogram
	OverheadHistogram

	AllHistograms = TotalHistogram | UpstreamHistogram | OverheadHistogram
)

// CompactionQuery selects current compactions of one service: those of the
// given period length starting in [From, To) — only at Starts when Starts is
// not nil — with the histogram encodings Histograms asks for (none: keys,
// generations and counts only, for a caller that has the histograms cached).
type CompactionQuery struct {
	Service    string
	Period     time.Duration
	From, To   time.Time
	Starts     []time.Time
	Histograms Histograms
}

// Period is one compaction period of a service.
type Period struct {
	Service string
	Length  time.Duration // time.Minute or time.Hour
	Start   time.Time     // UTC, aligned to Length
}

// Compactions is implemented by stores that keep compactions (both drivers
// do). WriteRollups bumps the generation of the minute and the hour of every
// (service, minute) it writes. Package store/rollup builds the compactions
// (in the background, rollup.Compactor, and on demand) and uses them;
// nothing else needs to.
type Compactions interface {
	// RollupGenerations returns the current write generation of the
	// service's periods of the given length starting in [from, to); a period
	// never written has none (generation 0). A minute without a generation
	// holds no rollup.
	RollupGenerations(ctx context.Context, service string, period time.Duration, from, to time.Time) (map[time.Time]int64, error)
	// CurrentCompactions returns the compactions q selects whose generation
	// is current, ordered by start and direction.
	CurrentCompactions(ctx context.Context, q CompactionQuery) ([]Compaction, error)
	// WriteCompactions stores compactions, replacing any of the same
	// service, direction, period and start built from an older or the same
	// generation (never a newer one), and marks each period built at its
	// compactions' generation: write every direction of a period in one call.
	WriteCompactions(ctx context.Context, cs []Compaction) error
	// DirtyPeriods returns up to limit periods, of any service, with rollups
	// written since their compactions were built (or never built), that
	// ended at or before closedBy; newest first.
	DirtyPeriods(ctx context.Context, closedBy time.Time, limit int) ([]Period, error)
}

// CompactorLock is implemented by stores that several collectors share
// (PostgreSQL), so that one compactor at a time builds compactions instead
// of every collector building the same periods.
type CompactorLock interface {
	// TryLockCompactor takes the store's compactor lock if no other
	// process holds it, and reports whether it did; unlock releases it.
	// The lock also ends with the process or its connection.
	TryLockCompactor(ctx context.Context) (unlock func(), ok bool, err error)
}

// Unwrapper is implemented by stores that wrap another one (store/open's
// retention wrapper), so that what the wrapped store implements beyond
// Store, such as Compactions, can be reached.
type Unwrapper interface {
	Unwrap() Store
}

// CompactionsOf returns the compactions of st, looking through wrappers, and
// the store that keeps them.
func CompactionsOf(st Store) (Compactions, Store, bool) {
	for st != nil {
		if cs, ok := st.(Compactions); ok {
			return cs, st, true
		}
		u, ok := st.(Unwrapper)
		if !ok {
			break
		}
		st = u.Unwrap()
	}
	return nil, nil, false
}
