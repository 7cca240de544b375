// ProtocolStage: what a connection's requests and spans share (its resource, its part of a
// RequestStart), made once per connection and remade when its process info is replaced.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "stage_fixture.h"

namespace zerotrace::protocols {
namespace {

// Without process information (no /proc cache) a resource is named after the connection's
// comm; it is built once per process, not again for every span.
TEST_F(StageTest, ResourceWithoutProcessInfoIsBuiltOncePerProcess) {
  Conn c(&table, 1, ZT_ROLE_CLIENT);
  for (int i = 0; i < 2; i++) {
    c.Send(ZT_DIR_EGRESS, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 1000 + 10 * i);
    c.Send(ZT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1005 + 10 * i);
  }
  ASSERT_EQ(sink.spans().size(), 2u);
  ASSERT_TRUE(sink.spans()[0].resource);
  EXPECT_EQ(sink.spans()[0].resource->service_name, "svc");
  EXPECT_EQ(sink.spans()[0].resource.get(), sink.spans()[1].resource.get());
}

// A connection's spans keep one resource until its process info is replaced: after an exec
// or a late /proc read (ConnTable::RefreshProcesses hands the connection a new ProcessInfo)
// the next span names what the new info says, while another connection of the process that
// still holds the old info keeps naming the old program.
TEST_F(StageTest, ResourceFollowsTheConnectionsProcessInfoAcrossExecAndLateIdentity) {
  auto info = [](const std::string& exe, const std::string& name) {
    auto i = std::make_shared<conn::ProcessInfo>();
    i->pid = 4242;
    i->comm = "svc";
    i->exe_path = "/usr/bin/" + exe;
    i->exe_name = exe;
    i->service_name = name;
    return i;
  };
  Conn a(&table, 1, ZT_ROLE_CLIENT);
  Conn b(&table, 2, ZT_ROLE_CLIENT);
  const auto old_info = info("old", "old");
  table.Find(1)->process = old_info;
  table.Find(2)->process = old_info;
  uint64_t ts = 1000;
  auto exchange = [&ts](Conn& c) {
    c.Send(ZT_DIR_EGRESS, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n", ts += 10);
    c.Send(ZT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ts += 10);
  };
  exchange(a);
  exchange(b);
  exchange(a);
  table.Find(1)->process = info("new", "new");  // exec
  exchange(a);
  exchange(b);
  table.Find(1)->process = info("new", "from-env");  // the same program, read in full later
  exchange(a);
  table.Find(2)->process = table.Find(1)->process;
  exchange(b);
  const auto& spans = sink.spans();
  std::vector<std::string> names;
  for (const auto& s : spans) names.push_back(s.resource ? s.resource->service_name : "<none>");
  EXPECT_EQ(names,
            (std::vector<std::string>{"old", "old", "old", "new", "old", "from-env", "from-env"}));
  ASSERT_EQ(spans.size(), 7u);
  EXPECT_EQ(spans[0].resource.get(), spans[2].resource.get());  // made once, not per span
  EXPECT_EQ(spans[3].resource->executable_path, "/usr/bin/new");
  EXPECT_EQ(spans[4].resource->executable_path, "/usr/bin/old");
}

// What a connection's requests share (its ends, its process's network namespace) is made once
// per connection and remade when its process info is replaced: a server whose namespace was
// unknown (so not its loopback caller's) links to its caller once /proc tells the same one.
TEST_F(StageTest, RequestStartsFollowTheConnectionsProcessInfoWhenItIsReplaced) {
  testing::ConnSpec client;
  client.conn_id = 1;
  client.role = ZT_ROLE_CLIENT;
  client.remote_addr[0] = 127;
  client.remote_addr[1] = client.remote_addr[2] = 0;
  client.remote_addr[3] = 1;
  client.local_port = 50000;
  client.remote_port = 8080;
  testing::ConnSpec server = client;
  server.conn_id = 2;
  server.role = ZT_ROLE_SERVER;
  server.local_port = 8080;
  server.remote_port = 50000;
  testing::ScriptedConnection c(testing::Into(&table), client), v(testing::Into(&table), server);
  auto in_netns = [](uint64_t netns) {
    auto i = std::make_shared<conn::ProcessInfo>();
    i->pid = 4242;
    i->comm = "svc";
    i->service_name = "svc";
    i->netns = netns;
    return i;
  };
  table.Find(1)->process = in_netns(1);
  table.Find(2)->process = in_netns(2);
  uint64_t ts = 1000;
  auto exchange = [&](const std::string& target) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n";
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    c.Send(req, ts += 10);
    v.Receive(req, ts += 10);
    v.Send(resp, ts += 10);
    c.Receive(resp, ts += 10);
  };
  exchange("/1");
  table.Find(2)->process = in_netns(1);  // the full /proc read arrives
  exchange("/2");
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 4u);
  auto find = [&spans](trace::SpanKind kind, const std::string& path) -> const trace::Span& {
    for (const auto& s : spans) {
      if (s.kind == kind && Str(s, "url.path") == path) return s;
    }
    ADD_FAILURE() << path;
    return spans.front();
  };
  EXPECT_FALSE(find(trace::SpanKind::kServer, "/1").parent_span_id.valid());
  EXPECT_EQ(find(trace::SpanKind::kServer, "/2").parent_span_id,
            find(trace::SpanKind::kClient, "/2").span_id);
  EXPECT_EQ(sink.linker.stats().link_peer, 1u);
}

}  // namespace
}  // namespace zerotrace::protocols
