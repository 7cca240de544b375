// bpf/ctx_propagate.bpf.c on the real kernel: the sk_msg program inserts `traceparent` into
// HTTP/1 requests of a thread with a context, and leaves every other byte stream untouched.
// The test runs in a network namespace of its own, so no other socket of the machine is touched.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zerotrace/ctx_propagate.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ctx_propagate.skel.h"

namespace {

// The mount point of the cgroup v2 hierarchy.
std::string Cgroup2Root() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type;
  std::string rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

class CtxPropagateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A namespace of our own (this thread only: namespaces are per task), loopback up.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    const int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
    ASSERT_EQ(ioctl(s, SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
    close(s);
    struct stat st {};
    ASSERT_EQ(stat("/proc/thread-self/ns/net", &st), 0);

    skel_ = ctx_propagate__open();
    ASSERT_NE(skel_, nullptr);
    skel_->rodata->filter_netns = static_cast<uint32_t>(st.st_ino);
    skel_->rodata->allow_local = 1;  // client and server share loopback here
    ASSERT_EQ(ctx_propagate__load(skel_), 0) << "the verifier refused the programs";
    const std::string root = Cgroup2Root();
    ASSERT_FALSE(root.empty()) << "no cgroup2 mount";
    cgroup_fd_ = open(root.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(cgroup_fd_, 0);
    sockops_link_ = bpf_program__attach_cgroup(skel_->progs.zt_ctx_sockops, cgroup_fd_);
    ASSERT_NE(sockops_link_, nullptr) << std::strerror(errno);
    ASSERT_EQ(bpf_prog_attach(bpf_program__fd(skel_->progs.zt_ctx_msg),
                              bpf_map__fd(skel_->maps.ctx_socks), BPF_SK_MSG_VERDICT, 0),
              0)
        << std::strerror(errno);

    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listener_, 16), 0);
    socklen_t len = sizeof(addr_);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr_), &len);
  }

  void TearDown() override {
    if (rb_ != nullptr) ring_buffer__free(rb_);
    if (listener_ >= 0) close(listener_);
    if (skel_ != nullptr) {
      bpf_prog_detach2(bpf_program__fd(skel_->progs.zt_ctx_msg), bpf_map__fd(skel_->maps.ctx_socks),
                       BPF_SK_MSG_VERDICT);
    }
    if (sockops_link_ != nullptr) bpf_link__destroy(sockops_link_);
    if (cgroup_fd_ >= 0) close(cgroup_fd_);
    if (skel_ != nullptr) ctx_propagate__destroy(skel_);
  }

  void SetThreadContext(uint8_t state = ZT_CTX_VALID, uint64_t age_ns = 0) {
    zt_thread_ctx c{};
    for (int i = 0; i < 16; i++) c.trace_id[i] = static_cast<uint8_t>(0x10 + i);
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    c.read_ns = now.tv_sec * 1'000'000'000ULL + now.tv_nsec - age_ns;
    c.open = 1;
    c.state = state;
    const uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.thread_ctx, &tid, sizeof(tid), &c, sizeof(c), 0), 0);
  }

  // Sends `pieces` (one send each) on a new connection; returns what the server received
  // once it has `want` bytes (or 2 s passed).
  std::string Exchange(const std::vector<std::string>& pieces, size_t want) {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr_), sizeof(addr_)), 0);
    const int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int s = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    EXPECT_GE(s, 0);
    for (const auto& p : pieces) EXPECT_EQ(send(c, p.data(), p.size(), 0), (ssize_t)p.size());
    std::string got;
    char buf[4096];
    for (int tries = 0; got.size() < want && tries < 20; tries++) {
      pollfd pfd{s, POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      const ssize_t n = recv(s, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, n);
    }
    close(c);
    close(s);
    return got;
  }

  // The ZT_EV_CTX records written since the last call.
  std::vector<zt_ctx_event> TakeRecords() {
    records_.clear();
    if (rb_ == nullptr) {
      rb_ = ring_buffer__new(
          bpf_map__fd(skel_->maps.events),
          [](void* ctx, void* data, size_t size) {
            auto* self = static_cast<CtxPropagateTest*>(ctx);
            zt_ctx_event ev{};
            std::memcpy(&ev, data, std::min(size, sizeof(ev)));
            self->records_.push_back(ev);
            return 0;
          },
          this, nullptr);
    }
    if (rb_ != nullptr) ring_buffer__consume(rb_);
    return records_;
  }

  uint64_t Counter(zt_ctx_counter which) {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> v(ncpu);
    uint32_t key = which;
    if (bpf_map__lookup_elem(skel_->maps.ctx_counters, &key, sizeof(key), v.data(),
                             v.size() * sizeof(uint64_t), 0) != 0) {
      return 0;
    }
    uint64_t sum = 0;
    for (uint64_t x : v) sum += x;
    return sum;
  }

  ctx_propagate* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  std::vector<zt_ctx_event> records_;
  bpf_link* sockops_link_ = nullptr;
  int cgroup_fd_ = -1, listener_ = -1;
  sockaddr_in addr_{};
};

// The header for the span id `span` (16 hex digits) the kernel chose.
std::string Header(const std::string& span) {
  return "traceparent: 00-101112131415161718191a1b1c1d1e1f-" + span + "-01\r\n";
}
constexpr char kSpanMark[] = "SSSSSSSSSSSSSSSS";
static_assert(sizeof("traceparent: 00-101112131415161718191a1b1c1d1e1f-") - 1 + 16 + 5 ==
              ZT_CTX_HEADER_LEN);

std::string Hex(const uint8_t* b, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += kDigits[b[i] >> 4];
    s += kDigits[b[i] & 15];
  }
  return s;
}

TEST_F(CtxPropagateTest, InsertsTraceparentOnlyIntoWholeHttp1HeadsWithoutOne) {
  ASSERT_NO_FATAL_FAILURE(SetThreadContext());
  const std::string get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string post = "POST /p HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody";
  const std::string own = "GET /b HTTP/1.1\r\nHost: x\r\nTraceParent: 00-ab-cd-01\r\n\r\n";
  const std::string not_http = "hello, not http at all\r\n\r\n";
  const std::string lower_method = "get /a HTTP/1.1\r\n\r\n";
  const std::string split_a = "GET /c HTTP/1.1\r\nHost: x\r\n", split_b = "\r\n";
  struct Case {
    const char* name;
    std::vector<std::string> pieces;
    std::string want;
  } cases[] = {
      {"GET", {get}, "GET /a HTTP/1.1\r\n" + Header(kSpanMark) + "Host: x\r\n\r\n"},
      {"POST with body",
       {post},
       "POST /p HTTP/1.0\r\n" + Header(kSpanMark) + "Content-Length: 4\r\n\r\nbody"},
      {"own traceparent", {own}, own},
      {"not HTTP", {not_http}, not_http},
      {"lower-case method", {lower_method}, lower_method},
      {"head split over two sends", {split_a, split_b}, split_a + split_b},
  };
  const uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));
  for (const Case& c : cases) {
    std::string want = c.want;
    const std::string got = Exchange(c.pieces, want.size());
    const std::vector<zt_ctx_event> records = TakeRecords();
    if (const size_t at = want.find(kSpanMark); at != std::string::npos) {
      // Inserted: one record names the thread, the socket, the trace and the span on the wire.
      ASSERT_EQ(records.size(), 1u) << c.name;
      const zt_ctx_event& r = records[0];
      EXPECT_EQ(r.hdr.type, ZT_EV_CTX);
      EXPECT_EQ(r.hdr.tid, tid);
      EXPECT_EQ(r.hdr.tgid, static_cast<uint32_t>(getpid()));
      EXPECT_EQ(r.local_ip, 0x7f000001u);
      EXPECT_EQ(r.remote_ip, 0x7f000001u);
      EXPECT_EQ(r.remote_port, ntohs(addr_.sin_port)) << c.name;
      EXPECT_NE(r.local_port, 0);
      EXPECT_EQ(Hex(r.trace_id, 16), "101112131415161718191a1b1c1d1e1f");
      EXPECT_NE(Hex(r.span_id, 8), "0000000000000000");
      want.replace(at, 16, Hex(r.span_id, 8));
    } else {
      EXPECT_TRUE(records.empty()) << c.name;
    }
    EXPECT_EQ(got, want) << c.name;
  }
  EXPECT_EQ(Counter(ZT_CTX_CNT_INSERTED), 2u);
  EXPECT_EQ(Counter(ZT_CTX_CNT_PUSH_FAILED), 0u);
  // An ambiguous context (an event loop's) and a stale one insert nothing.
  ASSERT_NO_FATAL_FAILURE(SetThreadContext(ZT_CTX_AMBIGUOUS));
  EXPECT_EQ(Exchange({get}, get.size()), get);
  EXPECT_EQ(Counter(ZT_CTX_CNT_AMBIGUOUS), 1u);
  ASSERT_NO_FATAL_FAILURE(SetThreadContext(ZT_CTX_VALID, ZT_CTX_MAX_AGE_NS + 1'000'000'000));
  EXPECT_EQ(Exchange({get}, get.size()), get);
  EXPECT_EQ(Counter(ZT_CTX_CNT_STALE), 1u);
  EXPECT_TRUE(TakeRecords().empty());
  // A thread without a context sends its bytes unchanged.
  ASSERT_EQ(bpf_map__delete_elem(skel_->maps.thread_ctx, &tid, sizeof(tid), 0), 0);
  EXPECT_EQ(Exchange({get}, get.size()), get);
  EXPECT_EQ(Counter(ZT_CTX_CNT_INSERTED), 2u);
}

}  // namespace
