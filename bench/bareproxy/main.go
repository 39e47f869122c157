// Command bareproxy is the benchmark's floor for a Go proxy: an
// httputil.ReverseProxy that does nothing but forward, with an idle
// connection pool sized to the load.
//
//	bareproxy -listen 127.0.0.1:8000 -backend 127.0.0.1:8080 -idle 64
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen `addr`")
	backend := flag.String("backend", "", "backend `host:port`")
	idle := flag.Int("idle", 64, "idle upstream connections kept (size it to the load's connection count)")
	flag.Parse()

	target := &url.URL{Scheme: "http", Host: *backend}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{
		MaxIdleConns:        *idle,
		MaxIdleConnsPerHost: *idle,
		IdleConnTimeout:     90 * time.Second,
	}
	rp.ErrorLog = log.New(log.Writer(), "bareproxy: ", 0)
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
