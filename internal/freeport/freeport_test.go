package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPort: ports come from below the ephemeral range and can be bound.
func TestPort(t *testing.T) {
	top := ephemeralStart()
	for range 20 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < lowest || p >= top {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, top)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d was given as free: %v", p, err)
		}
		ln.Close()
	}
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Errorf("Addr() = %q", addr)
	}
}
