// Frame headers and FrameReader: whole control frames, DATA bodies piece by piece.
#include "protocols/http2/frames.h"

#include <algorithm>
#include <array>

namespace zerotrace::protocols::http2 {
namespace {

constexpr uint32_t kDefaultMaxFrame = 16384;

uint32_t Be24(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 16) | (uint32_t{u[1]} << 8) | u[2];
}

uint32_t Be32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

}  // namespace

FrameHeader ParseFrameHeader(const char* p) {
  FrameHeader h;
  h.length = Be24(p);
  h.type = static_cast<uint8_t>(p[3]);
  h.flags = static_cast<uint8_t>(p[4]);
  h.stream_id = Be32(p + 5) & 0x7fffffffU;
  return h;
}

bool PlausibleFrame(const char* p) {
  const FrameHeader h = ParseFrameHeader(p);
  if ((static_cast<uint8_t>(p[5]) & 0x80) != 0 || h.length > kDefaultMaxFrame) return false;
  const bool on_stream = h.stream_id != 0;
  auto flags_within = [&h](uint8_t allowed) { return (h.flags & ~allowed) == 0; };
  switch (h.type) {
    case kData:
      return on_stream && flags_within(kEndStream | kPadded);
    case kHeaders:
      return on_stream && flags_within(kEndStream | kEndHeaders | kPadded | kPriorityFlag);
    case kPriority:
      return on_stream && h.length == 5 && h.flags == 0;
    case kRstStream:
      return on_stream && h.length == 4 && h.flags == 0;
    case kSettings:
      return !on_stream && h.length % 6 == 0 && flags_within(kAck) &&
             (!h.has(kAck) || h.length == 0);
    case kPushPromise:
      return on_stream && h.length >= 4 && flags_within(kEndHeaders | kPadded);
    case kPing:
      return !on_stream && h.length == 8 && flags_within(kAck);
    case kGoaway:
      return !on_stream && h.length >= 8 && h.flags == 0;
    case kWindowUpdate:
      return h.length == 4 && h.flags == 0;
    case kContinuation:
      return on_stream && flags_within(kEndHeaders);
    default:
      return false;
  }
}

std::string_view ErrorCodeName(uint32_t code) {
  static constexpr std::array<std::string_view, 14> kNames = {"NO_ERROR",
                                                              "PROTOCOL_ERROR",
                                                              "INTERNAL_ERROR",
                                                              "FLOW_CONTROL_ERROR",
                                                              "SETTINGS_TIMEOUT",
                                                              "STREAM_CLOSED",
                                                              "FRAME_SIZE_ERROR",
                                                              "REFUSED_STREAM",
                                                              "CANCEL",
                                                              "COMPRESSION_ERROR",
                                                              "CONNECT_ERROR",
                                                              "ENHANCE_YOUR_CALM",
                                                              "INADEQUATE_SECURITY",
                                                              "HTTP_1_1_REQUIRED"};
  if (code < kNames.size()) return kNames[code];
  return "UNKNOWN_ERROR";
}

FrameEvent FrameReader::Lost() {
  lost_ = true;
  in_data_ = false;
  FrameEvent ev;
  ev.kind = FrameEvent::kLost;
  return ev;
}

// Hot path.
FrameEvent FrameReader::Next(conn::ByteStream& s) {
  FrameEvent ev;
  commit_begins_data_ = false;
  for (;;) {
    commit_to_ = s.front_pos();
    if (lost_) return Lost();
    const conn::ByteStream::Front front = s.Peek();
    if (in_data_) {
      if (front.pos >= frame_end_) {
        in_data_ = false;
        ev.kind = FrameEvent::kDataEnd;
        ev.header = data_;
        ev.pos = frame_end_;
        ev.end_pos = frame_end_;
        return ev;
      }
      const uint64_t avail = front.gap != 0 ? front.gap : front.data.size();
      if (avail == 0) return ev;     // kNeedMore
      if (front.pos >= body_end_) {  // padding: nobody's business
        s.Consume(std::min<uint64_t>(avail, frame_end_ - front.pos));
        continue;
      }
      const uint64_t n = std::min<uint64_t>(avail, body_end_ - front.pos);
      ev.kind = FrameEvent::kDataBytes;
      ev.pos = front.pos;
      if (front.gap != 0) {
        ev.gap = n;
      } else {
        ev.bytes = front.data.substr(0, n);
      }
      commit_to_ = front.pos + n;
      return ev;
    }
    if (front.gap != 0) return Lost();  // a frame header was not captured
    if (front.data.size() < kFrameHeaderSize) {
      if (s.GapAfterFrontData()) return Lost();
      return ev;
    }
    const FrameHeader h = ParseFrameHeader(front.data.data());
    const uint64_t frame_end = front.pos + kFrameHeaderSize + h.length;
    if (h.type == kData) {
      uint64_t body_end = frame_end;
      size_t head = kFrameHeaderSize;
      if (h.has(kPadded)) {
        if (h.length == 0) return Lost();  // no room for the pad length: malformed
        if (front.data.size() > kFrameHeaderSize) {
          const uint8_t pad = static_cast<uint8_t>(front.data[kFrameHeaderSize]);
          if (pad >= h.length) return Lost();  // malformed
          body_end = frame_end - pad;
          head++;
        } else if (s.GapAfterFrontData()) {
          ev.body_unknown = true;  // the pad length fell in a gap: body and padding are one
        } else {
          return ev;  // the pad length is still to come
        }
      }
      ev.kind = FrameEvent::kDataBegin;
      ev.header = h;
      ev.pos = front.pos;
      ev.end_pos = frame_end;
      commit_to_ = front.pos + head;
      commit_begins_data_ = true;
      next_data_ = h;
      next_body_end_ = body_end;
      next_frame_end_ = frame_end;
      return ev;
    }
    if (h.length > kMaxControlFrame) return Lost();
    if (front.data.size() < kFrameHeaderSize + h.length) {
      if (s.GapAfterFrontData()) return Lost();  // cut short by a gap: never completes
      return ev;
    }
    ev.kind = FrameEvent::kFrame;
    ev.header = h;
    ev.bytes = front.data.substr(kFrameHeaderSize, h.length);
    ev.pos = front.pos;
    ev.end_pos = frame_end;
    commit_to_ = frame_end;
    return ev;
  }
}

void FrameReader::Commit(conn::ByteStream& s) {
  s.ConsumeTo(commit_to_);
  if (commit_begins_data_) {
    commit_begins_data_ = false;
    in_data_ = true;
    data_ = next_data_;
    body_end_ = next_body_end_;
    frame_end_ = next_frame_end_;
  }
}

}  // namespace zerotrace::protocols::http2
