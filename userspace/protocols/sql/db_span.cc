// BuildDbSpan: span name "OPERATION target" (else the system's name), the db.* attributes, and
// an error status for error replies. Server messages are never exported: they may quote values.
#include "protocols/sql/db_span.h"

#include "trace/attribute_writer.h"

namespace zerotrace::protocols::sql {

// Hot path (once per exchange).
void BuildDbSpan(const DbCall& c, ExchangeDone* done) {
  trace::Span& s = done->span;
  s.status = trace::StatusCode::kUnset;
  s.status_message.clear();
  s.attributes.reserve(14);
  trace::AttributeWriter attrs(&s.attributes);
  attrs.Add("db.system.name", c.system);
  if (!c.name_space.empty()) attrs.Add("db.namespace", c.name_space);
  if (c.sql != nullptr && !c.sql->operation.empty()) {
    SpanNameOf(*c.sql, c.system, &s.name);
    attrs.Add("db.operation.name", c.sql->operation);
    attrs.Add("db.query.summary", std::string_view(s.name));
    if (!c.sql->target.empty() && c.sql->statements == 1) {
      attrs.Add("db.collection.name", c.sql->target);
    }
    if (c.sql->statements > 1) {
      attrs.Add("db.operation.batch.size", static_cast<int64_t>(c.sql->statements));
    }
  } else {
    s.name.assign(c.system);
  }
  if (c.sql != nullptr && !c.sql->text.empty()) attrs.Add("db.query.text", c.sql->text);
  if (c.rows >= 0) attrs.Add("db.response.returned_rows", c.rows);
  if (c.failed) {
    s.status = trace::StatusCode::kError;
    if (!c.status_code.empty()) {
      attrs.Add("db.response.status_code", c.status_code);
      attrs.Add("error.type", c.status_code);
    } else {
      attrs.Add("error.type", c.error_type.empty() ? std::string_view("_OTHER") : c.error_type);
    }
  } else if (!c.answered) {
    s.status = trace::StatusCode::kError;
    attrs.Add("error.type", c.error_type.empty() ? std::string_view("_OTHER") : c.error_type);
    s.status_message.assign(c.error_type);
  }
  attrs.Done();
}

}  // namespace zerotrace::protocols::sql
