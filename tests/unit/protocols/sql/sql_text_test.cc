// SummarizeSql: sanitised text, operation and target, per dialect; no literal ever survives.
#include "protocols/sql/sql_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocols/sql/db_span.h"

namespace zerotrace::protocols::sql {
namespace {

struct Case {
  std::string query;
  Dialect dialect;
  std::string text, operation, target;
  uint32_t statements = 1;
};

TEST(SqlTextTest, SanitisesAndSummarises) {
  const Dialect pg = Dialect::kPostgres, my = Dialect::kMySql;
  const std::vector<Case> cases = {
      {"SELECT * FROM orders WHERE id = 42", pg, "SELECT * FROM orders WHERE id = ?", "SELECT",
       "orders"},
      {"select a from public.orders o join x on o.id=x.id", pg,
       "select a from public.orders o join x on o.id=x.id", "SELECT", "public.orders"},
      {"INSERT INTO t (a, b) VALUES ('x', 1.5e-3), (E'it''s', -7)", pg,
       "INSERT INTO t (a, b) VALUES (?, ?), (?, -?)", "INSERT", "t"},
      {"UPDATE \"Users\" SET name = $1 WHERE id = $2", pg,
       "UPDATE \"Users\" SET name = $1 WHERE id = $2", "UPDATE", "Users"},
      {"DELETE FROM ONLY t WHERE x IN (1, 2, 3)", pg, "DELETE FROM ONLY t WHERE x IN (?, ?, ?)",
       "DELETE", "t"},
      {"SELECT (SELECT max(x) FROM a) FROM b", pg, "SELECT (SELECT max(x) FROM a) FROM b", "SELECT",
       "b"},
      {"(SELECT 1 FROM t1) UNION (SELECT 2 FROM t2)", pg,
       "(SELECT ? FROM t1) UNION (SELECT ? FROM t2)", "SELECT", "t1"},
      {"WITH r AS (SELECT * FROM a) SELECT * FROM r", pg,
       "WITH r AS (SELECT * FROM a) SELECT * FROM r", "SELECT", "r"},
      {"CREATE TABLE IF NOT EXISTS items (id int)", pg, "CREATE TABLE IF NOT EXISTS items (id int)",
       "CREATE TABLE", "items"},
      {"create unique index i on t (a)", pg, "create unique index i on t (a)", "CREATE INDEX", "i"},
      {"COPY t FROM STDIN", pg, "COPY t FROM STDIN", "COPY", "t"},
      {"BEGIN", pg, "BEGIN", "BEGIN", ""},
      {"  -- a comment 'x'\n  SELECT 1 /* c */ ;", pg, "SELECT ? ;", "SELECT", ""},
      {"SELECT $$a 'b' c$$, $tag$x$tag$ FROM t", pg, "SELECT ?, ? FROM t", "SELECT", "t"},
      {"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", pg,
       "INSERT INTO t VALUES (?); INSERT INTO t VALUES (?)", "BATCH INSERT", "t", 2},
      {"SELECT 1; UPDATE t SET a = 1", pg, "SELECT ?; UPDATE t SET a = ?", "BATCH", "", 2},
      {"SELECT * FROM `order` WHERE note = \"x\" # tail", my,
       "SELECT * FROM `order` WHERE note = ?", "SELECT", "order"},
      {"INSERT IGNORE INTO db1.t VALUES (x'ab', 0x1F, b'01', _utf8mb4'z')", my,
       "INSERT IGNORE INTO db1.t VALUES (?, ?, ?, _utf8mb4?)", "INSERT", "db1.t"},
      {"SELECT 1--1", my, "SELECT ?--?", "SELECT", ""},
      {"USE shop", my, "USE shop", "USE", "shop"},
      {"", pg, "", "", "", 0},
  };
  SqlSummary s;
  for (const Case& c : cases) {
    SummarizeSql(c.query, c.dialect, &s);
    EXPECT_EQ(s.text, c.text) << c.query;
    EXPECT_EQ(s.operation, c.operation) << c.query;
    EXPECT_EQ(s.target, c.target) << c.query;
    EXPECT_EQ(s.statements, c.statements) << c.query;
  }
}

// Every way a value can be written: none of them may leave the summary.
TEST(SqlTextTest, NoLiteralSurvives) {
  const std::string secret = "s3cr3tPa55";
  struct Leak {
    std::string query;
    Dialect dialect;
    bool backslash;
  };
  const std::vector<Leak> cases = {
      {"SELECT 's3cr3tPa55'", Dialect::kPostgres, false},
      {"SELECT E'\\' s3cr3tPa55 '", Dialect::kPostgres, false},
      {"SELECT '\\' s3cr3tPa55 '", Dialect::kPostgres, true},  // standard_conforming_strings=off
      {"SELECT 'a''s3cr3tPa55'", Dialect::kPostgres, false},
      {"SELECT $q$s3cr3tPa55$q$", Dialect::kPostgres, false},
      {"SELECT $$s3cr3tPa55", Dialect::kPostgres, false},  // cut off mid-literal
      {"SELECT U&'s3cr3tPa55'", Dialect::kPostgres, false},
      {"SELECT \"s3cr3tPa55", Dialect::kPostgres, false},  // an identifier that never closes
      {"SELECT '\\' s3cr3tPa55 '", Dialect::kMySql, true},
      {"SELECT '\\'' s3cr3tPa55 '", Dialect::kMySql, false},  // NO_BACKSLASH_ESCAPES
      {"SELECT \"s3cr3tPa55\"", Dialect::kMySql, true},
      {"SELECT X's3cr3tPa55'", Dialect::kMySql, true},
      {"SELECT `a` FROM t WHERE p = 's3cr3tPa55' /* s3cr3tPa55 */", Dialect::kMySql, true},
      {"SELECT 1 -- s3cr3tPa55", Dialect::kMySql, true},
      {"SELECT 1 # s3cr3tPa55", Dialect::kMySql, true},
      {"SELECT 1 /*! s3cr3tPa55 */", Dialect::kMySql, true},
  };
  SqlSummary s;
  for (const Leak& c : cases) {
    SummarizeSql(c.query, c.dialect, c.backslash, &s);
    EXPECT_EQ(s.text.find(secret), std::string::npos) << c.query << " -> " << s.text;
    EXPECT_EQ(s.target.find(secret), std::string::npos) << c.query;
  }
}

TEST(SqlTextTest, LongTextIsCutAtATokenBoundary) {
  std::string q = "SELECT a";
  for (int i = 0; i < 2000; i++) q += ", column_" + std::to_string(i);
  q += " FROM t";
  SqlSummary s;
  SummarizeSql(q, Dialect::kPostgres, &s);
  EXPECT_TRUE(s.truncated);
  EXPECT_LE(s.text.size(), kMaxSanitizedBytes);
  EXPECT_EQ(s.text.substr(s.text.size() - 3), "...");
  EXPECT_EQ(s.operation, "SELECT");
  EXPECT_EQ(s.target, "t");  // read past the cut
}

TEST(DbSpanTest, ErrorReplyIsAnErrorSpanWithItsCode) {
  SqlSummary sql;
  SummarizeSql("SELECT * FROM orders WHERE id = 7", Dialect::kPostgres, &sql);
  DbCall c;
  c.system = "postgresql";
  c.name_space = "shop";
  c.sql = &sql;
  c.answered = true;
  c.failed = true;
  c.status_code = "42P01";
  ExchangeDone done;
  BuildDbSpan(c, &done);
  EXPECT_EQ(done.span.name, "SELECT orders");
  EXPECT_EQ(done.span.status, trace::StatusCode::kError);
  ASSERT_NE(done.span.Find("db.response.status_code"), nullptr);
  EXPECT_EQ(std::get<std::string>(*done.span.Find("db.response.status_code")), "42P01");
  EXPECT_EQ(std::get<std::string>(*done.span.Find("error.type")), "42P01");
  EXPECT_EQ(std::get<std::string>(*done.span.Find("db.query.text")),
            "SELECT * FROM orders WHERE id = ?");
  EXPECT_EQ(std::get<std::string>(*done.span.Find("db.namespace")), "shop");
  EXPECT_EQ(std::get<std::string>(*done.span.Find("db.system.name")), "postgresql");

  c.sql = nullptr;  // a statement prepared before the agent started: nothing guessed
  c.failed = false;
  c.rows = 3;
  BuildDbSpan(c, &done);
  EXPECT_EQ(done.span.name, "postgresql");
  EXPECT_EQ(done.span.status, trace::StatusCode::kUnset);
  EXPECT_EQ(done.span.Find("db.query.text"), nullptr);
  EXPECT_EQ(done.span.Find("db.operation.name"), nullptr);
  EXPECT_EQ(done.span.Find("error.type"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*done.span.Find("db.response.returned_rows")), 3);
}

}  // namespace
}  // namespace zerotrace::protocols::sql
