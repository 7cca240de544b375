// The top view: frame rendering (pure) and the terminal loop.
#include "agent/top_view.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <unordered_map>
#include <vector>

namespace zerotrace::agent {
namespace {

struct Row {
  std::string name;
  double rate = 0, error_pct = 0, p50 = NAN, p95 = NAN, p99 = NAN, busy = 0;
  uint64_t requests = 0;
};

Row RowOf(std::string name, const metrics::LatencySketch& now, const metrics::LatencySketch& before,
          double seconds) {
  Row r;
  r.name = std::move(name);
  r.requests = now.count - before.count;
  r.rate = seconds > 0 ? r.requests / seconds : 0;
  r.error_pct = r.requests > 0 ? 100.0 * (now.errors - before.errors) / r.requests : 0;
  r.p50 = now.QuantileSince(before, 0.50);
  r.p95 = now.QuantileSince(before, 0.95);
  r.p99 = now.QuantileSince(before, 0.99);
  r.busy = seconds > 0 ? (now.sum - before.sum) / seconds : 0;
  return r;
}

std::string Ms(double seconds) {
  if (std::isnan(seconds)) return "-";
  char buf[32];
  const double ms = seconds * 1e3;
  std::snprintf(buf, sizeof(buf), ms < 10 ? "%.2fms" : ms < 1000 ? "%.1fms" : "%.0fms", ms);
  return buf;
}

void SortRows(std::vector<Row>* rows, TopSort sort) {
  std::stable_sort(rows->begin(), rows->end(), [sort](const Row& a, const Row& b) {
    auto key = [sort](const Row& r) {
      switch (sort) {
        case TopSort::kRate:
          return r.rate;
        case TopSort::kErrors:
          return r.error_pct * 1e9 + r.rate;
        case TopSort::kP99:
          return std::isnan(r.p99) ? -1 : r.p99;
        case TopSort::kTime:
          break;
      }
      return r.busy;
    };
    if (key(a) != key(b)) return key(a) > key(b);
    return a.name < b.name;
  });
}

void AppendRow(const Row& r, std::string* out) {
  char line[256];
  std::snprintf(line, sizeof(line), "%-36.36s %9.1f %6.1f%% %9s %9s %9s %8llu\n", r.name.c_str(),
                r.rate, r.error_pct, Ms(r.p50).c_str(), Ms(r.p95).c_str(), Ms(r.p99).c_str(),
                static_cast<unsigned long long>(r.requests));
  out->append(line);
}

}  // namespace

const char* TopSortName(TopSort sort) {
  switch (sort) {
    case TopSort::kRate:
      return "rate";
    case TopSort::kErrors:
      return "errors";
    case TopSort::kP99:
      return "p99";
    case TopSort::kTime:
      break;
  }
  return "time";
}

std::string RenderTopFrame(const metrics::MetricsSnapshot& now,
                           const metrics::MetricsSnapshot& before, double seconds, TopSort sort,
                           size_t max_rows) {
  std::unordered_map<std::string, const metrics::ServiceSummary*> old_services;
  for (const auto& s : before.services) old_services[s.service] = &s;
  const metrics::LatencySketch empty;
  std::vector<Row> services;
  for (const auto& s : now.services) {
    auto it = old_services.find(s.service);
    const metrics::LatencySketch& b = it == old_services.end() ? empty : it->second->server;
    if (s.server.count == 0) continue;  // a pure client: see the edges
    services.push_back(RowOf(s.service, s.server, b, seconds));
  }
  SortRows(&services, sort);
  std::unordered_map<std::string, const metrics::EdgeSummary*> old_edges;
  for (const auto& e : before.edges) old_edges[e.client + " -> " + e.server] = &e;
  std::vector<Row> edges;
  for (const auto& e : now.edges) {
    const std::string name = e.client + " -> " + e.server;
    auto it = old_edges.find(name);
    edges.push_back(RowOf(name, e.client_side,
                          it == old_edges.end() ? empty : it->second->client_side, seconds));
  }
  SortRows(&edges, TopSort::kRate);

  std::string out;
  char head[160];
  const time_t t = static_cast<time_t>(now.time_unix_ns / 1'000'000'000ULL);
  struct tm tm;
  localtime_r(&t, &tm);
  char clock[16];
  std::strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
  std::snprintf(head, sizeof(head),
                "zerotrace top - %s - last %.1fs - %zu services, %zu edges - sort: %s\n", clock,
                seconds, services.size(), edges.size(), TopSortName(sort));
  out.append(head);
  char columns[200];
  std::snprintf(columns, sizeof(columns), "%-36s %9s %7s %9s %9s %9s %8s\n", "SERVICE", "REQ/S",
                "ERR%", "P50", "P95", "P99", "REQS");
  out.append(columns);
  for (size_t i = 0; i < services.size() && i < max_rows; i++) AppendRow(services[i], &out);
  std::snprintf(columns, sizeof(columns), "%-36s %9s %7s %9s %9s %9s %8s\n",
                "EDGE (CLIENT -> SERVER)", "REQ/S", "ERR%", "P50", "P95", "P99", "REQS");
  out.append(columns);
  size_t shown = 0;
  for (const Row& r : edges) {
    if (shown >= max_rows) break;
    if (r.requests == 0) continue;  // busiest edges: those with traffic now
    AppendRow(r, &out);
    shown++;
  }
  return out;
}

TopView::TopView(Options options, SnapshotFn snapshot, std::atomic<bool>* quit)
    : options_(options), snapshot_(std::move(snapshot)), quit_(quit) {
  tty_ = isatty(fileno(options_.out)) && isatty(options_.keys_fd);
}

void TopView::Start() {
  before_ = snapshot_();
  before_time_ = start_time_ = std::chrono::steady_clock::now();
  if (tty_ && pipe2(wake_pipe_, O_CLOEXEC) == 0) {
    keys_ = std::thread([this] {
      termios saved, raw;
      const bool got = tcgetattr(options_.keys_fd, &saved) == 0;
      if (got) {
        raw = saved;
        raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
        tcsetattr(options_.keys_fd, TCSANOW, &raw);
      }
      for (;;) {
        pollfd fds[2] = {{options_.keys_fd, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents != 0) break;
        if (fds[0].revents & (POLLHUP | POLLERR)) break;
        char c = 0;
        if ((fds[0].revents & POLLIN) && read(options_.keys_fd, &c, 1) == 1) {
          if (c == 'q' || c == 'Q') {
            quit_->store(true);
          } else if (c == 's' || c == 'S') {
            sort_.store((sort_.load() + 1) % 4);
            cv_.notify_all();  // redraw now
          }
        }
      }
      if (got) tcsetattr(options_.keys_fd, TCSANOW, &saved);
    });
  }
  thread_ = std::thread([this] { Loop(); });
}

void TopView::Draw(const metrics::MetricsSnapshot& now, double seconds) {
  std::string frame =
      RenderTopFrame(now, before_, seconds, static_cast<TopSort>(sort_.load()), options_.max_rows);
  if (tty_) {
    frame.insert(0, "\033[H\033[2J");  // home, clear
    frame.append("q: quit  s: sort (time, rate, errors, p99)\n");
  } else {
    frame.append("\n");  // frames are separated by a blank line
  }
  if (std::fwrite(frame.data(), 1, frame.size(), options_.out) != frame.size() ||
      std::fflush(options_.out) != 0) {
    quit_->store(true);  // the reader has gone
  }
}

void TopView::Loop() {
  std::unique_lock lock(mu_);
  int shown_sort = sort_.load();
  while (!stopping_) {
    const auto deadline = before_time_ + options_.interval;
    cv_.wait_until(lock, deadline, [&] { return stopping_ || sort_.load() != shown_sort; });
    if (stopping_) break;
    const auto t = std::chrono::steady_clock::now();
    lock.unlock();
    metrics::MetricsSnapshot now = snapshot_();
    const double seconds = std::chrono::duration<double>(t - before_time_).count();
    Draw(now, seconds);
    lock.lock();
    if (sort_.load() != shown_sort && t < deadline) {
      shown_sort = sort_.load();  // a redraw for a key: the window goes on
      continue;
    }
    shown_sort = sort_.load();
    before_ = std::move(now);
    before_time_ = t;
  }
}

void TopView::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (keys_.joinable()) {
    const char c = 0;
    (void)!write(wake_pipe_[1], &c, 1);
    keys_.join();
  }
  for (int fd : wake_pipe_) {
    if (fd >= 0) close(fd);
  }
  if (!tty_) {  // a pipe: a last frame with everything since the start
    before_ = metrics::MetricsSnapshot();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
    Draw(snapshot_(), seconds);
  }
}

}  // namespace zerotrace::agent
