// The kernel's HTTP/2 capture policy (bpf/h2_capture.bpf.h) on real sockets: a forked child
// speaks HTTP/2 framing over loopback; the frame headers and the non-DATA frames behind a DATA
// frame far bigger than the capture are captured, on the sending and the receiving side, and
// so is a frame header split over two writes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "trace_asserts.h"
#include "trace_session.h"

namespace zerotrace::testing {
namespace {

std::string FrameHeader(uint32_t len, uint8_t type, uint8_t flags, uint32_t stream) {
  const unsigned char h[9] = {static_cast<unsigned char>(len >> 16),
                              static_cast<unsigned char>(len >> 8),
                              static_cast<unsigned char>(len),
                              type,
                              flags,
                              static_cast<unsigned char>(stream >> 24),
                              static_cast<unsigned char>(stream >> 16),
                              static_cast<unsigned char>(stream >> 8),
                              static_cast<unsigned char>(stream)};
  return std::string(reinterpret_cast<const char*>(h), sizeof(h));
}

const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint32_t kBigData = 40000;  // far above the default capture of 16 KiB a syscall

// The client's writes, in order: the preface and an empty SETTINGS; one write of a big DATA
// frame with a HEADERS frame (trailers) behind it; a HEADERS frame whose header is split over
// two writes.
std::vector<std::string> ClientWrites() {
  const std::string trailers = "trailer-block-bytes!";
  const std::string split = FrameHeader(20, 1, 5, 3) + "split-header-payload";
  return {kPreface + FrameHeader(0, 4, 0, 0),
          FrameHeader(kBigData, 0, 0, 1) + std::string(kBigData, 'd') +
              FrameHeader(trailers.size(), 1, 5, 1) + trailers,
          split.substr(0, 4), split.substr(4)};
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += n;
  }
  return true;
}

// The child: a loopback pair, the client's writes, the server reading each before the next.
int RunChild() {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(listener, 1) ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return 2;
  }
  const int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 3;
  const int server = accept(listener, nullptr, nullptr);
  if (server < 0) return 4;
  std::vector<char> buf(1 << 16);
  for (const std::string& w : ClientWrites()) {
    if (!WriteAll(client, w)) return 5;
    for (size_t got = 0; got < w.size();) {
      const ssize_t n = read(server, buf.data(), buf.size());
      if (n <= 0) return 6;
      got += n;
    }
  }
  close(client);
  close(server);
  close(listener);
  return 0;
}

// The bytes [pos, pos + len) if data records captured all of them.
std::string Captured(const std::vector<Record>& data, uint64_t pos, size_t len) {
  std::string out(len, '\0');
  std::vector<bool> seen(len, false);
  for (const Record& r : data) {
    for (size_t i = 0; i < r.payload.size(); i++) {
      const uint64_t p = r.data.stream_pos + i;
      if (p >= pos && p < pos + len) {
        out[p - pos] = r.payload[i];
        seen[p - pos] = true;
      }
    }
  }
  for (bool s : seen) {
    if (!s) return "<not captured>";
  }
  return out;
}

TEST(H2Capture, HeadersBehindLargeDataAndSplitHeadersAreCaptured) {
  TraceSession session;
  ASSERT_FALSE(::testing::Test::HasFailure());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    _exit(RunChild());
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;

  const auto writes = ClientWrites();
  uint64_t total = 0;
  for (const auto& w : writes) total += w.size();
  const uint64_t trailers_at = writes[0].size() + 9 + kBigData;  // the HEADERS frame's header
  const uint64_t split_at = writes[0].size() + writes[1].size();
  const std::string all = writes[0] + writes[1] + writes[2] + writes[3];
  for (uint8_t role : {ZT_ROLE_CLIENT, ZT_ROLE_SERVER}) {
    SCOPED_TRACE(role == ZT_ROLE_CLIENT ? "client egress" : "server ingress");
    const Record open = OneOpen(session, child, role);
    const auto data = WaitData(session, child, open.hdr.conn_id,
                               role == ZT_ROLE_CLIENT ? ZT_DIR_EGRESS : ZT_DIR_INGRESS, total);
    EXPECT_EQ(Captured(data, 0, writes[0].size()), writes[0]);  // preface and SETTINGS
    EXPECT_EQ(Captured(data, writes[0].size(), 9), all.substr(writes[0].size(), 9));  // DATA's
    EXPECT_EQ(Captured(data, trailers_at, 29), all.substr(trailers_at, 29));  // the trailers
    EXPECT_EQ(Captured(data, split_at, 29), all.substr(split_at, 29));        // the split frame
    uint64_t captured = 0;
    for (const Record& r : data) captured += r.data.captured;
    EXPECT_LT(captured, total) << "DATA beyond the capture was copied";
  }
}

}  // namespace
}  // namespace zerotrace::testing
