// The readable line per span, exactly as documented in --help.
#include "span_printer.h"

#include <gtest/gtest.h>

#include <string>

namespace zerotrace::otlp_sink {
namespace {

using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::trace::v1::Span;

TEST(SpanPrinterTest, OneLinePerSpanWithEveryAttribute) {
  ExportRequest r;
  auto* rs = r.add_resource_spans();
  auto* svc = rs->mutable_resource()->add_attributes();
  svc->set_key("service.name");
  svc->mutable_value()->set_string_value("checkout");
  Span* s = rs->add_scope_spans()->add_spans();
  s->set_trace_id(std::string(16, '\x11'));
  s->set_span_id(std::string(8, '\x22'));
  s->set_name("GET /items/{id}");
  s->set_kind(Span::SPAN_KIND_SERVER);
  s->set_start_time_unix_nano(1000);
  s->set_end_time_unix_nano(1000 + 12345678);
  s->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  auto add = [&](const char* key) {
    auto* kv = s->add_attributes();
    kv->set_key(key);
    return kv->mutable_value();
  };
  add("url.path")->set_string_value("/a b\"c");
  add("http.response.status_code")->set_int_value(500);
  add("ok")->set_bool_value(false);
  add("ratio")->set_double_value(0.25);
  add("raw")->set_bytes_value("\x01\xab");
  AnyValue* list = add("list");
  list->mutable_array_value()->add_values()->set_int_value(1);
  list->mutable_array_value()->add_values()->set_string_value("two");
  auto* kv = add("map")->mutable_kvlist_value()->add_values();
  kv->set_key("k");
  kv->mutable_value()->set_string_value("v");
  add("nothing");
  Span* child = rs->mutable_scope_spans(0)->add_spans();
  child->set_parent_span_id(std::string(8, '\x22'));
  child->set_kind(Span::SPAN_KIND_CLIENT);
  child->set_start_time_unix_nano(5);
  child->set_end_time_unix_nano(3);
  r.add_resource_spans()->add_scope_spans()->add_spans()->set_name("anon");

  std::string out;
  AppendReadableSpans(r, &out);
  EXPECT_EQ(
      out,
      "checkout SERVER \"GET /items/{id}\" status=ERROR trace=11111111111111111111111111111111"
      " span=2222222222222222 parent=- duration=12.345678ms url.path=\"/a b\\\"c\""
      " http.response.status_code=500 ok=false ratio=0.25 raw=0x01ab list=[1,\"two\"]"
      " map={k=\"v\"} nothing=(empty)\n"
      "checkout CLIENT \"\" status=UNSET trace= span= parent=2222222222222222"
      " duration=-0.000002ms\n"
      "- UNSPECIFIED \"anon\" status=UNSET trace= span= parent=- duration=0.000000ms\n");
}

}  // namespace
}  // namespace zerotrace::otlp_sink
