// SummarizeSql: one lexer pass that writes the sanitised text and reads each statement's first
// tokens for its operation and target.
#include "protocols/sql/sql_text.h"

#include <array>

namespace zerotrace::protocols::sql {
namespace {

constexpr size_t kMaxOperationBytes = 40;
constexpr size_t kMaxTargetBytes = 128;

bool IsSpace(unsigned char c) { return c <= ' ' || c == 0x7f; }  // controls count as space
bool IsWordStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(unsigned char c) { return IsWordStart(c) || IsDigit(c) || c == '$'; }
char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool EqualsUpper(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (size_t i = 0; i < word.size(); i++) {
    if (Upper(word[i]) != upper[i]) return false;
  }
  return true;
}

enum class Tok : uint8_t {
  kEnd,
  kWord,     // keyword or bare identifier
  kIdent,    // quoted identifier ("x" in PostgreSQL, `x` in MySQL): raw text with its quotes
  kLiteral,  // string, dollar-quoted or prefixed string: never exported
  kNumber,   // numeric literal: never exported
  kParam,    // ? or $N: a placeholder, kept
  kPunct,    // one character of anything else
  kSemicolon,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;
  bool space_before = false;  // whitespace or a comment came before it
};

class Lexer {
 public:
  Lexer(std::string_view s, Dialect d, bool backslash) : s_(s), d_(d), backslash_(backslash) {}

  Token Next() {
    Token t;
    t.space_before = SkipSpaceAndComments();
    if (i_ >= s_.size()) return t;
    const size_t start = i_;
    const unsigned char c = static_cast<unsigned char>(s_[i_]);
    if (IsWordStart(c)) {
      while (i_ < s_.size() && IsWordChar(static_cast<unsigned char>(s_[i_]))) i_++;
      const std::string_view word = s_.substr(start, i_ - start);
      // E'..', B'..', X'..', N'..': a prefixed string literal.
      if (word.size() == 1 && i_ < s_.size() && s_[i_] == '\'' &&
          (EqualsUpper(word, "E") || EqualsUpper(word, "B") || EqualsUpper(word, "X") ||
           EqualsUpper(word, "N"))) {
        SkipQuoted('\'', backslash_ || EqualsUpper(word, "E"));
        return Make(t, Tok::kLiteral, start);
      }
      return Make(t, Tok::kWord, start);
    }
    if (IsDigit(c) || (c == '.' && i_ + 1 < s_.size() && IsDigit(s_[i_ + 1]))) {
      SkipNumber();
      return Make(t, Tok::kNumber, start);
    }
    switch (c) {
      case '\'':
        SkipQuoted('\'', backslash_);
        return Make(t, Tok::kLiteral, start);
      case '"': {
        const bool closed = SkipQuoted('"', d_ == Dialect::kMySql && backslash_);
        // An identifier that never closes may hold anything: shown as a literal.
        return Make(t, d_ == Dialect::kMySql || !closed ? Tok::kLiteral : Tok::kIdent, start);
      }
      case '`':
        if (d_ == Dialect::kMySql) {
          const bool closed = SkipQuoted('`', false);
          return Make(t, closed ? Tok::kIdent : Tok::kLiteral, start);
        }
        break;
      case '?':
        i_++;
        return Make(t, Tok::kParam, start);
      case ';':
        i_++;
        return Make(t, Tok::kSemicolon, start);
      case '$':
        if (d_ == Dialect::kPostgres) {
          if (i_ + 1 < s_.size() && IsDigit(s_[i_ + 1])) {
            i_++;
            while (i_ < s_.size() && IsDigit(s_[i_])) i_++;
            return Make(t, Tok::kParam, start);
          }
          if (SkipDollarQuoted()) return Make(t, Tok::kLiteral, start);
        }
        break;
      default:
        break;
    }
    i_++;
    return Make(t, Tok::kPunct, start);
  }

 private:
  Token& Make(Token& t, Tok kind, size_t start) {
    t.kind = kind;
    t.text = s_.substr(start, i_ - start);
    return t;
  }

  bool SkipSpaceAndComments() {
    bool skipped = false;
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (IsSpace(c)) {
        i_++;
      } else if (c == '-' && i_ + 1 < s_.size() && s_[i_ + 1] == '-' &&
                 (d_ == Dialect::kPostgres || i_ + 2 >= s_.size() ||
                  IsSpace(static_cast<unsigned char>(s_[i_ + 2])))) {
        SkipLine();
      } else if (c == '#' && d_ == Dialect::kMySql) {
        SkipLine();
      } else if (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '*') {
        SkipBlockComment();
      } else {
        break;
      }
      skipped = true;
    }
    return skipped;
  }
  void SkipLine() {
    while (i_ < s_.size() && s_[i_] != '\n') i_++;
  }
  // PostgreSQL nests block comments; MySQL does not (and its /*! .. */ is dropped too).
  void SkipBlockComment() {
    int depth = 0;
    while (i_ < s_.size()) {
      if (s_[i_] == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '*') {
        depth = d_ == Dialect::kPostgres ? depth + 1 : 1;
        i_ += 2;
      } else if (s_[i_] == '*' && i_ + 1 < s_.size() && s_[i_ + 1] == '/') {
        i_ += 2;
        if (--depth == 0) return;
      } else {
        i_++;
      }
    }
  }
  // From the opening quote at i_; doubled quotes and (when `backslash`) \x escape. An
  // unterminated literal runs to the end of the text (and returns false).
  bool SkipQuoted(char quote, bool backslash) {
    while (i_ < s_.size() && s_[i_] != quote) i_++;  // the prefix letter, if any
    i_++;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (backslash && c == '\\') {
        i_ += 2;
      } else if (c == quote) {
        if (i_ + 1 < s_.size() && s_[i_ + 1] == quote) {
          i_ += 2;
        } else {
          i_++;
          return true;
        }
      } else {
        i_++;
      }
    }
    i_ = s_.size();
    return false;
  }
  void SkipNumber() {
    while (i_ < s_.size()) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if ((c == 'e' || c == 'E') && i_ + 1 < s_.size() &&
          (s_[i_ + 1] == '+' || s_[i_ + 1] == '-')) {
        i_ += 2;
      } else if (IsWordChar(c) || c == '.') {
        i_++;
      } else {
        break;
      }
    }
  }
  // $tag$ ... $tag$ (tag empty or an identifier without '$'). False if i_ starts none.
  bool SkipDollarQuoted() {
    size_t j = i_ + 1;
    if (j < s_.size() && IsWordStart(static_cast<unsigned char>(s_[j]))) {
      while (j < s_.size() && IsWordChar(static_cast<unsigned char>(s_[j])) && s_[j] != '$') j++;
    }
    if (j >= s_.size() || s_[j] != '$') return false;
    const std::string_view tag = s_.substr(i_, j - i_ + 1);
    const size_t end = s_.find(tag, j + 1);
    i_ = end == std::string_view::npos ? s_.size() : end + tag.size();
    return true;
  }

  std::string_view s_;
  Dialect d_;
  bool backslash_;  // a backslash escapes the next character in '..' strings
  size_t i_ = 0;
};

// Words that end a statement's prefix but are never a table name.
bool IsReserved(std::string_view w) {
  static constexpr std::array<std::string_view, 14> kWords = {
      "SELECT", "FROM",  "WHERE", "LATERAL", "ONLY", "VALUES", "SET",
      "ON",     "USING", "AS",    "JOIN",    "(",    "TABLE",  "INTO"};
  for (std::string_view k : kWords) {
    if (EqualsUpper(w, k)) return true;
  }
  return false;
}

bool OneOf(std::string_view w, std::initializer_list<std::string_view> upper) {
  for (std::string_view u : upper) {
    if (EqualsUpper(w, u)) return true;
  }
  return false;
}

// One statement's operation and target, read from its tokens as they come.
class StatementReader {
 public:
  enum class Want : uint8_t {
    kFirst,       // the first word
    kWithBody,    // WITH ...: the main statement's verb at depth 0
    kFrom,        // SELECT: a FROM, then its table
    kSkipThen,    // skipping modifiers (INTO, IGNORE, ONLY...) before the name
    kObjectType,  // CREATE/DROP/ALTER: TABLE, INDEX...
    kName,        // the next token is the target
    kNameDot,     // a '.' continues a qualified name
    kNamePart,    // the part after a '.'
    kDone,
  };

  void Reset() {
    want_ = Want::kFirst;
    depth_ = 0;
    verb_depth_ = 0;
    tokens_ = 0;
    op_.clear();
    target_.clear();
  }

  void Feed(const Token& t) {
    tokens_++;
    if (t.kind == Tok::kPunct && t.text == "(") depth_++;
    if (t.kind == Tok::kPunct && t.text == ")" && depth_ > 0) depth_--;
    switch (want_) {
      case Want::kFirst:
        if (t.kind == Tok::kPunct && t.text == "(") return;  // (SELECT ...)
        if (t.kind != Tok::kWord) {
          want_ = Want::kDone;
          return;
        }
        Verb(t.text);
        return;
      case Want::kWithBody:
        if (depth_ == 0 && t.kind == Tok::kWord &&
            OneOf(t.text, {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})) {
          op_.clear();
          Verb(t.text);
        }
        return;
      case Want::kFrom:  // the SELECT's own FROM, not a subquery's
        if (t.kind == Tok::kWord && depth_ == verb_depth_ && EqualsUpper(t.text, "FROM")) {
          want_ = Want::kSkipThen;
        }
        return;
      case Want::kSkipThen:
        if (t.kind == Tok::kWord &&
            OneOf(t.text, {"INTO", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "ONLY",
                           "QUICK", "FROM", "TABLE", "IF", "NOT", "EXISTS", "CONCURRENTLY"})) {
          return;
        }
        want_ = Want::kName;
        Feed2(t);
        return;
      case Want::kObjectType:
        if (t.kind == Tok::kWord &&
            OneOf(t.text, {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNIQUE", "UNLOGGED", "GLOBAL",
                           "LOCAL", "MATERIALIZED", "FOREIGN", "RECURSIVE"})) {
          return;
        }
        if (t.kind == Tok::kWord) {
          op_.push_back(' ');
          AppendUpper(t.text, &op_, kMaxOperationBytes);
          want_ = Want::kSkipThen;
        } else {
          want_ = Want::kDone;
        }
        return;
      case Want::kName:
      case Want::kNameDot:
      case Want::kNamePart:
        Feed2(t);
        return;
      case Want::kDone:
        return;
    }
  }

  const std::string& op() const { return op_; }
  const std::string& target() const { return target_; }
  bool empty() const { return tokens_ == 0; }

 private:
  void Verb(std::string_view w) {
    verb_depth_ = depth_;
    AppendUpper(w, &op_, kMaxOperationBytes);
    if (EqualsUpper(w, "WITH")) {
      want_ = Want::kWithBody;
    } else if (EqualsUpper(w, "SELECT")) {
      want_ = Want::kFrom;
    } else if (OneOf(w, {"INSERT", "REPLACE", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "COPY",
                         "CALL", "USE", "LOCK"})) {
      want_ = Want::kSkipThen;
    } else if (OneOf(w, {"CREATE", "DROP", "ALTER"})) {
      want_ = Want::kObjectType;
    } else {
      want_ = Want::kDone;
    }
  }

  // The name (possibly qualified: schema.table) at the token stream's position.
  void Feed2(const Token& t) {
    if (want_ == Want::kNameDot) {
      if (t.kind == Tok::kPunct && t.text == ".") {
        want_ = Want::kNamePart;
      } else {
        want_ = Want::kDone;
      }
      return;
    }
    const bool name = t.kind == Tok::kIdent || (t.kind == Tok::kWord && !IsReserved(t.text));
    if (!name) {
      want_ = Want::kDone;
      return;
    }
    if (want_ == Want::kNamePart) target_.push_back('.');
    std::string_view n = t.text;
    if (t.kind == Tok::kIdent && n.size() >= 2) n = n.substr(1, n.size() - 2);
    if (target_.size() + n.size() <= kMaxTargetBytes) target_.append(n);
    want_ = Want::kNameDot;
  }

  static void AppendUpper(std::string_view w, std::string* out, size_t max) {
    for (char c : w) {
      if (out->size() >= max) return;
      out->push_back(Upper(c));
    }
  }

  Want want_ = Want::kFirst;
  int depth_ = 0;
  int verb_depth_ = 0;  // the parenthesis depth of the statement's verb
  uint32_t tokens_ = 0;
  std::string op_, target_;
};

}  // namespace

// Hot path.
void SummarizeSql(std::string_view query, Dialect dialect, SqlSummary* out) {
  SummarizeSql(query, dialect, dialect == Dialect::kMySql, out);
}

// Hot path.
void SummarizeSql(std::string_view query, Dialect dialect, bool backslash_escapes,
                  SqlSummary* out) {
  out->text.clear();
  out->operation.clear();
  out->target.clear();
  out->statements = 0;
  out->truncated = false;
  Lexer lexer(query, dialect, backslash_escapes);
  thread_local StatementReader reader;
  reader.Reset();
  bool same_op = true, same_target = true;
  auto finish_statement = [&] {
    if (reader.empty()) return;
    if (out->statements == 0) {
      out->operation = reader.op();
      out->target = reader.target();
    } else {
      same_op &= out->operation == reader.op();
      same_target &= out->target == reader.target();
    }
    out->statements++;
    reader.Reset();
  };
  for (Token t = lexer.Next(); t.kind != Tok::kEnd; t = lexer.Next()) {
    if (!out->truncated) {
      const std::string_view shown =
          t.kind == Tok::kLiteral || t.kind == Tok::kNumber ? std::string_view("?") : t.text;
      const bool space = t.space_before && !out->text.empty();
      if (out->text.size() + shown.size() + (space ? 1 : 0) + 3 > kMaxSanitizedBytes) {
        out->text.append("...");
        out->truncated = true;
      } else {
        if (space) out->text.push_back(' ');
        out->text.append(shown);
      }
    }
    if (t.kind == Tok::kSemicolon) {
      finish_statement();
    } else {
      reader.Feed(t);
    }
  }
  finish_statement();
  if (out->statements > 1) {
    const bool known = same_op && !out->operation.empty();
    out->operation = known ? "BATCH " + out->operation : "BATCH";
    if (!known || !same_target) out->target.clear();
  }
}

void SpanNameOf(const SqlSummary& s, std::string_view fallback, std::string* name) {
  if (s.operation.empty()) {
    name->assign(fallback);
    return;
  }
  name->assign(s.operation);
  if (!s.target.empty()) name->append(" ").append(s.target);
}

}  // namespace zerotrace::protocols::sql
