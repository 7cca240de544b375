// A gRPC peer built on the C++ gRPC library the agent links against, with the generic
// (ByteBuffer) API, so no protoc step: the e2e tests' C++ server and client.
//   grpc_peer server PORT       serves /zt.test.Echo/Echo (echoes; a request starting with
//                               "fail" ends NOT_FOUND) on 127.0.0.1:PORT, prints "ready"
//   grpc_peer client PORT CMD…  one channel: CMD echo | fail, prints "done CMD CODE" for each
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/prctl.h>

#include <csignal>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace {

std::string ToString(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!b.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer FromString(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

// Unary over the generic bidi reactor: one request in, one answer (or an error) out.
class EchoReactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit EchoReactor(grpc::GenericCallbackServerContext* ctx) : ctx_(ctx) { StartRead(&req_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
    } else if (ctx_->method() != "/zt.test.Echo/Echo") {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method"));
    } else if (ToString(req_).rfind("fail", 0) == 0) {
      Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such key"));
    } else {
      resp_ = req_;
      StartWriteAndFinish(&resp_, grpc::WriteOptions(), grpc::Status::OK);
    }
  }
  void OnDone() override { delete this; }

 private:
  grpc::GenericCallbackServerContext* ctx_;
  grpc::ByteBuffer req_, resp_;
};

class EchoService : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new EchoReactor(ctx);
  }
};

int Serve(const std::string& port) {
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port, grpc::InsecureServerCredentials());
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  server->Wait();  // until the test kills it
  return 0;
}

int Call(const std::string& port, const std::vector<std::string>& cmds) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  for (const std::string& cmd : cmds) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const grpc::ByteBuffer req = FromString(cmd == "fail" ? "fail please" : "hello");
    grpc::ByteBuffer resp;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/zt.test.Echo/Echo", grpc::StubOptions(), &req, &resp,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    const grpc::Status s = done.get_future().get();
    std::printf("done %s %d\n", cmd.c_str(), static_cast<int>(s.error_code()));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test that started it
  if (argc >= 3 && std::string(argv[1]) == "server") return Serve(argv[2]);
  if (argc >= 4 && std::string(argv[1]) == "client") {
    return Call(argv[2], std::vector<std::string>(argv + 3, argv + argc));
  }
  std::fprintf(stderr, "usage: grpc_peer server PORT | grpc_peer client PORT CMD...\n");
  return 2;
}
