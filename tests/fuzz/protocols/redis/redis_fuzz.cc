// libFuzzer target for the RESP parser and the Redis session: raw bytes in both streams, and
// generated conversations (pipelined batches, MULTI, pushes) delivered with random chunking
// and losses, where a wrong pairing aborts.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "conn/byte_stream.h"
#include "protocols/redis/protocol.h"
#include "protocols/redis/session.h"

namespace zt = zerotrace;
using zt::conn::ByteStream;
using zt::protocols::CloseReason;
using zt::protocols::SessionContext;
using zt::protocols::SessionOutput;
using zt::protocols::redis::RedisSession;
using zt::protocols::redis::RedisStats;

namespace {

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

constexpr uint64_t kReplyTsBase = 1'000'000'000;  // reply i's bytes move at base + 1000 i + k

std::string Cmd(const std::vector<std::string>& words) {
  std::string out = "*" + std::to_string(words.size()) + "\r\n";
  for (const std::string& w : words) out += "$" + std::to_string(w.size()) + "\r\n" + w + "\r\n";
  return out;
}

struct Harness {
  ByteStream req, resp;
  uint64_t req_pos = 0, resp_pos = 0, ts = 1000;
  RedisStats stats;
  SessionContext ctx;
  RedisSession session;
  SessionOutput out;
  std::vector<std::string> queries;
  std::vector<uint64_t> ends;
  std::vector<bool> errors;

  explicit Harness(bool mid_stream) : session(ctx, mid_stream, &stats) {}
  void Collect() {
    for (size_t i = 0; i < out.exchanges(); i++) {
      const auto& x = out.exchange(i);
      const auto* q = x.span.Find("db.query.text");
      queries.push_back(q ? std::get<std::string>(*q) : "");
      ends.push_back(x.end_ns);
      errors.push_back(x.span.Find("error.type") != nullptr);
      FUZZ_CHECK(x.end_ns >= x.start_ns);
      FUZZ_CHECK(x.span.name.size() <= 70);
    }
    FUZZ_CHECK(queries.size() <= stats.commands);
    out.Clear();
  }
  void Advance(uint64_t now) {
    session.Advance(req, resp, now, &out);
    Collect();
  }
};

// Arbitrary bytes in both streams, arbitrary chunking, gaps and holes.
void RawBytes(FuzzedDataProvider& fdp) {
  Harness h(fdp.ConsumeBool());
  while (fdp.remaining_bytes() > 0) {
    const bool reply = fdp.ConsumeBool();
    const int kind = fdp.ConsumeIntegralInRange(0, 7);
    ByteStream& s = reply ? h.resp : h.req;
    uint64_t& pos = reply ? h.resp_pos : h.req_pos;
    if (kind == 0) {
      const uint64_t n = fdp.ConsumeIntegralInRange<uint64_t>(1, 1 << 20);
      s.AddGap(pos, n, ++h.ts);
      pos += n;
    } else if (kind == 1) {
      h.session.Expire(h.ts + fdp.ConsumeIntegral<uint32_t>() * 1000ULL, &h.out);
      h.Collect();
    } else {
      const std::string b = fdp.ConsumeRandomLengthString(256);
      s.AddData(pos, b, ++h.ts, 1);
      pos += b.size();
    }
    h.Advance(h.ts);
  }
  h.session.Close(h.req, h.resp, CloseReason::kClosed, ++h.ts, &h.out);
  h.Collect();
}

// A client that sends batches of commands (one write, or several) and reads every reply of a
// batch before sending the next: the pairing after a loss must then be exact, never guessed.
// Commands name their index (k<i>); reply i moves at kReplyTsBase + 1000 i.
void Conversation(FuzzedDataProvider& fdp) {
  Harness h(false);
  int next = 0;
  std::vector<std::string> want_query;
  for (int batch = 0; batch < 24 && fdp.remaining_bytes() > 0; batch++) {
    const int n = fdp.ConsumeIntegralInRange(1, 6);
    std::string writes;
    std::vector<std::string> replies;
    for (int j = 0; j < n; j++, next++) {
      const std::string key = "k" + std::to_string(next);
      switch (fdp.ConsumeIntegralInRange(0, 4)) {
        case 0:
          writes += Cmd({"GET", key});
          want_query.push_back("GET " + key);
          replies.push_back(fdp.ConsumeBool() ? "$3\r\nabc\r\n" : "$-1\r\n");
          break;
        case 1:
          writes += Cmd({"INCRBY", key, "1"});
          want_query.push_back("INCRBY " + key + " ?");
          replies.push_back(":" + std::to_string(next) + "\r\n");
          break;
        case 2:
          writes += Cmd({"LRANGE", key, "0", "-1"});
          want_query.push_back("LRANGE " + key + " ? ?");
          replies.push_back("*2\r\n$1\r\na\r\n$" + std::to_string(next % 50) + "\r\n" +
                            std::string(next % 50, 'x') + "\r\n");
          break;
        case 3:
          writes += Cmd({"SET", key, std::string(fdp.ConsumeIntegralInRange(0, 3000), 'v')});
          want_query.push_back("SET " + key + " ?");
          replies.push_back("+OK\r\n");
          break;
        default:
          writes += Cmd({"LPUSH", key, "x"});
          want_query.push_back("LPUSH " + key + " ?");
          replies.push_back("-WRONGTYPE Operation against a key\r\n");
          break;
      }
    }
    // The batch: whole, split, or with its tail lost (the capture limit, a lost event).
    const int wk = fdp.ConsumeIntegralInRange(0, 3);
    const size_t cut = fdp.ConsumeIntegralInRange<size_t>(0, writes.size());
    if (wk == 0 || cut == 0 || cut == writes.size()) {
      h.req.AddData(h.req_pos, writes, ++h.ts, 1);
    } else if (wk == 1) {
      h.req.AddData(h.req_pos, writes.substr(0, cut), ++h.ts, 1);
      h.req.AddData(h.req_pos + cut, writes.substr(cut), ++h.ts, 1);
    } else {
      h.req.AddData(h.req_pos, writes.substr(0, cut), ++h.ts, 1);
      h.req.AddGap(h.req_pos + cut, writes.size() - cut, h.ts);
    }
    h.req_pos += writes.size();
    h.Advance(h.ts);
    // The replies, in order, each in one read or two, some of them lost.
    const int first = next - n;
    for (int j = 0; j < n; j++) {
      const std::string& r = replies[j];
      const uint64_t t = kReplyTsBase + 1000ULL * static_cast<uint64_t>(first + j);
      const int rk = fdp.ConsumeIntegralInRange(0, 5);
      const size_t rc = fdp.ConsumeIntegralInRange<size_t>(1, r.size());
      if (rk == 0) {
        h.resp.AddGap(h.resp_pos, r.size(), t);
      } else if (rk == 1 && rc < r.size()) {
        h.resp.AddData(h.resp_pos, r.substr(0, rc), t, 2);
        h.resp.AddGap(h.resp_pos + rc, r.size() - rc, t + 1);
      } else if (rk == 2 && rc < r.size()) {
        h.resp.AddData(h.resp_pos, r.substr(0, rc), t, 2);
        h.Advance(t);
        h.resp.AddData(h.resp_pos + rc, r.substr(rc), t + 1, 2);
      } else {
        h.resp.AddData(h.resp_pos, r, t, 2);
      }
      h.resp_pos += r.size();
      h.Advance(t + 2);
    }
    h.ts = kReplyTsBase + 1000ULL * static_cast<uint64_t>(next);
  }
  h.session.Close(h.req, h.resp, CloseReason::kClosed, ++h.ts, &h.out);
  h.Collect();
  // Every exchange that ended with a reply names the command that reply answers.
  for (size_t i = 0; i < h.queries.size(); i++) {
    const std::string& q = h.queries[i];
    if (q.find("...") != std::string::npos) continue;  // its key was cut by a loss: unnamed
    const size_t k = q.find(" k");
    FUZZ_CHECK(k != std::string::npos);
    const int idx = std::atoi(q.c_str() + k + 2);
    FUZZ_CHECK(idx >= 0 && idx < next);
    if (q != want_query[static_cast<size_t>(idx)]) {
      std::fprintf(stderr, "query %s, sent %s\n", q.c_str(),
                   want_query[static_cast<size_t>(idx)].c_str());
      std::abort();
    }
    if (h.ends[i] >= kReplyTsBase && h.ends[i] < kReplyTsBase + 1000ULL * next) {
      if (static_cast<int>((h.ends[i] - kReplyTsBase) / 1000) != idx) {
        std::fprintf(stderr, "mispaired: %s took the reply of k%llu\n", q.c_str(),
                     static_cast<unsigned long long>((h.ends[i] - kReplyTsBase) / 1000));
        std::abort();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  if (fdp.ConsumeBool()) {
    RawBytes(fdp);
  } else {
    Conversation(fdp);
  }
  return 0;
}
