// HTTPS server, front service and keep-alive client over net/http and crypto/tls (HTTP/1.1
// only: HTTP/2 is switched off on both ends). Standard library only; built by the tests with
// Debian's golang-go (GO111MODULE=off).
//
//	gohttps server PORT CERT KEY                 /hello, /items/N[?status=S], /error, else 404
//	gohttps front PORT CERT KEY BACKPORT CAFILE  each request repeated to 127.0.0.1:BACKPORT
//	gohttps client PORT CAFILE N [--wait-go|--wait-start]  GET /items/0..N-1, one connection
//	gohttps bench PORT CAFILE N                  GET /hello N times on one connection
//
// Servers print "ready" once listening; the client prints "local_port P" after its first
// request (with --wait-go it then waits for a line on stdin) and "done" at the end. With
// --wait-start it prints "started" and waits for a line on stdin before its first request, and
// after "done" it waits for stdin to close before it exits (so the agent may read its /proc
// entry whenever it likes: a process that is gone leaves only its 15-byte task name).
package main

import (
	"bufio"
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

const userAgent = "zt-go-https/1.0"

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gohttps: "+format+"\n", args...)
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
		status := 200
		if s := r.URL.Query().Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		reply(w, status, itemBody(n))
	case p == "/error":
		reply(w, 500, []byte("internal error\n"))
	default:
		reply(w, 404, []byte("not found\n"))
	}
}

func caPool(file string) *x509.CertPool {
	pem, err := os.ReadFile(file)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", file)
	}
	return pool
}

func transport(cafile string) *http.Transport {
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: caPool(cafile)},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 64,
	}
}

func listen(port string, cert, key string, h http.Handler) {
	srv := &http.Server{
		Handler:      h,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
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
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func front(port, cert, key, backPort, cafile string) {
	c := &http.Client{Transport: transport(cafile)}
	back := "https://127.0.0.1:" + backPort
	listen(port, cert, key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, err := get(c, back+r.URL.RequestURI(), r.Context())
		if err != nil {
			reply(w, 502, []byte("bad gateway\n"))
			return
		}
		reply(w, status, body)
	}))
}

func client(port, cafile string, n int, waitGo, waitStart bool) {
	c := &http.Client{Transport: transport(cafile)}
	stdin := bufio.NewReader(os.Stdin)
	if waitStart {
		fmt.Println("started")
		stdin.ReadString('\n')
	}
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
		if i == 0 {
			_, p, _ := net.SplitHostPort(local)
			fmt.Println("local_port " + p)
			if waitGo {
				stdin.ReadString('\n')
			}
		}
	}
	fmt.Println("done")
	if waitStart {
		io.Copy(io.Discard, stdin)
	}
}

// bench makes n requests for /hello on one keep-alive connection (tests/bench/probes).
func bench(port, cafile string, n int) {
	c := &http.Client{Transport: transport(cafile)}
	url := "https://127.0.0.1:" + port + "/hello"
	for i := 0; i < n; i++ {
		status, body, err := get(c, url, context.Background())
		if err != nil || status != 200 || len(body) != 13 {
			fail("request %d: status %d, %d bytes, %v", i, status, len(body), err)
		}
	}
	fmt.Println("done")
}

func main() {
	a := os.Args
	switch {
	case len(a) == 5 && a[1] == "server":
		listen(a[2], a[3], a[4], http.HandlerFunc(serve))
	case len(a) == 7 && a[1] == "front":
		front(a[2], a[3], a[4], a[5], a[6])
	case len(a) >= 5 && a[1] == "client":
		n, err := strconv.Atoi(a[4])
		if err != nil {
			fail("bad count %q", a[4])
		}
		client(a[2], a[3], n, len(a) > 5 && a[5] == "--wait-go", len(a) > 5 && a[5] == "--wait-start")
	case len(a) == 5 && a[1] == "bench":
		n, err := strconv.Atoi(a[4])
		if err != nil {
			fail("bad count %q", a[4])
		}
		bench(a[2], a[3], n)
	default:
		fail("usage: gohttps server|front|client ...")
	}
}
