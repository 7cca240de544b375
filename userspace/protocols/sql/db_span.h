// The database half of a CLIENT span, after the OpenTelemetry database conventions: shared by
// the SQL protocols so that their spans carry the same attributes under the same rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/protocol.h"
#include "protocols/sql/sql_text.h"

namespace zerotrace::protocols::sql {

// One finished database call as a protocol saw it. Strings are views into the session's state
// and live until BuildDbSpan returns.
struct DbCall {
  std::string_view system;          // db.system.name: "postgresql", "mysql", "mariadb"
  std::string_view name_space;      // db.namespace (the database); empty when unknown
  const SqlSummary* sql = nullptr;  // the sanitised statement; null: text unknown
  bool answered = false;            // a reply ended it (else it was cut off: see error_type)
  bool failed = false;              // the database answered with an error
  std::string_view status_code;     // db.response.status_code (SQLSTATE, MySQL error number)
  std::string_view error_type;      // error.type when no status code names the error
  int64_t rows = -1;                // db.response.returned_rows; -1: not known
};

// Fills done->span's name, attributes and status. The stage adds the endpoints.
void BuildDbSpan(const DbCall& call, ExchangeDone* done);

}  // namespace zerotrace::protocols::sql
