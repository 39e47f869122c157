package analyticsexporter

import "time"

// dedupe remembers keys for at least window and at most twice that, in two
// generations, so memory stays bounded by the traffic of one window.
type dedupe struct {
	window  time.Duration
	rotated time.Time
	cur     map[string]struct{}
	prev    map[string]struct{}
}

func newDedupe(window time.Duration, now time.Time) *dedupe {
	return &dedupe{window: window, rotated: now, cur: map[string]struct{}{}, prev: map[string]struct{}{}}
}

// seen reports whether k was added before, and adds it.
func (d *dedupe) seen(k string, now time.Time) bool {
	if now.Sub(d.rotated) >= d.window {
		d.prev, d.cur, d.rotated = d.cur, make(map[string]struct{}, len(d.cur)), now
	}
	if _, ok := d.cur[k]; ok {
		return true
	}
	if _, ok := d.prev[k]; ok {
		return true
	}
	d.cur[k] = struct{}{}
	return false
}

// forget removes k, for an item that was not taken after all.
func (d *dedupe) forget(k string) {
	delete(d.cur, k)
	delete(d.prev, k)
}
