package jaeger

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// dependencyLinks returns the caller → callee edges seen in [start, end] with
// the calls made on each. Counts come from the per-minute rollups (every
// request, whatever the span sampling), so a minute is counted when it
// starts in the window. A call measured on both sides (the caller's outbound
// proxy and the callee's inbound one) is counted once: the caller's side is
// used, the callee's only for callers that run no proxy. Edges discovered in
// the window with no rollup in it are listed with a count of 0.
func dependencyLinks(ctx context.Context, st store.Store, start, end time.Time) ([]DependencyLink, error) {
	rollups, err := st.Rollups(ctx, store.RollupFilter{From: start.Truncate(time.Minute), To: end})
	if err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	type edgeKey struct{ caller, callee string }
	type sides struct{ outbound, inbound uint64 }
	counts := map[edgeKey]*sides{}
	for _, r := range rollups {
		caller, callee := r.Key.Edge()
		if caller == "" || callee == "" || r.Count <= 0 {
			continue
		}
		k := edgeKey{caller, callee}
		c := counts[k]
		if c == nil {
			c = &sides{}
			counts[k] = c
		}
		if r.Key.Direction == model.Outbound {
			c.outbound += uint64(r.Count)
		} else {
			c.inbound += uint64(r.Count)
		}
	}

	edges, err := st.Edges(ctx)
	if err != nil {
		return nil, fmt.Errorf("read edges: %w", err)
	}
	for _, e := range edges {
		if e.LastSeen.Before(start) || e.FirstSeen.After(end) {
			continue
		}
		k := edgeKey{e.Caller, e.Callee}
		if counts[k] == nil {
			counts[k] = &sides{}
		}
	}

	links := make([]DependencyLink, 0, len(counts))
	for k, c := range counts {
		n := c.outbound
		if n == 0 {
			n = c.inbound
		}
		links = append(links, DependencyLink{Parent: k.caller, Child: k.callee, CallCount: n})
	}
	sort.Slice(links, func(i, j int) bool {
		if links[i].Parent != links[j].Parent {
			return links[i].Parent < links[j].Parent
		}
		return links[i].Child < links[j].Child
	})
	return links, nil
}
