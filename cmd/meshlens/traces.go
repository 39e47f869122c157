package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshlens/meshlens/collector/queryapi"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/open"
)

func init() {
	register("traces", command{
		summary: "show a trace by trace ID or request ID (x-request-id)",
		run:     runTraces,
	})
}

const tracesUsage = `usage: meshlens traces (--trace-id ID | --request-id ID) [--format text|json]
                      [--data-dir DIR | --database-url URL | --api URL]

Finds a trace in the store, or through a running collector's query API, and
prints its spans as a tree with their timings.
`

// traceDoc and traceSpan are the query API's answer types: the command
// prints the same shape whether it reads the store or the API.
type (
	traceDoc  = queryapi.Trace
	traceSpan = queryapi.Span
)

var traceIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

func runTraces(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("traces", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), tracesUsage, "\nflags:\n"); fs.PrintDefaults() }
	traceID := fs.String("trace-id", "", "the trace's `ID` (32 hexadecimal characters)")
	requestID := fs.String("request-id", "", "a request's x-request-id `ID`")
	format := fs.String("format", "text", "`FORMAT`: text or json")
	dataDir := fs.String("data-dir", "", "read the embedded SQLite store in `DIR`")
	dbURL := fs.String("database-url", os.Getenv("MESHLENS_DATABASE_URL"), "read the PostgreSQL store at `URL` (also MESHLENS_DATABASE_URL)")
	api := fs.String("api", "", "ask a running collector's query API at `URL` (e.g. http://127.0.0.1:16686)")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshlens traces: unexpected arguments %q\n", fs.Args())
		return 2
	}
	*traceID = strings.ToLower(*traceID)
	switch {
	case (*traceID == "") == (*requestID == ""):
		fmt.Fprintln(os.Stderr, "meshlens traces: give one of --trace-id and --request-id")
		return 2
	case *traceID != "" && !traceIDRe.MatchString(*traceID):
		fmt.Fprintln(os.Stderr, "meshlens traces: --trace-id: must be 32 hexadecimal characters")
		return 2
	case *format != "text" && *format != "json":
		fmt.Fprintf(os.Stderr, "meshlens traces: --format %q: want text or json\n", *format)
		return 2
	}
	var doc *traceDoc
	var err error
	if *api != "" {
		if *dataDir != "" || *dbURL != "" {
			fmt.Fprintln(os.Stderr, "meshlens traces: give one of --data-dir, --database-url and --api")
			return 2
		}
		doc, err = traceFromAPI(ctx, *api, *traceID, *requestID)
	} else {
		doc, err = traceFromStore(ctx, *dataDir, *dbURL, *traceID, *requestID)
	}
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(os.Stderr, "meshlens traces: %v\n", err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens traces: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return 1
		}
		return 0
	}
	if err := writeTraceTree(os.Stdout, doc); err != nil {
		return 1
	}
	return 0
}

func traceFromStore(ctx context.Context, dataDir, dbURL, traceID, requestID string) (*traceDoc, error) {
	if dataDir == "" && dbURL == "" {
		dataDir = "meshlens-data"
	}
	st, err := open.Open(ctx, open.Options{DataDir: dataDir, DatabaseURL: dbURL})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if requestID != "" {
		traceID, err = st.TraceIDByRequestID(ctx, requestID)
		if err != nil {
			return nil, fmt.Errorf("request %s: %w", requestID, err)
		}
	}
	spans, err := st.Trace(ctx, traceID)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", traceID, err)
	}
	doc := &traceDoc{TraceID: traceID, RequestID: requestID}
	for _, s := range spans {
		doc.Spans = append(doc.Spans, traceSpan{
			TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, Service: s.Service, Name: s.Name,
			Kind: s.Kind, Start: s.Start.UTC(), DurationMicro: s.Duration.Microseconds(), StatusCode: s.StatusCode,
			StatusMessage: s.StatusMsg, RequestID: s.RequestID, Attributes: s.Attributes,
		})
	}
	return doc, nil
}

func traceFromAPI(ctx context.Context, base, traceID, requestID string) (*traceDoc, error) {
	u := strings.TrimRight(base, "/") + "/api/v1/traces/" + url.PathEscape(traceID)
	if requestID != "" {
		u = strings.TrimRight(base, "/") + "/api/v1/requests/" + url.PathEscape(requestID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("--api: %w", err)
	}
	if tok := os.Getenv("MESHLENS_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("query api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("query api %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var doc traceDoc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("query api %s: decode trace: %w", u, err)
	}
	return &doc, nil
}

// writeTraceTree prints the spans as a tree, children under their parent
// in start order, with each span's offset from the trace's start.
func writeTraceTree(w io.Writer, doc *traceDoc) error {
	fmt.Fprintf(w, "trace %s", doc.TraceID)
	if doc.RequestID != "" {
		fmt.Fprintf(w, " (request %s)", doc.RequestID)
	}
	fmt.Fprintf(w, ", %d spans\n", len(doc.Spans))
	if len(doc.Spans) == 0 {
		return nil
	}
	byID := map[string]bool{}
	children := map[string][]traceSpan{}
	t0 := doc.Spans[0].Start
	for _, s := range doc.Spans {
		byID[s.SpanID] = true
		if s.Start.Before(t0) {
			t0 = s.Start
		}
	}
	for _, s := range doc.Spans {
		parent := s.ParentSpanID
		if !byID[parent] {
			parent = "" // a root, or a parent that is not stored
		}
		children[parent] = append(children[parent], s)
	}
	for _, c := range children {
		sort.Slice(c, func(i, j int) bool { return c[i].Start.Before(c[j].Start) })
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SPAN\tKIND\tSTART\tDURATION\tSTATUS")
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, s := range children[parent] {
			status := s.StatusCode
			if code := s.Attributes["http.response.status_code"]; code != "" {
				status += " " + code
			}
			fmt.Fprintf(tw, "%s%s %s\t%s\t+%v\t%v\t%s\n", strings.Repeat("  ", depth), s.Service, s.Name, s.Kind,
				s.Start.Sub(t0).Round(time.Microsecond), (time.Duration(s.DurationMicro) * time.Microsecond), status)
			walk(s.SpanID, depth+1)
		}
	}
	walk("", 0)
	return tw.Flush()
}
