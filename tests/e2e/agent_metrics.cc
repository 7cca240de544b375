// Scrapes the agent's /metrics with a plain socket (no curl: a scrape every few ms stays cheap).
#include "agent_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace zerotrace::e2e {
namespace {

using Clock = std::chrono::steady_clock;

// "VmHWM:     1234 kB" -> bytes.
uint64_t StatusKb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0)
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10) * 1024;
  }
  return 0;
}

}  // namespace

int MetricsPortFrom(const std::vector<std::string>& agent_output) {
  const std::string marker = "zerotrace: metrics at http://127.0.0.1:";
  for (const auto& line : agent_output) {
    const size_t at = line.find(marker);
    if (at != std::string::npos) return std::atoi(line.c_str() + at + marker.size());
  }
  return 0;
}

std::optional<MetricSamples> ScrapeMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string text;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      char buf[65536];
      for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) {
          text.clear();
          break;
        }
        const ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  if (text.rfind("HTTP/1.1 200", 0) != 0) return std::nullopt;
  const size_t body = text.find("\r\n\r\n");
  MetricSamples out;
  std::istringstream in(text.substr(body + 4));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return out;
}

MetricSamples ScrapeUntil(int port, const std::function<bool(const MetricSamples&)>& done,
                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  MetricSamples last;
  for (;;) {
    if (auto m = ScrapeMetrics(port)) {
      last = std::move(*m);
      if (done(last)) return last;
    }
    if (Clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

double Sample(const MetricSamples& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? -1 : it->second;
}

uint64_t ResidentBytes(pid_t pid) { return StatusKb(pid, "VmRSS"); }
uint64_t PeakResidentBytes(pid_t pid) { return StatusKb(pid, "VmHWM"); }

}  // namespace zerotrace::e2e
