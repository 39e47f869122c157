package model

// The histogram payload a proxy POSTs to the collector. The format is
// documented in docs/histogram-wire.md; keep both in step.

// HistogramPath is the path, relative to the collector URL, that takes
// histogram batches. Spans go to the OTLP/HTTP path "/v1/traces" of the same
// URL.
const HistogramPath = "/v1/histograms"

// HistogramContentType is the media type of a histogram batch.
const HistogramContentType = "application/json"

// MaxHistogramBatchBytes is the largest (uncompressed) batch a collector must
// accept.
const MaxHistogramBatchBytes = 8 << 20

// HistogramBatch is one POST from one proxy: one or more flush intervals.
type HistogramBatch struct {
	// Instance identifies the sending proxy process; it is random at start-up
	// and, with Interval.Seq, makes every interval unique so that a batch
	// sent twice is stored once.
	Instance string `json:"instance"`
	// Service is the service the sending proxy sits beside.
	Service   string     `json:"service"`
	Intervals []Interval `json:"intervals"`
}

// Interval holds the histograms of one flush interval, [Start, End).
type Interval struct {
	Seq         uint64          `json:"seq"`
	StartUnixMs int64           `json:"start_unix_ms"`
	EndUnixMs   int64           `json:"end_unix_ms"`
	Hops        []HopHistograms `json:"hops"`
}

// HopHistograms are the histograms of one hop over one interval. Each is an
// HdrHistogram V2 compressed encoding, base64 (the text form every
// HdrHistogram implementation reads), values in microseconds.
type HopHistograms struct {
	HopKey
	// Total is the time from the request's first byte at the proxy to the
	// response's last byte.
	Total string `json:"total"`
	// Upstream is the time from sending the request upstream to the
	// response's last byte from upstream.
	Upstream string `json:"upstream"`
	// Overhead is Total minus Upstream, per request: the proxy's own cost.
	Overhead string `json:"overhead"`
}
