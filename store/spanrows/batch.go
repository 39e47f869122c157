package spanrows

import (
	"slices"
	"strings"
	"time"
)

// Batch is rows on their way to a store, with their Summary when the
// conversion that wrote them kept one.
type Batch struct {
	Rows []byte
	N    int // rows; 0 when unknown
	Summary
}

// Summary is what a store prepares before it writes rows: the days their
// spans start in and the operations they hold, each once. The conversion
// notes both while the spans are at hand, so that the store need not read
// every row again before the COPY. A Summary without Days is unknown (rows
// queued by an older build): Summarize reads it off the rows.
//
// A merged Summary may name days and operations of rows that went to
// another batch in a split: that only prepares a partition or an
// operation the other batch needs anyway.
type Summary struct {
	Days []int64 // UTC days since 1970-01-01 (Day)
	Ops  []Op
}

// Op is an operation as stored: a service, a span name and a kind, cleaned.
type Op struct{ Service, Name, Kind string }

// Day is the UTC day, counted from 1970-01-01, that ns (Unix nanoseconds)
// falls in.
func Day(ns int64) int64 {
	const day = int64(24 * time.Hour)
	d := ns / day
	if ns < 0 && ns%day != 0 {
		d--
	}
	return d
}

// Known reports whether s was noted as its rows were written.
func (s *Summary) Known() bool { return len(s.Days) > 0 }

// Note records a row's start and operation. The strings must be as the
// row stores them (Clean); they are copied when new, so that a Summary
// keeps no request buffer alive.
func (s *Summary) Note(startNs int64, service, name, kind string) {
	s.noteDay(Day(startNs))
	if n := len(s.Ops); n > 0 && s.Ops[n-1] == (Op{service, name, kind}) {
		return // most rows repeat the row before's operation
	}
	if !slices.Contains(s.Ops, Op{service, name, kind}) {
		s.Ops = append(s.Ops, Op{strings.Clone(service), strings.Clone(name), kind})
	}
}

func (s *Summary) noteDay(d int64) {
	if n := len(s.Days); n > 0 && s.Days[n-1] == d {
		return
	}
	if !slices.Contains(s.Days, d) {
		s.Days = append(s.Days, d)
	}
}

// Merge adds o's days and operations to s.
func (s *Summary) Merge(o Summary) {
	for _, d := range o.Days {
		s.noteDay(d)
	}
	for _, op := range o.Ops {
		if !slices.Contains(s.Ops, op) {
			s.Ops = append(s.Ops, op)
		}
	}
}

// Summarize reads the Summary of rows off the rows themselves, and counts
// them.
func Summarize(rows []byte) (Summary, int, error) {
	var s Summary
	n := 0
	for len(rows) > 0 {
		var r Row
		var err error
		r, rows, err = Next(rows)
		if err != nil {
			return s, n, err
		}
		n++
		s.noteDay(Day(r.Int8(StartNanos)))
		if k := len(s.Ops); k > 0 {
			last := s.Ops[k-1]
			if last.Service == string(r[Service]) && last.Name == string(r[Name]) && last.Kind == string(r[Kind]) {
				continue
			}
		}
		op := Op{string(r[Service]), string(r[Name]), string(r[Kind])}
		if !slices.Contains(s.Ops, op) {
			s.Ops = append(s.Ops, op)
		}
	}
	return s, n, nil
}
