package hdrreceiver

import (
	"fmt"
	"mime"
	"net/http"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/internal/spancheck"
)

const (
	protobufContentType = "application/x-protobuf"
	jsonContentType     = "application/json"
)

// otlpTraces serves OTLP/HTTP traces (protobuf or JSON) the way the stock
// otlp receiver does: 200 with an ExportTraceServiceResponse, 400 for a bad
// request, 503 with Retry-After when the pipeline refuses (memory limiter,
// full queue), each error as a google.rpc.Status in the request's encoding.
func (r *hdrReceiver) otlpTraces(w http.ResponseWriter, req *http.Request) {
	traces, _ := r.consumers()
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != protobufContentType && mt != jsonContentType {
		r.health.Rejected.WithLabelValues(health.SignalSpans, reasonBadEncoding).Inc()
		writeStatus(w, jsonContentType, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			fmt.Sprintf("Content-Type %q: must be %s or %s", req.Header.Get("Content-Type"), protobufContentType, jsonContentType))
		return
	}
	if traces == nil {
		writeStatus(w, mt, http.StatusNotFound, codes.Unimplemented, "traces are not enabled: the meshlens_hdr receiver is in no traces pipeline")
		return
	}
	if !r.ext.CheckIngest(req) {
		r.health.Rejected.WithLabelValues(health.SignalSpans, reasonUnauthorized).Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshlens"`)
		writeStatus(w, mt, http.StatusUnauthorized, codes.Unauthenticated, "missing or wrong bearer token")
		return
	}
	body, err := readBody(req, r.cfg.MaxTraceBytes)
	if err != nil {
		code := bodyStatus(err)
		reason := reasonBadEncoding
		if code == http.StatusRequestEntityTooLarge {
			reason = reasonTooLarge
		}
		r.health.Rejected.WithLabelValues(health.SignalSpans, reason).Inc()
		writeStatus(w, mt, code, codes.InvalidArgument, err.Error())
		return
	}
	er := ptraceotlp.NewExportRequest()
	if mt == protobufContentType {
		err = er.UnmarshalProto(body)
	} else {
		err = er.UnmarshalJSON(body)
	}
	if err != nil {
		r.health.Rejected.WithLabelValues(health.SignalSpans, reasonBadEncoding).Inc()
		writeStatus(w, mt, http.StatusBadRequest, codes.InvalidArgument, "decode ExportTraceServiceRequest: "+err.Error())
		return
	}
	td := er.Traces()
	// Spans no store can keep (a start far in the future or unset) are
	// left out, counted, and named in the answer's partial_success.
	bad, why := spancheck.Filter(td, r.now())
	if bad > 0 {
		r.health.Rejected.WithLabelValues(health.SignalSpans, spancheck.Reason).Add(float64(bad))
	}
	n := td.SpanCount()
	if n == 0 && bad > 0 {
		writeStatus(w, mt, http.StatusBadRequest, codes.InvalidArgument, fmt.Sprintf("nothing taken: %d spans left out: %s", bad, why))
		return
	}
	if n > 0 {
		if err := traces.ConsumeTraces(req.Context(), td); err != nil {
			if consumererror.IsPermanent(err) {
				r.health.Rejected.WithLabelValues(health.SignalSpans, reasonPermanent).Add(float64(n))
				writeStatus(w, mt, http.StatusBadRequest, codes.InvalidArgument, err.Error())
				return
			}
			r.health.Rejected.WithLabelValues(health.SignalSpans, reasonOverloaded).Add(float64(n))
			w.Header().Set("Retry-After", RetryAfterSeconds)
			writeStatus(w, mt, http.StatusServiceUnavailable, codes.Unavailable, "collector busy, retry later: "+err.Error())
			return
		}
		r.health.Received.WithLabelValues(health.SignalSpans).Add(float64(n))
	}
	resp := ptraceotlp.NewExportResponse()
	if bad > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(bad))
		resp.PartialSuccess().SetErrorMessage(why)
	}
	var out []byte
	if mt == protobufContentType {
		out, err = resp.MarshalProto()
	} else {
		out, err = resp.MarshalJSON()
	}
	if err != nil {
		writeStatus(w, mt, http.StatusInternalServerError, codes.Internal, err.Error())
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// writeStatus answers with a google.rpc.Status, as OTLP/HTTP asks.
func writeStatus(w http.ResponseWriter, contentType string, httpCode int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
	if contentType == protobufContentType {
		b, err := proto.Marshal(st)
		if err == nil {
			w.Header().Set("Content-Type", protobufContentType)
			w.WriteHeader(httpCode)
			_, _ = w.Write(b)
			return
		}
	}
	writeJSON(w, httpCode, map[string]any{"code": st.Code, "message": st.Message})
}
