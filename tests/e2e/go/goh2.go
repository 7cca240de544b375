// HTTP/2 over TLS with net/http and crypto/tls as they come: HTTP/2 negotiated by ALPN ("h2"),
// net/http's bundled HTTP/2 on both ends. Standard library only; built by the tests with
// Debian's golang-go (GO111MODULE=off).
//
//	goh2 server PORT CERT KEY                 /hello, /items/N, /error, else 404
//	goh2 front PORT CERT KEY BACKPORT CAFILE  each request repeated to 127.0.0.1:BACKPORT
//	goh2 client PORT CAFILE N                 GET /items/0..N-1 on one HTTP/2 connection
//
// Servers print "ready" once listening. The client fails unless every response came over
// HTTP/2 on one connection, and prints "done" at the end.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
)

const userAgent = "zt-go-h2/1.0"

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "goh2: "+format+"\n", args...)
	os.Exit(1)
}

// itemBody is the body of /items/n: 10 + n bytes, like tests/e2e/servers/http_server.py.
func itemBody(n int) []byte {
	b := []byte(fmt.Sprintf("item %d:", n))
	for len(b) < 10+n {
		b = append(b, 'x')
	}
	return b
}

func reply(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		reply(w, 505, []byte("HTTP/2 only\n"))
		return
	}
	p := r.URL.Path
	switch {
	case p == "/hello":
		reply(w, 200, []byte("hello, world\n"))
	case strings.HasPrefix(p, "/items/"):
		n, err := strconv.Atoi(p[len("/items/"):])
		if err != nil {
			reply(w, 404, []byte("not found\n"))
			return
		}
		reply(w, 200, itemBody(n))
	case p == "/error":
		reply(w, 500, []byte("internal error\n"))
	default:
		reply(w, 404, []byte("not found\n"))
	}
}

// client is an HTTP/2 client: a custom TLS config turns net/http's HTTP/2 off unless asked for.
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
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
}

func listen(port string, cert, key string, h http.Handler) {
	srv := &http.Server{Handler: h} // ServeTLS offers h2 by ALPN
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println("ready")
	fail("%v", srv.ServeTLS(ln, cert, key))
}

func get(c *http.Client, url string, ctx context.Context) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		return 0, nil, fmt.Errorf("%s: %s, not HTTP/2", url, resp.Proto)
	}
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func front(port, cert, key, backPort, cafile string) {
	c := client(cafile)
	back := "https://127.0.0.1:" + backPort
	listen(port, cert, key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, err := get(c, back+r.URL.RequestURI(), r.Context())
		if err != nil {
			fmt.Fprintf(os.Stderr, "goh2 front: %v\n", err)
			reply(w, 502, []byte("bad gateway\n"))
			return
		}
		reply(w, status, body)
	}))
}

func run(port, cafile string, n int) {
	c := client(cafile)
	local := ""
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if local == "" {
				local = info.Conn.LocalAddr().String()
			} else if local != info.Conn.LocalAddr().String() {
				fail("a second connection: %s after %s", info.Conn.LocalAddr(), local)
			}
		},
	})
	for i := 0; i < n; i++ {
		status, body, err := get(c, fmt.Sprintf("https://127.0.0.1:%s/items/%d", port, i), ctx)
		if err != nil {
			fail("%v", err)
		}
		if status != 200 || len(body) != 10+i {
			fail("/items/%d: status %d, %d bytes", i, status, len(body))
		}
	}
	_, p, _ := net.SplitHostPort(local)
	fmt.Println("local_port " + p)
	fmt.Println("done")
}

func main() {
	a := os.Args
	switch {
	case len(a) == 5 && a[1] == "server":
		listen(a[2], a[3], a[4], http.HandlerFunc(serve))
	case len(a) == 7 && a[1] == "front":
		front(a[2], a[3], a[4], a[5], a[6])
	case len(a) == 5 && a[1] == "client":
		n, err := strconv.Atoi(a[4])
		if err != nil {
			fail("bad count %q", a[4])
		}
		run(a[2], a[3], n)
	default:
		fail("usage: goh2 server|front|client ...")
	}
}
