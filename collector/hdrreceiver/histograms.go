package hdrreceiver

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"

	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// RetryAfterSeconds is the Retry-After a refused (overloaded) request gets.
const RetryAfterSeconds = "5"

// HistogramAnswer is the JSON body of a histogram POST answer. A batch is
// taken in part: every valid hop is taken, and Rejected names each interval
// or hop that was not. When something was rejected and nothing taken the
// status is 400; a batch of idle intervals (no hops) is a 200 taking nothing.
type HistogramAnswer struct {
	Error    string          `json:"error,omitempty"`
	Accepted int             `json:"accepted_hops"`
	Rejected []hdr.Rejection `json:"rejected,omitempty"`
}

// Rejection reasons counted in meshlens_collector_rejected_total.
const (
	reasonBadBatch     = "bad_batch"
	reasonBadInterval  = "bad_interval"
	reasonBadHistogram = "bad_histogram"
	reasonBadHopKey    = "bad_hop_key"
	reasonTooLarge     = "too_large"
	reasonBadEncoding  = "bad_encoding"
	reasonUnauthorized = "unauthorized"
	reasonOverloaded   = "overloaded"
	reasonPermanent    = "pipeline_refused"
)

// rejectionReason classifies a rejection by the field it names.
func rejectionReason(r hdr.Rejection) string {
	switch {
	case !strings.Contains(r.Field, ".hops["):
		return reasonBadInterval
	case strings.HasSuffix(r.Field, ".total"), strings.HasSuffix(r.Field, ".upstream"), strings.HasSuffix(r.Field, ".overhead"):
		return reasonBadHistogram
	default:
		return reasonBadHopKey
	}
}

func (r *hdrReceiver) histograms(w http.ResponseWriter, req *http.Request) {
	_, logs := r.consumers()
	if logs == nil {
		writeError(w, http.StatusNotFound, "histograms are not enabled: the meshlens_hdr receiver is in no logs pipeline")
		return
	}
	rejected := r.health.Rejected
	if !r.ext.CheckIngest(req) {
		rejected.WithLabelValues(health.SignalHistograms, reasonUnauthorized).Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshlens"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != model.HistogramContentType {
		rejected.WithLabelValues(health.SignalHistograms, reasonBadEncoding).Inc()
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: must be %s", req.Header.Get("Content-Type"), model.HistogramContentType))
		return
	}
	body, err := readBody(req, r.cfg.MaxHistogramBytes)
	if err != nil {
		code := bodyStatus(err)
		reason := reasonBadEncoding
		if code == http.StatusRequestEntityTooLarge {
			reason = reasonTooLarge
		}
		rejected.WithLabelValues(health.SignalHistograms, reason).Inc()
		writeError(w, code, err.Error())
		return
	}
	b, err := hdr.DecodeBatch(body, r.now())
	if err != nil {
		rejected.WithLabelValues(health.SignalHistograms, reasonBadBatch).Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, rej := range b.Rejected {
		rejected.WithLabelValues(health.SignalHistograms, rejectionReason(rej)).Inc()
	}
	if b.Hops == 0 {
		if len(b.Rejected) > 0 {
			writeJSON(w, http.StatusBadRequest, HistogramAnswer{Error: "nothing taken: " + b.Rejected[0].String(), Rejected: b.Rejected})
			return
		}
		// Only idle intervals (no hop saw a request): valid, nothing to
		// take.
		writeJSON(w, http.StatusOK, HistogramAnswer{})
		return
	}
	ld, err := hdrlog.FromBatch(b)
	if err != nil {
		rejected.WithLabelValues(health.SignalHistograms, reasonBadHistogram).Add(float64(b.Hops))
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The histograms ride along in the context, so the exporters this
	// process hands the records to need not decode them again.
	if err := logs.ConsumeLogs(hdrlog.WithDecoded(req.Context(), b), ld); err != nil {
		if consumererror.IsPermanent(err) {
			rejected.WithLabelValues(health.SignalHistograms, reasonPermanent).Add(float64(b.Hops))
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		rejected.WithLabelValues(health.SignalHistograms, reasonOverloaded).Add(float64(b.Hops))
		w.Header().Set("Retry-After", RetryAfterSeconds)
		writeError(w, http.StatusServiceUnavailable, "collector busy, retry later: "+err.Error())
		return
	}
	r.health.Received.WithLabelValues(health.SignalHistograms).Add(float64(b.Hops))
	writeJSON(w, http.StatusOK, HistogramAnswer{Accepted: b.Hops, Rejected: b.Rejected})
}
