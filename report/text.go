package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// WriteText writes the report as aligned tables: services, edges, routes.
func WriteText(w io.Writer, r *Report) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, "Tail latency %s .. %s (%s), compared with the %s before\n",
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), windowLength(r.From, r.To), windowLength(r.From, r.To))
	if r.SkippedRollups > 0 {
		fmt.Fprintf(bw, "WARNING: %d stored rollups skipped (corrupt histograms); first: %s\n", r.SkippedRollups, strings.Join(r.SkipErrors, "; "))
	}
	for _, sec := range []struct {
		title string
		rows  []Row
	}{{"SERVICES", r.Services}, {"EDGES", r.Edges}, {"ROUTES", r.Routes}} {
		fmt.Fprintf(bw, "\n%s (worst tail first)\n", sec.title)
		if len(sec.rows) == 0 {
			fmt.Fprintln(bw, "  no traffic")
			continue
		}
		// Numbers align right; names are padded so that they align left.
		width := len("NAME")
		for _, row := range sec.rows {
			width = max(width, utf8.RuneCountInString(row.Name))
		}
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-*s\t", width, "NAME")
		fmt.Fprintln(tw, "REQUESTS\tERRORS\tERR%\tP50\tP90\tP99\tP99.9\tP99.99\tMAX\tΔREQ\tΔERR%\tΔP99\tΔP99.9\t")
		for _, row := range sec.rows {
			c := row.Current
			fmt.Fprintf(tw, "%-*s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				width, row.Name, c.Requests, c.Errors, pct(c.ErrorRate),
				Micros(c.P50), Micros(c.P90), Micros(c.P99), Micros(c.P999), Micros(c.P9999), Micros(c.Max),
				changeOr(row.Change, func(ch *Change) string { return signedPct(ch.Requests) }),
				changeOr(row.Change, func(ch *Change) string { return signedPoints(ch.ErrorRate) }),
				changeOr(row.Change, func(ch *Change) string { return signedPct(ch.P99) }),
				changeOr(row.Change, func(ch *Change) string { return signedPct(ch.P999) }))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return bw.err
}

func changeOr(c *Change, f func(*Change) string) string {
	if c == nil {
		return "new"
	}
	return f(c)
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) }

func signedPct(f float64) string { return fmt.Sprintf("%+.0f%%", noNegZero(math.Round(100*f))) }

func signedPoints(f float64) string { return fmt.Sprintf("%+.2f", noNegZero(math.Round(1e4*f)/100)) }

// noNegZero turns -0 into 0, so that a change that rounds to nothing prints
// as "+0".
func noNegZero(f float64) float64 {
	if f == 0 {
		return 0
	}
	return f
}

// Micros formats a latency in microseconds with 3 significant digits and a
// unit: 845us, 12.3ms, 1.20s.
func Micros(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "us"
	case us < 1_000_000:
		return sig3(float64(us)/1e3) + "ms"
	default:
		return sig3(float64(us)/1e6) + "s"
	}
}

func sig3(f float64) string {
	switch {
	case f < 10:
		return strconv.FormatFloat(f, 'f', 2, 64)
	case f < 100:
		return strconv.FormatFloat(f, 'f', 1, 64)
	default:
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// windowLength is the length of [from, to), rounded for reading.
func windowLength(from, to time.Time) string {
	d := to.Sub(from)
	if d >= 10*time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
