package slo

import (
	"context"
	"fmt"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// ErrorRatioFromStore computes an SLO's error ratio over [from, to) from the
// store's rollups: server errors by status class; slow requests from the
// merged HDR histogram, to its resolution (a value in the same 3-digit
// bucket as the threshold counts as fast). ok is false without traffic.
func ErrorRatioFromStore(ctx context.Context, st store.Store, s *SLO, from, to time.Time) (ratio float64, ok bool, err error) {
	f := store.RollupFilter{From: from, To: to}
	for _, m := range s.Scope.Selector() {
		switch m.Name {
		case "service":
			f.Service = m.Value
		case "direction":
			f.Direction = model.Direction(m.Value)
		case "peer":
			f.Peer = m.Value
		case "route":
			f.Route = m.Value
		}
	}
	rs, err := st.Rollups(ctx, f)
	if err != nil {
		return 0, false, fmt.Errorf("slo %q: rollups: %w", s.Name, err)
	}
	var total, bad int64
	if s.Indicator == Availability {
		for _, r := range rs {
			total += r.Count
			if r.Key.StatusClass == "5xx" {
				bad += r.Count
			}
		}
	} else {
		m, err := rollup.Merge(rs)
		if err != nil {
			return 0, false, fmt.Errorf("slo %q: merge rollups: %w", s.Name, err)
		}
		total = m.Count
		if m.Total != nil {
			limit := s.Threshold.Microseconds()
			for _, b := range m.Total.Distribution() {
				if b.From > limit {
					bad += b.Count
				}
			}
		}
	}
	if total == 0 {
		return 0, false, nil
	}
	return float64(bad) / float64(total), true, nil
}
