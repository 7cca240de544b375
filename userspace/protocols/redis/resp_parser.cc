// RespParser: RESP framing by position. Bulk payloads are skipped by length through data or
// gaps; only header lines need captured bytes.
#include "protocols/redis/resp_parser.h"

#include <algorithm>
#include <charconv>

namespace zerotrace::protocols::redis {
namespace {

// A RESP length or integer: optional '-', digits, nothing else.
bool ParseNumber(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && p == end;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

void RespValue::Clear() {
  type = 0;
  null = truncated = false;
  number = 0;
  start_pos = end_pos = start_ns = end_ns = 0;
  start_tid = end_tid = 0;
  head_offset = head_size = 0;
  text.clear();
  elements.clear();
  elements_seen = 0;
}

void RespParser::Reset() {
  in_value_ = false;
  stack_.clear();
  bulk_left_ = 0;
  bulk_keep_ = 0;
  bulk_elem_ = -1;
  value_.Clear();
}

bool RespParser::SkipToAfterGap(conn::ByteStream& s) {
  for (;;) {
    const conn::ByteStream::Front f = s.Peek();
    if (f.gap > 0) {
      s.Consume(f.gap);
      return true;
    }
    if (f.data.empty()) return false;
    s.Consume(f.data.size());
  }
}

void RespParser::StartValue(const conn::ByteStream& s, uint64_t pos) {
  value_.Clear();
  in_value_ = true;
  value_.start_pos = pos;
  const conn::ByteStream::Stamp st = s.StampAt(pos);
  value_.start_ns = st.ts_ns;
  value_.start_tid = st.tid;
}

RespElement* RespParser::NewElement(char type) {
  value_.elements_seen++;
  if (value_.elements.size() >= kMaxElements) return nullptr;
  RespElement& e = value_.elements.emplace_back();
  e.type = type;
  e.offset = static_cast<uint32_t>(value_.text.size());
  return &e;
}

void RespParser::Keep(RespElement* e, std::string_view bytes, size_t limit) {
  const size_t n = std::min(bytes.size(), limit);
  value_.text.append(bytes.data(), n);
  if (e != nullptr) {
    e->size = static_cast<uint32_t>(n);
    e->clipped |= n < bytes.size();
  } else {
    value_.head_size = static_cast<uint32_t>(n);
  }
}

bool RespParser::ElementDone(const conn::ByteStream& s, uint64_t last_pos) {
  for (;;) {
    if (stack_.empty()) {
      value_.end_pos = last_pos + 1;
      const conn::ByteStream::Stamp st = s.StampAt(last_pos);
      value_.end_ns = st.ts_ns;
      value_.end_tid = st.tid;
      in_value_ = false;
      return true;
    }
    Frame& top = stack_.back();
    if (--top.remaining > 0) return false;
    const bool attribute = top.attribute;
    stack_.pop_back();
    // An attribute annotates the value that follows it: that value is the element.
    if (attribute) return false;
  }
}

// Hot path.
RespParser::Result RespParser::Next(conn::ByteStream& s) {
  for (;;) {
    const conn::ByteStream::Front f = s.Peek();
    if (bulk_left_ > 0) {
      if (f.gap == 0 && f.data.empty()) return Result::kNeedMore;
      const Result r = SkipBulk(s, f);  // always makes progress
      if (r != Result::kNeedMore) return r;
      continue;
    }
    if (f.gap > 0) return Result::kLost;  // a header line was not captured
    if (f.data.empty()) return Result::kNeedMore;
    const size_t nl = f.data.substr(0, kMaxLine + 2).find('\n');
    if (nl == std::string_view::npos) {
      if (f.data.size() > kMaxLine || s.GapAfterFrontData()) return Result::kLost;
      return Result::kNeedMore;
    }
    if (!in_value_) StartValue(s, f.pos);
    const Result r = ParseLine(s, f.data, nl);
    if (r != Result::kNeedMore) return r;
  }
}

// Inside a bulk payload: skips it by length; keeps its first bytes; checks its CRLF.
// kNeedMore: go on parsing.
RespParser::Result RespParser::SkipBulk(conn::ByteStream& s, const conn::ByteStream::Front& f) {
  RespElement* e = bulk_elem_ >= 0 && static_cast<size_t>(bulk_elem_) < value_.elements.size()
                       ? &value_.elements[static_cast<size_t>(bulk_elem_)]
                       : nullptr;
  if (f.gap > 0) {
    const uint64_t n = std::min(f.gap, bulk_left_);
    value_.truncated = true;
    if (e != nullptr) e->clipped = true;
    bulk_keep_ = 0;  // what follows the gap is not contiguous with what was kept
    const bool done = n == bulk_left_ && ElementDone(s, f.pos + n - 1);
    bulk_left_ -= n;
    s.Consume(n);
    return done ? Result::kValue : Result::kNeedMore;
  }
  if (f.data.empty()) return Result::kNeedMore;
  const uint64_t n = std::min<uint64_t>(f.data.size(), bulk_left_);
  const uint64_t payload = bulk_left_ > 2 ? std::min<uint64_t>(n, bulk_left_ - 2) : 0;
  if (bulk_keep_ > 0 && payload > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(bulk_keep_, payload));
    value_.text.append(f.data.data(), k);
    if (e != nullptr) {
      e->size += static_cast<uint32_t>(k);
    } else if (bulk_elem_ == -2) {
      value_.head_size += static_cast<uint32_t>(k);
    }
    bulk_keep_ -= k;
  }
  for (uint64_t i = payload; i < n; ++i) {  // the payload's CRLF
    if (f.data[i] != (bulk_left_ - i == 2 ? '\r' : '\n')) return Result::kLost;
  }
  const bool done = n == bulk_left_ && ElementDone(s, f.pos + n - 1);
  bulk_left_ -= n;
  s.Consume(n);
  return done ? Result::kValue : Result::kNeedMore;
}

RespParser::Result RespParser::ParseLine(conn::ByteStream& s, std::string_view data, size_t nl) {
  const uint64_t pos = s.front_pos();
  std::string_view line = data.substr(0, nl);
  const bool top = stack_.empty();
  const char type = line.empty() ? '\0' : line[0];
  if (requests_ && top && type != '*') return ParseInline(s, line, nl + 1);
  if (line.size() < 2 || line.back() != '\r') return Result::kLost;  // a type byte, then CRLF
  line.remove_suffix(1);
  const std::string_view rest = line.substr(1);
  if (requests_ && !top && type != '$') return Result::kLost;  // commands hold bulk strings
  const bool direct = stack_.size() == 1 && !stack_[0].attribute;
  bool done = false;
  switch (type) {
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      int64_t n = 0;
      if (!ParseNumber(rest, &n) || n < -1 || n > (int64_t{1} << 32)) return Result::kLost;
      if (n == -1 && type != '*') return Result::kLost;
      if (requests_ && n > 1024 * 1024) return Result::kLost;  // the server refuses it too
      const int64_t count = n < 0 ? 0 : (type == '%' || type == '|') ? 2 * n : n;
      if (type != '|') {
        if (top) {
          value_.type = type;
          value_.number = n;
          value_.null = n < 0;
        } else if (direct) {
          if (RespElement* e = NewElement(type)) {
            e->number = n;
            e->null = n < 0;
          }
        }
      }
      if (count == 0) {
        done = type != '|' && ElementDone(s, pos + nl);
      } else {
        if (stack_.size() >= kMaxDepth) return Result::kLost;
        stack_.push_back({count, type == '|'});
      }
      break;
    }
    case '$':
    case '!':
    case '=': {
      int64_t n = 0;
      if (!ParseNumber(rest, &n) || n < -1 || n > (int64_t{1} << 40)) return Result::kLost;
      if (n == -1 && type != '$') return Result::kLost;
      RespElement* e = nullptr;
      size_t keep = 0;
      bulk_elem_ = -1;
      if (top) {
        value_.type = type;
        value_.number = n;
        value_.null = n < 0;
        value_.head_offset = static_cast<uint32_t>(value_.text.size());
        keep = kKeepHeadBytes;
        bulk_elem_ = -2;
      } else if (direct) {
        const size_t index = value_.elements.size();
        e = NewElement(type);
        if (e != nullptr) {
          e->number = n;
          e->null = n < 0;
          keep = index < kKeptElements ? kKeepElementBytes : type == '!' ? kKeepErrorBytes : 0;
          bulk_elem_ = static_cast<int64_t>(index);
        }
      }
      if (n < 0) {
        done = ElementDone(s, pos + nl);
        break;
      }
      bulk_keep_ = std::min<uint64_t>(keep, static_cast<uint64_t>(n));
      if (e != nullptr && static_cast<uint64_t>(n) > bulk_keep_) e->clipped = true;
      bulk_left_ = static_cast<uint64_t>(n) + 2;
      break;
    }
    case '+':
    case '-':
    case ':':
    case ',':
    case '#':
    case '_':
    case '(': {
      int64_t number = 0;
      if (type == ':' && !ParseNumber(rest, &number)) return Result::kLost;
      if (type == '_' && !rest.empty()) return Result::kLost;
      if (top) {
        value_.type = type;
        value_.number = number;
        value_.null = type == '_';
        value_.head_offset = static_cast<uint32_t>(value_.text.size());
        Keep(nullptr, rest, kKeepHeadBytes);
      } else if (direct) {
        const size_t index = value_.elements.size();
        if (RespElement* e = NewElement(type)) {
          e->number = number;
          e->null = type == '_';
          Keep(e, rest,
               index < kKeptElements ? kKeepElementBytes
               : type == '-'         ? kKeepErrorBytes
                                     : 0);
        }
      }
      done = ElementDone(s, pos + nl);
      break;
    }
    default:
      return Result::kLost;
  }
  s.Consume(nl + 1);
  return done ? Result::kValue : Result::kNeedMore;
}

// An inline command: one line of space-separated words (quotes group words, as the server's
// splitter does; its escapes are not decoded: the words are only named, never exported).
RespParser::Result RespParser::ParseInline(conn::ByteStream& s, std::string_view line,
                                           size_t consumed) {
  const uint64_t last = s.front_pos() + consumed - 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  value_.type = 'i';
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size()) break;
    size_t start = i, end = i;
    if (line[i] == '"' || line[i] == '\'') {
      const char quote = line[i];
      size_t j = i + 1;
      while (j < line.size() && line[j] != quote) j += line[j] == '\\' && quote == '"' ? 2 : 1;
      start = i + 1;
      end = std::min(j, line.size());
      i = std::min(j + 1, line.size());
    } else {
      while (i < line.size() && !IsSpace(line[i])) ++i;
      end = i;
    }
    const size_t index = value_.elements.size();
    if (RespElement* e = NewElement('$')) {
      e->number = static_cast<int64_t>(end - start);
      Keep(e, line.substr(start, end - start), index < kKeptElements ? kKeepElementBytes : 0);
    }
  }
  value_.number = static_cast<int64_t>(value_.elements_seen);
  ElementDone(s, last);
  s.Consume(consumed);
  return Result::kValue;
}

}  // namespace zerotrace::protocols::redis
