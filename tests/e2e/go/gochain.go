// A Go front service calling a Go back service, over plain HTTP or HTTPS (HTTP/1.1 only: HTTP/2
// is switched off on both ends). Standard library only; built by the tests with Debian's
// golang-go (GO111MODULE=off). Nothing is propagated: no traceparent, no request id, and each
// call's path is not the incoming one, so only goroutine causality can tie a call to its request.
//
//	gochain back PORT http|https CERT KEY [MS]      /down/X: 200 "down X" after MS ms (40)
//	gochain front PORT http|https CERT KEY BACKPORT  /up/N: GET /down/qN+500 from the handler;
//	                                                 /spawn/N: GET /spawned/qN+500 from a child
//	                                                 goroutine the handler starts and waits for
//	gochain bench PORT http|https CAFILE N up|spawn  GET /up/0..N-1 (or /spawn/...) in turn
//	                                                 on one keep-alive connection
//
// The servers print "ready" once listening; bench prints "done".
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gochain: "+format+"\n", args...)
	os.Exit(1)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func listen(port, scheme, cert, key string, h http.Handler) {
	srv := &http.Server{
		Handler:      h,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println("ready")
	if scheme == "https" {
		fail("%v", srv.ServeTLS(ln, cert, key))
	}
	fail("%v", srv.Serve(ln))
}

// back answers slowly enough that the front's requests overlap (benchmarks: at once).
func back(delay time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		reply(w, 200, "down "+r.URL.Path)
	}
}

func client(cafile string) *http.Client {
	pem, err := os.ReadFile(cafile)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", cafile)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 64,
	}}
}

func call(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 502, "bad gateway\n"
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 502, "bad gateway\n"
	}
	return resp.StatusCode, string(body)
}

func front(port, scheme, cert, key, backPort string) {
	c := client(cert)
	base := scheme + "://127.0.0.1:" + backPort
	listen(port, scheme, cert, key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		if len(parts) != 3 {
			reply(w, 404, "not found\n")
			return
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil {
			reply(w, 404, "not found\n")
			return
		}
		switch parts[1] {
		case "up":
			status, body := call(c, fmt.Sprintf("%s/down/q%d", base, n+500))
			reply(w, status, body)
		case "spawn":
			done := make(chan string)
			go func() {
				_, body := call(c, fmt.Sprintf("%s/spawned/q%d", base, n+500))
				done <- body
			}()
			reply(w, 200, <-done)
		default:
			reply(w, 404, "not found\n")
		}
	}))
}

// bench makes n requests in turn (tests/bench/probes/go_goroutine_cost).
func bench(port, scheme, cafile string, n int, kind string) {
	c := client(cafile)
	for i := 0; i < n; i++ {
		status, body := call(c, fmt.Sprintf("%s://127.0.0.1:%s/%s/%d", scheme, port, kind, i))
		if status != 200 || !strings.HasPrefix(body, "down /") {
			fail("request %d: status %d, body %q", i, status, body)
		}
	}
	fmt.Println("done")
}

func main() {
	a := os.Args
	switch {
	case len(a) == 7 && a[1] == "bench":
		n, err := strconv.Atoi(a[5])
		if err != nil {
			fail("bad count %q", a[5])
		}
		bench(a[2], a[3], a[4], n, a[6])
	case (len(a) == 6 || len(a) == 7) && a[1] == "back":
		ms := 40
		if len(a) == 7 {
			ms, _ = strconv.Atoi(a[6])
		}
		listen(a[2], a[3], a[4], a[5], back(time.Duration(ms)*time.Millisecond))
	case len(a) == 7 && a[1] == "front":
		front(a[2], a[3], a[4], a[5], a[6])
	default:
		fail("usage: gochain back|front PORT http|https CERT KEY [BACKPORT]")
	}
}
