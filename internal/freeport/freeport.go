// Package freeport finds loopback ports nothing listens on, for processes
// started on them a moment later (tests, the demo, the benchmark harness).
//
// The port is picked below the kernel's ephemeral range. Outgoing
// connections take their source ports from that range, so a port found
// free there (which is what listening on port 0 gives) is often taken by
// some connection before the process it was meant for binds it: on a
// machine running several tests at once, "address already in use". Below
// the range only another listener can take it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the lowest port picked: above the registered services most
// machines run (PostgreSQL, Redis, message brokers and the like sit lower).
const lowest = 10000

// Port returns a loopback port nothing listened on just now.
func Port() (int, error) {
	top := ephemeralStart()
	for range 100 {
		p := lowest + rand.IntN(top-lowest)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p, nil
		}
	}
	// Nothing free below the range after 100 tries: let the kernel pick.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr is Port as "127.0.0.1:PORT".
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", p), nil
}

// ephemeralStart is the first port of the kernel's ephemeral range (Linux;
// 32768, its default, elsewhere or when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lowest+1000 {
				return n
			}
		}
	}
	return 32768
}
