package report

import (
	"fmt"
	"io"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// WriteHlog writes the report's per-step service histograms as an
// HdrHistogram interval log (format 1.3), one tagged interval per service and
// step, so HistogramLogAnalyzer and the other HDR tools open it. Values are
// microseconds; the interval maxima are written in milliseconds.
func WriteHlog(w io.Writer, r *Report) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	start := r.From.UnixMilli()
	steps := []func() error{
		func() error { return lw.OutputLogFormatVersion() },
		func() error {
			return lw.OutputComment(fmt.Sprintf("meshlens tail-latency report %s .. %s, values in microseconds, tag = service",
				r.From.Format("2006-01-02T15:04:05Z07:00"), r.To.Format("2006-01-02T15:04:05Z07:00")))
		},
		func() error { return lw.OutputStartTime(start) },
		func() error { return lw.OutputBaseTime(start) },
		func() error { return lw.OutputLegend() },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return fmt.Errorf("write hlog header: %w", err)
		}
	}
	lw.SetBaseTime(start)
	for _, iv := range r.Intervals {
		h := iv.Histogram.Clone()
		h.SetTag(hlogTag(iv.Tag))
		h.SetStartTimeMs(iv.Start.UnixMilli())
		h.SetEndTimeMs(iv.End.UnixMilli())
		if err := lw.OutputIntervalHistogram(h); err != nil {
			return fmt.Errorf("write hlog interval %s %s: %w", iv.Tag, iv.Start.Format("15:04:05"), err)
		}
	}
	return nil
}

// hlogTag makes a tag the log format accepts: no comma, space or line break.
func hlogTag(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ',', ' ', '\r', '\n', '\t':
			return '_'
		}
		return r
	}, s)
}
