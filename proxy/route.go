package proxy

import (
	"fmt"
	"strings"
)

// A route template is a path whose segments are literals, "{name}" (any one
// non-empty segment) or, last only, "{name...}" (the rest of the path,
// possibly empty): "/users/{id}", "/static/{file...}".
//
// Matching is first match in the order configured; it allocates nothing.
// A path no template matches is recorded under a stable fallback: its first
// segment ("/users" for "/users/42/orders"), "/{id}" when that segment looks
// like an identifier (digits, or a long hex/UUID string), "/" for the root;
// a gRPC path "/pkg.Service/Method" is its own route.

type routeSegment struct {
	literal string
	param   bool
}

type route struct {
	template string
	segments []routeSegment
	rest     bool // ends in {name...}
}

// routeTable matches request paths to route templates.
type routeTable struct {
	routes []route
}

func validRoute(t string) error {
	_, err := compileRoute(t)
	return err
}

func compileRoute(t string) (route, error) {
	if !strings.HasPrefix(t, "/") {
		return route{}, fmt.Errorf("%q must start with /", t)
	}
	r := route{template: t}
	if t == "/" {
		return r, nil
	}
	parts := strings.Split(t[1:], "/")
	for i, p := range parts {
		if p == "" {
			if i == len(parts)-1 {
				break // a trailing slash is ignored
			}
			return route{}, fmt.Errorf("%q has an empty segment", t)
		}
		if p[0] != '{' {
			if strings.ContainsAny(p, "{}") {
				return route{}, fmt.Errorf("%q: segment %q mixes a literal and a parameter", t, p)
			}
			r.segments = append(r.segments, routeSegment{literal: p})
			continue
		}
		if p[len(p)-1] != '}' {
			return route{}, fmt.Errorf("%q: segment %q has no closing }", t, p)
		}
		name := p[1 : len(p)-1]
		rest := strings.HasSuffix(name, "...")
		if rest {
			name = strings.TrimSuffix(name, "...")
			if i != len(parts)-1 {
				return route{}, fmt.Errorf("%q: {%s...} must be the last segment", t, name)
			}
		}
		if !validParamName(name) {
			return route{}, fmt.Errorf("%q: parameter name %q must be letters, digits or _", t, name)
		}
		if rest {
			r.rest = true
			break
		}
		r.segments = append(r.segments, routeSegment{param: true})
	}
	return r, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func newRouteTable(templates []string) (*routeTable, error) {
	t := &routeTable{routes: make([]route, 0, len(templates))}
	for i, s := range templates {
		r, err := compileRoute(s)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		t.routes = append(t.routes, r)
	}
	return t, nil
}

// Match returns the route template for path, or the fallback route.
func (t *routeTable) Match(path string, grpc bool) string {
	if t != nil {
		for i := range t.routes {
			if t.routes[i].match(path) {
				return t.routes[i].template
			}
		}
	}
	return fallbackRoute(path, grpc)
}

func (r *route) match(path string) bool {
	p := path
	for _, s := range r.segments {
		if len(p) == 0 || p[0] != '/' {
			return false
		}
		p = p[1:]
		end := strings.IndexByte(p, '/')
		if end < 0 {
			end = len(p)
		}
		seg := p[:end]
		if s.param {
			if seg == "" {
				return false
			}
		} else if seg != s.literal {
			return false
		}
		p = p[end:]
	}
	if r.rest {
		return true
	}
	return p == "" || p == "/"
}

// fallbackRoute is the route of a path no template matched. It is a
// substring of path or a constant, so it allocates nothing.
func fallbackRoute(path string, grpc bool) string {
	if len(path) < 2 || path[0] != '/' {
		return "/"
	}
	if grpc {
		// "/pkg.Service/Method": bounded by the service's API.
		if i := strings.IndexByte(path[1:], '/'); i > 0 && i < len(path)-2 && strings.IndexByte(path[i+2:], '/') < 0 && len(path) <= 256 {
			return path
		}
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		end = len(path) - 1
	}
	seg := path[1 : 1+end]
	if seg == "" {
		return "/"
	}
	if identifierLike(seg) {
		return "/{id}"
	}
	return path[:1+end]
}

// identifierLike reports whether a path segment looks like a value rather
// than a name: all digits, long hex/UUID strings, anything over 64 bytes or
// with characters outside the unreserved set.
func identifierLike(s string) bool {
	if len(s) > 64 {
		return true
	}
	digits, hex := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
		case c == '-':
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z' || c == '_' || c == '.' || c == '~':
		default:
			return true
		}
	}
	return digits == len(s) || (len(s) >= 16 && hex == len(s) && digits > 0)
}
