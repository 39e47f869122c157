// Command sink is the benchmark's stand-in collector: it accepts meshproxy's
// span exports (POST /v1/traces) and histogram flushes (POST /v1/histograms),
// reads each body whole and answers 200, and counts what it got. GET /counts
// returns the counts as JSON.
//
//	sink -listen 127.0.0.1:4318
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4318", "listen `addr`")
	flag.Parse()

	var traces, histograms, bytes atomic.Int64
	accept := func(n *atomic.Int64, contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			n.Add(1)
			bytes.Add(b)
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(http.StatusOK)
		}
	}
	mux := http.NewServeMux()
	// An empty protobuf ExportTraceServiceResponse is zero bytes.
	mux.Handle("POST /v1/traces", accept(&traces, "application/x-protobuf"))
	mux.Handle("POST /v1/histograms", accept(&histograms, "application/json"))
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"traces": traces.Load(), "histograms": histograms.Load(), "bytes": bytes.Load(),
		})
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
