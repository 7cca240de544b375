// Test helpers: HTTP/2 frames built with libnghttp2's HPACK encoder (one per direction, as a
// real peer keeps one), and a fake connection that feeds them to an Http2Session.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conn/byte_stream.h"
#include "protocols/http2/protocol.h"
#include "protocols/http2/session.h"
#include "trace/conn_endpoints.h"

namespace zerotrace::protocols::http2::testing {

using Fields = std::vector<std::pair<std::string, std::string>>;

inline std::string FrameHead(uint32_t len, uint8_t type, uint8_t flags, uint32_t stream) {
  std::string h(9, '\0');
  h[0] = static_cast<char>(len >> 16);
  h[1] = static_cast<char>(len >> 8);
  h[2] = static_cast<char>(len);
  h[3] = static_cast<char>(type);
  h[4] = static_cast<char>(flags);
  h[5] = static_cast<char>(stream >> 24);
  h[6] = static_cast<char>(stream >> 16);
  h[7] = static_cast<char>(stream >> 8);
  h[8] = static_cast<char>(stream);
  return h;
}

inline std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// One endpoint's frame writer: its HPACK encoder is the one whose table the other end follows.
class FrameWriter {
 public:
  FrameWriter() { nghttp2_hd_deflate_new(&deflater_, 4096); }
  ~FrameWriter() { nghttp2_hd_deflate_del(deflater_); }
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  // The HPACK block for `fields` (indexing as nghttp2 chooses: later blocks refer back).
  std::string Block(const Fields& fields) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(out.data()),
                                            out.size(), nva.data(), nva.size());
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }
  // HEADERS (+ CONTINUATION when `split` > 0: the block cut after that many bytes).
  std::string Headers(uint32_t stream, const Fields& fields, bool end_stream, size_t split = 0,
                      uint8_t pad = 0, bool priority = false) {
    const std::string block = Block(fields);
    const std::string first = split > 0 && split < block.size() ? block.substr(0, split) : block;
    std::string payload;
    uint8_t flags = end_stream ? kEndStream : 0;
    if (pad > 0) {
      flags |= kPadded;
      payload += static_cast<char>(pad);
    }
    if (priority) {
      flags |= kPriorityFlag;
      payload += Be32(0) + std::string(1, '\x0f');
    }
    payload += first + std::string(pad, '\0');
    if (first.size() == block.size()) flags |= kEndHeaders;
    std::string out = FrameHead(payload.size(), kHeaders, flags, stream) + payload;
    if (first.size() < block.size()) {
      const std::string rest = block.substr(first.size());
      out += FrameHead(rest.size(), kContinuation, kEndHeaders, stream) + rest;
    }
    return out;
  }
  static std::string Data(uint32_t stream, std::string_view body, bool end_stream,
                          uint8_t pad = 0) {
    std::string payload;
    uint8_t flags = end_stream ? kEndStream : 0;
    if (pad > 0) {
      flags |= kPadded;
      payload += static_cast<char>(pad);
    }
    payload += std::string(body) + std::string(pad, '\0');
    return FrameHead(payload.size(), kData, flags, stream) + payload;
  }
  static std::string Settings() { return FrameHead(6, kSettings, 0, 0) + std::string(6, '\0'); }
  static std::string SettingsAck() { return FrameHead(0, kSettings, kAck, 0); }
  static std::string WindowUpdate(uint32_t stream) {
    return FrameHead(4, kWindowUpdate, 0, stream) + Be32(65535);
  }
  static std::string Ping() { return FrameHead(8, kPing, 0, 0) + std::string(8, 'p'); }
  static std::string Rst(uint32_t stream, uint32_t code) {
    return FrameHead(4, kRstStream, 0, stream) + Be32(code);
  }
  static std::string Goaway(uint32_t last, uint32_t code) {
    return FrameHead(8, kGoaway, 0, 0) + Be32(last) + Be32(code);
  }
  // A gRPC message: flag, length, payload.
  static std::string GrpcMessage(std::string_view payload) {
    return std::string(1, '\0') + Be32(static_cast<uint32_t>(payload.size())) +
           std::string(payload);
  }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

// A request's fields, as a client library sends them.
inline Fields Request(const std::string& method, const std::string& path,
                      const std::string& authority = "example.com:8443", Fields extra = {}) {
  Fields f = {{":method", method}, {":scheme", "http"}, {":path", path}, {":authority", authority}};
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}
inline Fields GrpcRequest(const std::string& path, Fields extra = {}) {
  Fields f = Request("POST", path, "grpc.local:50051",
                     {{"content-type", "application/grpc"}, {"te", "trailers"}});
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}
inline Fields Status(int code, Fields extra = {}) {
  Fields f = {{":status", std::to_string(code)}};
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}

// One connection seen by the traced process: the client-to-server stream and the other, fed to
// a session; every call stamps its bytes with the next time (1, 2, 3, ... ns) and thread 7 + n.
class FakeH2Conn {
 public:
  explicit FakeH2Conn(uint8_t role = ZT_ROLE_CLIENT, bool with_preface = true)
      : context_{role, false, &ends_}, session_(context_, &shared_) {
    ends_.known = true;
    ends_.server = role == ZT_ROLE_SERVER;
    ends_.local_address = "127.0.0.1";
    ends_.remote_address = "10.0.0.2";
    ends_.local_port = role == ZT_ROLE_SERVER ? 8443 : 40000;
    ends_.remote_port = role == ZT_ROLE_SERVER ? 40000 : 8443;
    if (with_preface) Client(std::string(kClientPreface) + FrameWriter::Settings());
  }

  void Client(std::string_view bytes) { Add(req_, req_pos_, bytes); }
  void Server(std::string_view bytes) { Add(resp_, resp_pos_, bytes); }
  // Bytes the kernel moved but did not capture.
  void ClientGap(uint64_t n) { AddGap(req_, req_pos_, n); }
  void ServerGap(uint64_t n) { AddGap(resp_, resp_pos_, n); }
  void Advance() { session_.Advance(req_, resp_, ts_, &out_); }
  void Close(CloseReason reason = CloseReason::kClosed) {
    req_.DeclareHolesAsGaps();
    resp_.DeclareHolesAsGaps();
    session_.Close(req_, resp_, reason, ts_, &out_);
  }
  void Expire(uint64_t now_ns) { session_.Expire(now_ns, &out_); }
  void Tick(uint64_t ns) { ts_ += ns; }

  FrameWriter& client() { return client_; }
  FrameWriter& server() { return server_; }
  SessionOutput& out() { return out_; }
  const Http2Stats& stats() const { return shared_.stats; }
  Http2Session& session() { return session_; }
  uint64_t req_pos() const { return req_pos_; }
  uint64_t now() const { return ts_; }

  // The finished exchanges' spans so far.
  std::vector<const ExchangeDone*> Exchanges() {
    std::vector<const ExchangeDone*> v;
    for (size_t i = 0; i < out_.exchanges(); i++) v.push_back(&out_.exchange(i));
    return v;
  }

 private:
  void Add(conn::ByteStream& s, uint64_t& pos, std::string_view bytes) {
    ++ts_;
    s.AddData(pos, bytes, ts_, static_cast<uint32_t>(7 + ts_));
    pos += bytes.size();
    Advance();
  }
  void AddGap(conn::ByteStream& s, uint64_t& pos, uint64_t n) {
    ++ts_;
    s.AddGap(pos, n, ts_, static_cast<uint32_t>(7 + ts_));
    pos += n;
    Advance();
  }

  trace::ConnEndpoints ends_;
  SessionContext context_;
  SessionShared shared_;
  Http2Session session_;
  FrameWriter client_, server_;
  conn::ByteStream req_, resp_;
  uint64_t req_pos_ = 0, resp_pos_ = 0;
  uint64_t ts_ = 0;
  SessionOutput out_;
};

// A span attribute as text ("<absent>" when missing).
inline std::string Attr(const trace::Span& s, std::string_view key) {
  const auto* v = s.Find(key);
  if (v == nullptr) return "<absent>";
  if (const auto* str = std::get_if<std::string>(v)) return *str;
  if (const auto* i = std::get_if<int64_t>(v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(v)) return std::to_string(*d);
  if (const auto* b = std::get_if<bool>(v)) return *b ? "true" : "false";
  return "?";
}

}  // namespace zerotrace::protocols::http2::testing
