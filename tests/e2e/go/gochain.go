// A Go front service calling a Go back service, over plain HTTP or HTTPS (HTTP/1.1 only: HTTP/2
// is switched off on both ends). Standard library only; built by the tests with Debian's
// golang-go (GO111MODULE=off). Nothing is propagated: no traceparent, no request id, and each
// call's path is not the incoming one, so only goroutine causality can tie a call to its request.
//
//	gochain back PORT http|https CERT KEY           /down/X: 200 "down X" after 40 ms
//	gochain front PORT http|https CERT KEY BACKPORT  /up/N: GET /down/qN+500 from the handler;
//	                                                 /spawn/N: GET /spawned/qN+500 from a child
//	                                                 goroutine the handler starts and waits for
//
// Both print "ready" once listening.
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

// back answers slowly enough that the front's requests overlap.
func back(w http.ResponseWriter, r *http.Request) {
	time.Sleep(40 * time.Millisecond)
	reply(w, 200, "down "+r.URL.Path)
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

func main() {
	a := os.Args
	switch {
	case len(a) == 6 && a[1] == "back":
		listen(a[2], a[3], a[4], a[5], http.HandlerFunc(back))
	case len(a) == 7 && a[1] == "front":
		front(a[2], a[3], a[4], a[5], a[6])
	default:
		fail("usage: gochain back|front PORT http|https CERT KEY [BACKPORT]")
	}
}
