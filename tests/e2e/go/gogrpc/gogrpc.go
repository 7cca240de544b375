// A grpc-go server and client over TLS (crypto/tls, HTTP/2 by ALPN). The service is written
// by hand, without generated code: zt.test.Echo/Echo takes and returns a
// google.protobuf.StringValue (github.com/golang/protobuf's well-known type). Built by the
// tests in GOPATH mode (GO111MODULE=off) against Debian's golang-google-grpc-dev, offline.
//
//	gogrpc server PORT CERT KEY      Echo: "echo " + the value; the value "fail": NOT_FOUND
//	gogrpc client PORT CAFILE N      N Echo calls and one that fails, on one connection
//
// The server prints "ready" once listening; the client prints "done" at the end.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/golang/protobuf/ptypes/wrappers"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gogrpc: "+format+"\n", args...)
	os.Exit(1)
}

// echoService is the handler type of the hand-written service description.
type echoService interface{}

func echo(_ interface{}, ctx context.Context, dec func(interface{}) error,
	_ grpc.UnaryServerInterceptor) (interface{}, error) {
	in := new(wrappers.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if in.Value == "fail" {
		return nil, status.Error(codes.NotFound, "no such thing")
	}
	return &wrappers.StringValue{Value: "echo " + in.Value}, nil
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: "zt.test.Echo",
	HandlerType: (*echoService)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Echo", Handler: echo}},
	Metadata:    "echo.proto",
}

func server(port, cert, key string) {
	creds, err := credentials.NewServerTLSFromFile(cert, key)
	if err != nil {
		fail("%v", err)
	}
	s := grpc.NewServer(grpc.Creds(creds))
	s.RegisterService(&echoDesc, struct{}{})
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println("ready")
	fail("%v", s.Serve(ln))
}

func client(port, cafile string, n int) {
	creds, err := credentials.NewClientTLSFromFile(cafile, "127.0.0.1")
	if err != nil {
		fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "127.0.0.1:"+port, grpc.WithTransportCredentials(creds),
		grpc.WithBlock())
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	for i := 0; i < n; i++ {
		out := new(wrappers.StringValue)
		in := &wrappers.StringValue{Value: strconv.Itoa(i)}
		if err := conn.Invoke(ctx, "/zt.test.Echo/Echo", in, out); err != nil {
			fail("call %d: %v", i, err)
		}
		if out.Value != "echo "+in.Value {
			fail("call %d: %q", i, out.Value)
		}
	}
	err = conn.Invoke(ctx, "/zt.test.Echo/Echo", &wrappers.StringValue{Value: "fail"},
		new(wrappers.StringValue))
	if status.Code(err) != codes.NotFound {
		fail("the failing call: %v", err)
	}
	fmt.Println("done")
}

func main() {
	a := os.Args
	switch {
	case len(a) == 5 && a[1] == "server":
		server(a[2], a[3], a[4])
	case len(a) == 5 && a[1] == "client":
		n, err := strconv.Atoi(a[4])
		if err != nil {
			fail("bad count %q", a[4])
		}
		client(a[2], a[3], n)
	default:
		fail("usage: gogrpc server|client ...")
	}
}
