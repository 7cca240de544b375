// --netns: two agents split one machine into two nodes (network namespaces A and B on a veth
// pair). curl -> front (A) -> back (B) -> back2 (A): each agent reports its own side, correctly
// linked within it, and nothing of the other's; with --propagate-context, the two agents'
// spans make one trace per request, every cross-node edge right.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "two_nodes.h"

namespace zerotrace::e2e {
namespace {

using namespace std::chrono_literals;
using zerotrace::testing::Subprocess;
using Clock = std::chrono::steady_clock;

constexpr int kFrontPort = 42080, kBackPort = 42081, kBack2Port = 42082;

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ns_.ok()) << "could not make the namespaces and the veth pair";
    const std::string relay = std::string(ZT_E2E_DIR) + "/servers/relay_server.py";
    auto start = [&](const std::string& ns, const std::string& name, const char* addr, int port,
                     const std::string& next) {
      std::vector<std::string> argv = {"ip", "netns", "exec", ns,   "/usr/bin/python3",
                                       "-B", relay,   name,   addr, std::to_string(port)};
      if (!next.empty()) argv.push_back(next);
      procs_.push_back(std::make_unique<Subprocess>(argv));
      return procs_.back()->pid();  // `ip netns exec` execs: the pid is the server's
    };
    back2_ = start(ns_.a(), "back2", TwoNamespaces::kAddrA, kBack2Port, "");
    back_ = start(ns_.b(), "back", TwoNamespaces::kAddrB, kBackPort,
                  std::string(TwoNamespaces::kAddrA) + ":" + std::to_string(kBack2Port));
    front_ = start(ns_.a(), "front", TwoNamespaces::kAddrA, kFrontPort,
                   std::string(TwoNamespaces::kAddrB) + ":" + std::to_string(kBackPort));
    for (auto& p : procs_) {
      ASSERT_TRUE(p->WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
          << zerotrace::testing::DescribeProcess(p->pid());
    }
  }

  void StartAgents(const std::vector<std::string>& extra, bool a = true, bool b = true) {
    std::vector<std::string> common = {"--stats-interval", "1", "--no-tls"};
    common.insert(common.end(), extra.begin(), extra.end());
    auto flags = [&](const std::string& ns) {
      std::vector<std::string> f = common;
      f.insert(f.end(), {"--netns", ns});
      return f;
    };
    if (a) {
      agent_a_ = std::make_unique<NodeAgent>("A", dir_.path() + "/a.jsonl", flags(ns_.a()));
      ASSERT_TRUE(agent_a_->attached()) << "agent A did not attach";
    }
    if (b) {
      agent_b_ = std::make_unique<NodeAgent>("B", dir_.path() + "/b.jsonl", flags(ns_.b()));
      ASSERT_TRUE(agent_b_->attached()) << "agent B did not attach";
    }
  }

  // curl in A fetches /r/<id> from front for each id (in parallel when asked); returns its pid.
  pid_t CurlChain(const std::vector<std::string>& ids, bool parallel) {
    std::vector<std::string> argv = {
        "ip", "netns", "exec", ns_.a(), "curl", "-sS", "--no-progress-meter", "--max-time", "20"};
    if (parallel) argv.insert(argv.end(), {"--parallel", "--parallel-max", "8"});
    for (const auto& id : ids) {
      argv.insert(argv.end(), {"-o", dir_.path() + "/body-" + id, "-w", "%{http_code}\\n",
                               "http://" + std::string(TwoNamespaces::kAddrA) + ":" +
                                   std::to_string(kFrontPort) + "/r/" + id});
    }
    Subprocess curl(argv);
    int ok = 0;
    while (auto line = curl.ReadLine(30s)) ok += *line == "200";
    EXPECT_EQ(curl.Wait(30s), 0);
    EXPECT_EQ(ok, static_cast<int>(ids.size())) << "not every request went through the chain";
    return curl.pid();
  }

  // Waits until A has `n` requests' spans from curl, front and back2, and B (when it runs)
  // from back. Spans counted before (`a_before`, `b_before` of the same pids) are not these.
  bool AwaitChainSpans(pid_t curl, size_t n, size_t front_before = 0, size_t back2_before = 0,
                       size_t back_before = 0) {
    const auto deadline = Clock::now() + 20s;
    for (;;) {
      agent_a_->log().Poll();
      if (agent_b_) agent_b_->log().Poll();
      if (agent_a_->log().CountForPid(curl) >= n &&
          agent_a_->log().CountForPid(front_) >= front_before + 2 * n &&
          agent_a_->log().CountForPid(back2_) >= back2_before + n &&
          (!agent_b_ || agent_b_->log().CountForPid(back_) >= back_before + 2 * n)) {
        return true;
      }
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
  }

  // The span of `pid` of this kind for /r/<id>; nullptr (and a failure) unless exactly one.
  static const Span* Find(const std::vector<Span>& spans, pid_t pid, int kind,
                          const std::string& id) {
    const Span* found = nullptr;
    int n = 0;
    for (const Span& s : spans) {
      if (s.pid == pid && s.kind == kind && s.Str("url.path") == "/r/" + id) {
        found = &s;
        n++;
      }
    }
    EXPECT_EQ(n, 1) << "pid " << pid << " kind " << kind << " /r/" << id;
    return n == 1 ? found : nullptr;
  }

  // The spans of request /r/<id> at each hop: curl's call, front's request and call and back2's
  // request (node A, in `a`), back's request and call (node B, in `b`; empty if B was not
  // traced). complete(): each hop's span was found, exactly once.
  struct Hops {
    const Span *c, *fs, *fc, *b2, *bs = nullptr, *bc = nullptr;
    bool complete(bool with_b) const { return c && fs && fc && b2 && (!with_b || (bs && bc)); }
  };
  Hops FindHops(const std::vector<Span>& a, const std::vector<Span>* b, pid_t curl,
                const std::string& id) const {
    Hops h{Find(a, curl, kClient, id), Find(a, front_, kServer, id), Find(a, front_, kClient, id),
           Find(a, back2_, kServer, id)};
    if (b) {
      h.bs = Find(*b, back_, kServer, id);
      h.bc = Find(*b, back_, kClient, id);
    }
    return h;
  }

  // The traceparent each hop's request carried, from the body curl saved for /r/<id>
  // ("front id tp=-", "back id tp=...", "back2 id tp=..."), by hop name.
  std::map<std::string, std::string> WireContexts(const std::string& id) {
    std::map<std::string, std::string> out;
    std::ifstream body(dir_.path() + "/body-" + id);
    std::string hop, rid, tp;
    while (body >> hop >> rid >> tp) {
      if (rid == id && tp.rfind("tp=", 0) == 0) out[hop] = tp.substr(3);
    }
    return out;
  }

  zerotrace::testing::TempDir dir_;
  TwoNamespaces ns_;  // destroyed after the processes and the agents below
  std::vector<std::unique_ptr<Subprocess>> procs_;
  std::unique_ptr<NodeAgent> agent_a_, agent_b_;
  pid_t front_ = 0, back_ = 0, back2_ = 0;
};

TEST_F(NetnsTest, EachAgentReportsItsOwnNamespaceOnlyAndLinksWithinIt) {
  ASSERT_NO_FATAL_FAILURE(StartAgents({}));
  std::vector<std::string> seq_ids, par_ids;
  for (int i = 0; i < 4; i++) seq_ids.push_back("s" + std::to_string(i));
  for (int i = 0; i < 8; i++) par_ids.push_back("p" + std::to_string(i));
  const pid_t seq_curl = CurlChain(seq_ids, false);
  const pid_t par_curl = CurlChain(par_ids, true);
  ASSERT_TRUE(AwaitChainSpans(seq_curl, seq_ids.size()));
  ASSERT_TRUE(AwaitChainSpans(par_curl, par_ids.size()));
  EXPECT_TRUE(agent_a_->Stop());
  EXPECT_TRUE(agent_b_->Stop());
  const std::vector<Span>& a = agent_a_->log().spans();
  const std::vector<Span>& b = agent_b_->log().spans();

  // Nothing of the other namespace: A has curl, front and back2; B has back.
  const std::set<int64_t> a_pids = {seq_curl, par_curl, front_, back2_};
  for (const Span& s : a) EXPECT_TRUE(a_pids.count(s.pid)) << "A reported: " << s.Describe();
  for (const Span& s : b) EXPECT_EQ(s.pid, back_) << "B reported: " << s.Describe();

  int checked = 0;
  for (const auto& [curl, ids] : {std::pair{seq_curl, seq_ids}, std::pair{par_curl, par_ids}}) {
    for (const std::string& id : ids) {
      const Hops h = FindHops(a, &b, curl, id);
      if (!h.complete(true)) continue;
      const auto [c, fs, fc, b2, bs, bc] = h;
      // Within A: curl -> front (same node), front's call in its request's thread.
      EXPECT_EQ(fs->parent_span_id, c->span_id) << id;
      EXPECT_EQ(fs->trace_id, c->trace_id) << id;
      EXPECT_EQ(fc->parent_span_id, fs->span_id) << id;
      EXPECT_EQ(fc->trace_id, fs->trace_id) << id;
      // Callers on the other node are not seen here: back2 (A) and back (B) are roots.
      EXPECT_EQ(b2->parent_span_id, "") << id;
      EXPECT_NE(b2->trace_id, c->trace_id) << id;
      EXPECT_EQ(bs->parent_span_id, "") << id;
      // Within B: back's call is its request's child.
      EXPECT_EQ(bc->parent_span_id, bs->span_id) << id;
      EXPECT_EQ(bc->trace_id, bs->trace_id) << id;
      checked++;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(seq_ids.size() + par_ids.size()));
  // The kernel filtered: userspace never had another namespace's connection to judge.
  for (NodeAgent* agent : {agent_a_.get(), agent_b_.get()}) {
    EXPECT_EQ(agent->Counter("conns_deselected"), 0u);
    EXPECT_EQ(agent->Counter("conns_undecided"), 0u);
  }
}

// --propagate-context on one side, then on both. Only A's agent first: the traffic still
// works, A's spans are right, and the header A inserted names A's CLIENT span (back, on B, is
// untraced and forwards nothing, so back2 stays a root). Then B's agent too: every request is
// one trace across both exports, each cross-node SERVER the child of the other node's CLIENT.
TEST_F(NetnsTest, PropagatedContextMakesOneTracePerRequestAcrossNodes) {
  ASSERT_NO_FATAL_FAILURE(StartAgents({"--propagate-context"}, true, false));
  std::vector<std::string> one_ids = {"o0", "o1", "o2"};
  const pid_t one_curl = CurlChain(one_ids, false);
  ASSERT_TRUE(AwaitChainSpans(one_curl, one_ids.size()));
  const size_t front_before = agent_a_->log().CountForPid(front_);
  const size_t back2_before = agent_a_->log().CountForPid(back2_);

  ASSERT_NO_FATAL_FAILURE(StartAgents({"--propagate-context"}, false, true));
  std::vector<std::string> seq_ids, par_ids;
  for (int i = 0; i < 5; i++) seq_ids.push_back("s" + std::to_string(i));
  for (int i = 0; i < 16; i++) par_ids.push_back("p" + std::to_string(i));
  const pid_t seq_curl = CurlChain(seq_ids, false);
  const pid_t par_curl = CurlChain(par_ids, true);
  ASSERT_TRUE(AwaitChainSpans(seq_curl, seq_ids.size(), front_before, back2_before, 0));
  ASSERT_TRUE(AwaitChainSpans(par_curl, par_ids.size(), front_before + 2 * seq_ids.size(),
                              back2_before + seq_ids.size(), 2 * seq_ids.size()));
  EXPECT_TRUE(agent_a_->Stop());
  EXPECT_TRUE(agent_b_->Stop());
  const std::vector<Span>& a = agent_a_->log().spans();
  const std::vector<Span>& b = agent_b_->log().spans();

  int checked = 0;
  for (const std::string& id : one_ids) {  // only A propagating
    const Hops h = FindHops(a, nullptr, one_curl, id);
    if (!h.complete(false)) continue;
    const auto [c, fs, fc, b2, bs, bc] = h;
    EXPECT_EQ(fs->parent_span_id, c->span_id) << id;
    EXPECT_EQ(fc->parent_span_id, fs->span_id) << id;
    EXPECT_EQ(fc->trace_id, c->trace_id) << id;
    EXPECT_EQ(b2->parent_span_id, "") << id;
    EXPECT_NE(b2->trace_id, c->trace_id) << id;
    auto wire = WireContexts(id);
    EXPECT_EQ(wire["front"], "-") << id;
    EXPECT_EQ(wire["back"], "00-" + c->trace_id + "-" + fc->span_id + "-01") << id;
    EXPECT_EQ(wire["back2"], "-") << id << ": nothing propagates from the untraced node";
    checked++;
  }
  // B's kernel may find a request head of back's unsure: one that reached back in two reads
  // (the traceparent A's sk_msg inserted can leave A as a segment of its own). That read sets
  // no context (docs/CONTEXT_PROPAGATION.md: split heads are AMBIGUOUS, `ctx_uncertain`), so
  // back's call carries none and its hop to back2 starts a trace of its own: never a wrong
  // parent, and counted. Anything else must be one trace per request.
  const uint64_t unsure_b = agent_b_->Counter("ctx_uncertain").value_or(0);
  EXPECT_LE(unsure_b, 2u) << "most of back's reads hold their whole head";
  std::set<std::string> traces;
  size_t split = 0;
  for (const auto& [curl, ids] : {std::pair{seq_curl, seq_ids}, std::pair{par_curl, par_ids}}) {
    for (const std::string& id : ids) {
      const Hops h = FindHops(a, &b, curl, id);
      if (!h.complete(true)) continue;
      const auto [c, fs, fc, b2, bs, bc] = h;
      EXPECT_EQ(c->parent_span_id, "") << id;
      EXPECT_EQ(fs->parent_span_id, c->span_id) << id;
      EXPECT_EQ(fc->parent_span_id, fs->span_id) << id;
      // The cross-node edges: A's front CLIENT -> B's back SERVER -> B's back CLIENT -> A's
      // back2 SERVER, in curl's trace.
      EXPECT_EQ(bs->parent_span_id, fc->span_id) << id;
      EXPECT_EQ(bc->parent_span_id, bs->span_id) << id;
      const bool propagated = b2->parent_span_id == bc->span_id;
      if (!propagated) {  // B's kernel had no context for back's call: back2 is a root
        EXPECT_EQ(b2->parent_span_id, "") << id << ": " << b2->Describe();
        EXPECT_NE(b2->trace_id, c->trace_id) << id;
        EXPECT_EQ(WireContexts(id)["back2"], "-") << id;
        split++;
      }
      for (const Span* s : {fs, fc, bs, bc}) {
        EXPECT_EQ(s->trace_id, c->trace_id) << id << ": " << s->Describe();
      }
      if (propagated) {
        EXPECT_EQ(b2->trace_id, c->trace_id) << id << ": " << b2->Describe();
      }
      traces.insert(c->trace_id);
      checked++;
    }
  }
  EXPECT_EQ(split, unsure_b) << "every request back2 got without a context was an unsure read";
  EXPECT_EQ(traces.size(), seq_ids.size() + par_ids.size()) << "one trace per request";
  EXPECT_EQ(checked, static_cast<int>(one_ids.size() + seq_ids.size() + par_ids.size()));
  // Every call that carried a context kept the span id the kernel put on the wire.
  EXPECT_EQ(agent_a_->Counter("ctx_adopted"), one_ids.size() + seq_ids.size() + par_ids.size());
  EXPECT_EQ(agent_b_->Counter("ctx_adopted"), seq_ids.size() + par_ids.size() - unsure_b);
  // The kernel's side: A inserted into front's calls, B into back's, whose trace id B's kernel
  // read from the traceparent A inserted (back2's requests carry B's: A parses those too).
  EXPECT_EQ(agent_a_->Counter("ctx_inserted"), one_ids.size() + seq_ids.size() + par_ids.size());
  EXPECT_EQ(agent_b_->Counter("ctx_inserted"), seq_ids.size() + par_ids.size() - unsure_b);
  EXPECT_EQ(agent_b_->Counter("ctx_from_traceparent"), seq_ids.size() + par_ids.size() - unsure_b);
  // A's kernel may find one of back2's request heads unsure in the same way (CI once: 1 of 21):
  // that read counts as ctx_uncertain instead. front's reads hold curl's whole head (A inserts
  // into every one of front's calls, above), so A's unsure reads are back2's.
  const uint64_t unsure_a = agent_a_->Counter("ctx_uncertain").value_or(0);
  EXPECT_LE(unsure_a, 2u) << "most of back2's reads hold their whole head";
  EXPECT_EQ(agent_a_->Counter("ctx_from_traceparent"),
            seq_ids.size() + par_ids.size() - unsure_b - unsure_a);
  for (NodeAgent* agent : {agent_a_.get(), agent_b_.get()}) {
    EXPECT_EQ(agent->Counter("ctx_disagree"), 0u);
    EXPECT_EQ(agent->Counter("ctx_event_loop"), 0u);
  }
}

}  // namespace
}  // namespace zerotrace::e2e
