// Test helpers: a client connection whose two streams feed a RedisSession, and RESP builders.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "conn/byte_stream.h"
#include "protocols/redis/session.h"

namespace zerotrace::protocols::redis::testing {

// "*N\r\n$len\r\narg\r\n..." for the words given.
inline std::string Cmd(std::initializer_list<std::string_view> words) {
  std::string out = "*" + std::to_string(words.size()) + "\r\n";
  for (std::string_view w : words) {
    out += "$" + std::to_string(w.size()) + "\r\n";
    out.append(w);
    out += "\r\n";
  }
  return out;
}
inline std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// One exchange as a test reads it.
struct Seen {
  uint64_t id = 0;
  std::string name;
  uint64_t start_ns = 0, end_ns = 0;
  bool error = false;
  std::string attr(std::string_view key) const {
    for (const auto& [k, v] : attrs) {
      if (k == key) return v;
    }
    return "<none>";
  }
  std::vector<std::pair<std::string, std::string>> attrs;
};

// A client's connection: bytes it sent (commands) and received (replies), each call at the next
// position with a fresh timestamp, then the session advances.
class FakeConn {
 public:
  explicit FakeConn(bool mid_stream = false) : session_(Context(), mid_stream, &stats_) {}

  void Send(std::string_view bytes) { Add(req_, req_pos_, bytes); }
  void Receive(std::string_view bytes) { Add(resp_, resp_pos_, bytes); }
  void SendGap(uint64_t n) { AddGap(req_, req_pos_, n); }
  void ReceiveGap(uint64_t n) { AddGap(resp_, resp_pos_, n); }
  void Close(CloseReason reason = CloseReason::kClosed) {
    session_.Close(req_, resp_, reason, ++ts_, &out_);
    Collect();
  }
  void Expire(uint64_t now_ns) {
    session_.Expire(now_ns, &out_);
    Collect();
  }
  void Tick(uint64_t ns) { ts_ += ns; }
  uint64_t now() const { return ts_; }

  std::vector<Seen>& seen() { return seen_; }
  size_t starts() const { return starts_; }
  const RedisStats& stats() const { return stats_; }
  RedisSession& session() { return session_; }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const Seen& s : seen_) n.push_back(s.name);
    return n;
  }

 private:
  static SessionContext Context() {
    SessionContext c;
    c.role = ZT_ROLE_CLIENT;
    return c;
  }
  void Add(conn::ByteStream& s, uint64_t& pos, std::string_view bytes) {
    s.AddData(pos, bytes, ++ts_, 7);
    pos += bytes.size();
    Advance();
  }
  void AddGap(conn::ByteStream& s, uint64_t& pos, uint64_t n) {
    s.AddGap(pos, n, ++ts_);
    pos += n;
    Advance();
  }
  void Advance() {
    session_.Advance(req_, resp_, ts_, &out_);
    Collect();
  }
  void Collect() {
    starts_ += out_.starts();
    for (size_t i = 0; i < out_.exchanges(); i++) {
      const ExchangeDone& x = out_.exchange(i);
      Seen s;
      s.id = x.id;
      s.name = x.span.name;
      s.start_ns = x.start_ns;
      s.end_ns = x.end_ns;
      s.error = x.span.status == trace::StatusCode::kError;
      for (const trace::Attribute& a : x.span.attributes) {
        std::string v;
        if (auto* str = std::get_if<std::string>(&a.value)) v = *str;
        if (auto* n = std::get_if<int64_t>(&a.value)) v = std::to_string(*n);
        s.attrs.emplace_back(std::string(a.key), v);
      }
      seen_.push_back(std::move(s));
    }
    out_.Clear();
  }

  conn::ByteStream req_, resp_;
  uint64_t req_pos_ = 0, resp_pos_ = 0;
  uint64_t ts_ = 1'000'000;
  RedisStats stats_;
  RedisSession session_;
  SessionOutput out_;
  std::vector<Seen> seen_;
  size_t starts_ = 0;
};

}  // namespace zerotrace::protocols::redis::testing
