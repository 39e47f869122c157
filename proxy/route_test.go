package proxy

import (
	"strings"
	"testing"
)

func TestRouteMatch(t *testing.T) {
	rt, err := newRouteTable([]string{"/users/{id}", "/users/{id}/orders/{order}", "/users", "/static/{file...}", "/"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(path string, grpc bool, want string) {
		t.Helper()
		if got := rt.Match(path, grpc); got != want {
			t.Errorf("Match(%q, %v) = %q, want %q", path, grpc, got, want)
		}
	}
	f("/users/42", false, "/users/{id}")
	f("/users/42/", false, "/users/{id}")
	f("/users/42/orders/7", false, "/users/{id}/orders/{order}")
	f("/users", false, "/users")
	f("/users/", false, "/users")
	f("/static/css/site.css", false, "/static/{file...}")
	f("/static", false, "/static/{file...}")
	f("/", false, "/")
	f("", false, "/")
	// Fallbacks: first segment, or /{id} for identifier-like segments.
	f("/users//orders", false, "/users")
	f("/health/live", false, "/health")
	f("/v1/things/9", false, "/v1")
	f("/12345/x", false, "/{id}")
	f("/3fa85f64-5717-4562-b3fc-2c963f66afa6", false, "/{id}")
	f("/a%20b", false, "/{id}")
	f("/a b", false, "/{id}")
	f("/"+strings.Repeat("x", 65), false, "/{id}")
	// gRPC: the method path is its own route.
	var empty *routeTable
	if got := empty.Match("/pkg.Users/Get", true); got != "/pkg.Users/Get" {
		t.Errorf("gRPC route %q", got)
	}
	if got := empty.Match("/pkg.Users/Get/extra", true); got != "/pkg.Users" {
		t.Errorf("odd gRPC path route %q", got)
	}
	if got := empty.Match("/users/1", false); got != "/users" {
		t.Errorf("nil table %q", got)
	}
}

func TestRouteTemplateErrors(t *testing.T) {
	for _, bad := range []string{"users", "/a//b", "/a/{", "/a/{id}x", "/a/x{id}", "/{}", "/{a b}", "/{rest...}/x", "/{a-b}"} {
		if err := validRoute(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for _, good := range []string{"/", "/a", "/a/", "/{id}", "/a/{id}/b", "/{rest...}", "/a/{p_1}"} {
		if err := validRoute(good); err != nil {
			t.Errorf("refused %q: %v", good, err)
		}
	}
}

func FuzzRouteMatch(f *testing.F) {
	f.Add("/users/{id}", "/users/42", false)
	f.Add("/static/{f...}", "/static/a/b", false)
	f.Add("/", "/pkg.Svc/Method", true)
	f.Fuzz(func(t *testing.T, template, path string, grpc bool) {
		rt, err := newRouteTable([]string{template})
		if err != nil {
			return
		}
		got := rt.Match(path, grpc)
		if got == "" || got[0] != '/' {
			t.Fatalf("route %q for %q", got, path)
		}
		// The route is the template, a constant, or a prefix of the path:
		// never anything the path did not contain.
		if got != template && got != "/" && got != "/{id}" && !strings.HasPrefix(path, got) {
			t.Fatalf("route %q is not derived from template %q or path %q", got, template, path)
		}
		if len(got) > 256 && got != template {
			t.Fatalf("unbounded route length %d", len(got))
		}
	})
}

func BenchmarkRouteMatch(b *testing.B) {
	rt, _ := newRouteTable([]string{"/users/{id}", "/users/{id}/orders/{order}", "/static/{file...}"})
	b.ReportAllocs()
	for b.Loop() {
		rt.Match("/users/42/orders/7", false)
	}
}
