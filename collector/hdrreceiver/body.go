package hdrreceiver

import (
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

// errTooLarge is returned by readBody for a body over the limit.
var errTooLarge = errors.New("body too large")

// readBody reads a request body, decompressing gzip, deflate or zstd, and
// fails with errTooLarge past limit bytes after decompression. The
// compressed body is bounded by the same limit.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, req.ContentLength, limit)
	}
	var src io.Reader = http.MaxBytesReader(nil, req.Body, limit+1)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		z, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer z.Close()
		src = z
	case "deflate":
		z, err := zlib.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("deflate: %w", err)
		}
		defer z.Close()
		src = z
	case "zstd":
		z, err := zstd.NewReader(src, zstd.WithDecoderMaxMemory(uint64(limit)+1), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer z.Close()
		src = z
	default:
		return nil, &unsupportedEncodingError{enc}
	}
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes after decompression", errTooLarge, limit)
	}
	return b, nil
}

type unsupportedEncodingError struct{ enc string }

func (e *unsupportedEncodingError) Error() string {
	return "Content-Encoding " + strconv.Quote(e.enc) + " is not supported (gzip, deflate, zstd or none)"
}

// bodyStatus maps a readBody error to its HTTP status.
func bodyStatus(err error) int {
	var ue *unsupportedEncodingError
	switch {
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &ue):
		return http.StatusUnsupportedMediaType
	default:
		return http.StatusBadRequest
	}
}

// errorBody is the JSON body of a histogram answer that is not 2xx.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}
