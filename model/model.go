// Package model holds the few types every part of meshlens speaks: the hop key
// a latency is recorded under, the histogram limits, and the payload a proxy
// sends to the collector. Standard library only.
package model

import (
	"fmt"
	"strconv"
)

// Direction says which side of a service a hop was measured on.
type Direction string

const (
	// Inbound hops are measured by a service's own sidecar for its callers
	// (span kind SERVER).
	Inbound Direction = "inbound"
	// Outbound hops are measured by a caller's sidecar for calls it makes
	// (span kind CLIENT).
	Outbound Direction = "outbound"
)

// Valid reports whether d is one of the two known directions.
func (d Direction) Valid() bool { return d == Inbound || d == Outbound }

// Histogram geometry shared by the proxy and the collector. Values are
// microseconds. A value above HighestTrackableMicros is recorded as
// HighestTrackableMicros (and counted by the recorder).
const (
	LowestTrackableMicros  = 1
	HighestTrackableMicros = 3_600_000_000 // one hour
	SignificantFigures     = 3
)

// OtherRoute is the route a request is recorded under once a service has
// more distinct routes than its configured limit.
const OtherRoute = "other"

// HopKey identifies one measured hop. Every latency histogram is keyed by it.
type HopKey struct {
	Service     string    `json:"service"`
	Direction   Direction `json:"direction"`
	Peer        string    `json:"peer"`
	Route       string    `json:"route"`
	Method      string    `json:"method"`
	StatusClass string    `json:"status_class"`
}

// Edge returns the caller and the callee of the hop.
func (k HopKey) Edge() (caller, callee string) {
	if k.Direction == Inbound {
		return k.Peer, k.Service
	}
	return k.Service, k.Peer
}

// FieldError is a validation error that names the field at fault.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the fields a receiver relies on. The error is a
// *FieldError.
func (k HopKey) Validate() error {
	if k.Service == "" {
		return &FieldError{"service", "must not be empty"}
	}
	if !k.Direction.Valid() {
		return &FieldError{"direction", fmt.Sprintf("%q is neither %q nor %q", k.Direction, Inbound, Outbound)}
	}
	if !ValidStatusClass(k.StatusClass) {
		return &FieldError{"status_class", fmt.Sprintf("%q is not one of 1xx..5xx", k.StatusClass)}
	}
	return nil
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// StatusClass maps an HTTP status code to its class ("2xx", "5xx", ...).
// Codes outside 100..599 count as "5xx": something went wrong in the hop.
func StatusClass(code int) string {
	if code < 100 || code > 599 {
		return "5xx"
	}
	return statusClasses[code/100-1]
}

// ValidStatusClass reports whether s is one of "1xx".."5xx".
func ValidStatusClass(s string) bool {
	for _, c := range statusClasses {
		if s == c {
			return true
		}
	}
	return false
}

// GRPCStatusClass maps a gRPC status code to the HTTP status class of the
// standard gRPC-to-HTTP mapping, so a gRPC call that fails on the server side
// counts as "5xx" even though its HTTP status is 200. OK is "2xx".
func GRPCStatusClass(code int) string {
	switch code {
	case 0: // OK
		return "2xx"
	case 1: // CANCELLED: the client went away (HTTP 499)
		return "4xx"
	case 3, 5, 6, 7, 9, 11, 16: // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNAUTHENTICATED
		return "4xx"
	case 8: // RESOURCE_EXHAUSTED (HTTP 429)
		return "4xx"
	default: // UNKNOWN, DEADLINE_EXCEEDED, ABORTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, anything else
		return "5xx"
	}
}

// ParseGRPCStatus parses a grpc-status header value. ok is false when the
// value is not a non-negative integer.
func ParseGRPCStatus(v string) (code int, ok bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
