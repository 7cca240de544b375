// Test helpers: a fake connection that feeds two byte streams and collects exchanges.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conn/byte_stream.h"
#include "protocols/http1/stitcher.h"

namespace zerotrace::protocols::http1::testing {

// One connection seen from the traced process: requests it sent/received and the answers.
// Every call places bytes at the next stream position with a fresh timestamp, then advances.
class FakeConn {
 public:
  void Request(std::string_view bytes) { Add(req_, req_pos_, bytes); }
  void Response(std::string_view bytes) { Add(resp_, resp_pos_, bytes); }
  // The kernel reported `n` bytes it did not capture.
  void RequestGap(uint64_t n) { AddGap(req_, req_pos_, n); }
  void ResponseGap(uint64_t n) { AddGap(resp_, resp_pos_, n); }
  // Bytes that will be delivered later (a hole until then), e.g. an event still in flight.
  // Returns their position and the time they were moved.
  std::pair<uint64_t, uint64_t> SkipRequest(uint64_t n) { return Skip(req_pos_, n); }
  std::pair<uint64_t, uint64_t> SkipResponse(uint64_t n) { return Skip(resp_pos_, n); }
  void RequestAt(std::pair<uint64_t, uint64_t> at, std::string_view bytes) {
    req_.AddData(at.first, bytes, at.second);
    Advance();
  }
  void ResponseAt(std::pair<uint64_t, uint64_t> at, std::string_view bytes) {
    resp_.AddData(at.first, bytes, at.second);
    Advance();
  }
  void Advance() { stitcher_.Advance(req_, resp_, ts_, &out_); }
  void Close(CloseReason reason = CloseReason::kClosed) {
    stitcher_.OnClose(req_, resp_, reason, &out_);
  }
  void Expire(uint64_t now_ns) { stitcher_.Expire(now_ns, &out_); }
  void Tick(uint64_t ns) { ts_ += ns; }

  std::vector<HttpExchange>& out() { return out_; }
  const Http1Stats& stats() const { return stats_; }
  Http1Stitcher& stitcher() { return stitcher_; }
  conn::ByteStream& requests() { return req_; }
  conn::ByteStream& responses() { return resp_; }
  uint64_t now() const { return ts_; }

 private:
  void Add(conn::ByteStream& s, uint64_t& pos, std::string_view bytes) {
    s.AddData(pos, bytes, ++ts_);
    pos += bytes.size();
    Advance();
  }
  std::pair<uint64_t, uint64_t> Skip(uint64_t& pos, uint64_t n) {
    pos += n;
    return {pos - n, ++ts_};
  }
  void AddGap(conn::ByteStream& s, uint64_t& pos, uint64_t n) {
    s.AddGap(pos, n, ++ts_);
    pos += n;
    Advance();
  }

  conn::ByteStream req_;
  conn::ByteStream resp_;
  uint64_t req_pos_ = 0;
  uint64_t resp_pos_ = 0;
  uint64_t ts_ = 1'000'000;
  Http1Stats stats_;
  Http1Stitcher stitcher_{&stats_};
  std::vector<HttpExchange> out_;
};

// "GET /items/<id> HTTP/1.1" with a few realistic headers and an X-Id header carrying `id`.
inline std::string Get(int id, std::string_view extra = {}) {
  return "GET /items/" + std::to_string(id) +
         " HTTP/1.1\r\nHost: api.example\r\nUser-Agent: test/1.0\r\nX-Id: " + std::to_string(id) +
         "\r\n" + std::string(extra) + "\r\n";
}

// "HTTP/1.1 200 OK" echoing `id` in X-Id, with a Content-Length body.
inline std::string Ok(int id, std::string_view body = "hello", std::string_view extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nX-Id: " + std::to_string(id) + "\r\n" + std::string(extra) + "\r\n" +
         std::string(body);
}

// The X-Id of a message's headers, or -1.
inline int IdOf(const HttpMessage& m) {
  auto v = m.headers.Get("x-id");
  return v ? std::stoi(std::string(*v)) : -1;
}

}  // namespace zerotrace::protocols::http1::testing
