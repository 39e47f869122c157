package jaeger

// The JSON model of Jaeger's HTTP query API (the "internal" API its UI and
// Grafana's Jaeger data source call): every answer is an envelope with data,
// total, limit, offset and errors; times are microseconds since the Unix
// epoch and durations microseconds.

// response is the envelope of every answer, successful or not.
type response struct {
	Data   any        `json:"data"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
	Errors []apiError `json:"errors"`
}

// apiError is one entry of an envelope's errors.
type apiError struct {
	Code    int    `json:"code,omitempty"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}

// Trace is one trace: its spans and the processes (services) they ran in.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is one span. ProcessID keys Trace.Processes.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	Flags         uint32      `json:"flags,omitempty"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the Unix epoch
	Duration      int64       `json:"duration"`  // µs
	Tags          []KeyValue  `json:"tags"`
	Logs          []Log       `json:"logs"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference links a span to another; the parent is a CHILD_OF reference.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// RefChildOf is the reference type of a span's parent.
const RefChildOf = "CHILD_OF"

// Process is the service a span ran in.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Log is a timed event on a span.
type Log struct {
	Timestamp int64      `json:"timestamp"` // µs
	Fields    []KeyValue `json:"fields"`
}

// KeyValue is a typed tag. Type is one of the Value* constants and says
// what JSON type Value has.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// The tag value types of Jaeger's model.
const (
	ValueString  = "string"
	ValueBool    = "bool"
	ValueInt64   = "int64"
	ValueFloat64 = "float64"
)

// DependencyLink is one caller → callee edge with the calls seen on it.
type DependencyLink struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}

// Operation is a span name with its kind, as /api/operations lists them.
type Operation struct {
	Name     string `json:"name"`
	SpanKind string `json:"spanKind"`
}
