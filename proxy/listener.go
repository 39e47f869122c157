package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// tlsGuardListener terminates TLS itself so that HTTP/1.1 connections can
// pass through the smuggling guard while HTTP/2 (ALPN "h2") connections
// reach net/http as the *tls.Conn it needs to serve HTTP/2.
type tlsGuardListener struct {
	inner    net.Listener
	cfg      *tls.Config
	onReject func(string)

	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

const tlsHandshakeTimeout = 10 * time.Second

func newTLSGuardListener(inner net.Listener, cfg *tls.Config, onReject func(string)) *tlsGuardListener {
	l := &tlsGuardListener{inner: inner, cfg: cfg, onReject: onReject, conns: make(chan net.Conn), done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsGuardListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.Close()
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsGuardListener) handshake(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		out = &guardedConn{Conn: tc, onReject: l.onReject}
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

func (l *tlsGuardListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsGuardListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// wait blocks until the accept loop and pending handshakes have ended.
func (l *tlsGuardListener) wait() { l.wg.Wait() }

func (l *tlsGuardListener) Addr() net.Addr { return l.inner.Addr() }
