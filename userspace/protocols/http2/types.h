// HTTP/2 streams as the session follows them, and the protocol's counters.
#pragma once

#include <cstdint>
#include <string>

#include "protocols/http2/grpc.h"

namespace zerotrace::protocols::http2 {

// Why a stream's exchange has no (complete) response.
enum class StreamError : uint8_t {
  kNone = 0,
  kReset = 1,            // RST_STREAM before the response ended
  kRefused = 2,          // a GOAWAY said the server never processed it
  kTimeout = 3,          // no response within the timeout
  kMissingAtClose = 4,   // the connection closed before any response
  kTruncated = 5,        // the connection closed in the middle of the response
  kConnectionReset = 6,  // the connection was reset before the response ended
  kAgentShutdown = 7,    // the agent stopped while the exchange was in flight
};

// error.type of a stream error (the HTTP/1 names for the same connection-level failures).
std::string_view StreamErrorName(StreamError e);

// One request stream: what its request and response said, and how it ended.
struct Stream {
  uint32_t id = 0;
  uint64_t seq = 0;  // the session's number for it (RequestStarted::id)
  bool live = false;
  bool started = false;  // its request header block was decoded and reported
  // Request.
  uint64_t start_ns = 0, seen_ns = 0;
  uint32_t start_tid = 0;
  uint64_t start_pos = 0;  // its HEADERS frame's first byte in the client-to-server stream
  std::string method, path, authority, scheme, user_agent;
  bool has_authority = false, has_user_agent = false;
  bool grpc = false;
  uint64_t timeout_ns = 0;  // grpc-timeout; 0: none
  bool req_ended = false;
  bool req_body_known = true;  // false: the request's end or a DATA size was not seen
  uint64_t req_body = 0;
  GrpcMessageCounter req_msgs;
  // Response.
  bool resp_seen = false;  // any response HEADERS
  uint32_t resp_tid = 0;
  bool final_headers = false;  // the final (non-1xx) response headers came
  uint16_t status = 0;         // their :status
  bool resp_ended = false;
  bool resp_body_known = true;
  uint64_t resp_body = 0;
  uint64_t end_ns = 0;
  GrpcMessageCounter resp_msgs;
  int grpc_status = -1;  // from the trailers (or a Trailers-Only response); -1: none
  std::string grpc_message;
  // How it failed.
  StreamError error = StreamError::kNone;
  uint32_t reset_code = 0;
  bool reset_by_client = false;
  uint64_t reset_ns = 0;
};

// Counters of every HTTP/2 session, summed.
struct Http2Stats {
  uint64_t conns = 0;                  // connections followed from their start
  uint64_t conns_table_unknown = 0;    // found mid-life: HPACK table unknown, no spans from them
  uint64_t streams_table_unknown = 0;  // request streams seen on those (dropped)
  uint64_t streams = 0;                // request streams whose headers were decoded
  uint64_t exchanges = 0;              // exchanges emitted (error exchanges included)
  uint64_t grpc_calls = 0;             // of which gRPC calls
  uint64_t resets = 0;                 // streams reset before their response ended
  uint64_t refused = 0;                // streams a GOAWAY said were never processed
  uint64_t hpack_lost = 0;             // directions whose header decoding stopped
  uint64_t frames_lost = 0;            // directions whose frame boundaries were lost
  uint64_t streams_dropped = 0;        // streams dropped when a direction was lost
  uint64_t unpaired_responses = 0;     // responses on streams whose request was not seen
  uint64_t upgrade_streams = 0;        // stream 1 after an h2c upgrade (HTTP/1 reports it)
  uint64_t pushes = 0;                 // server pushes (not reported)
  uint64_t streams_over_limit = 0;     // streams dropped: too many open on one connection
  uint64_t malformed_requests = 0;     // request header blocks without :method or :path
  uint64_t timeouts = 0;               // exchanges emitted with error timeout
  uint64_t unfinished_unobserved = 0;  // streams in flight when the agent stopped following
  uint64_t unfinished_shutdown = 0;    // streams in flight at shutdown (error exchanges)
  uint64_t grpc_counts_uncertain = 0;  // gRPC calls whose message counts are not reported
  uint64_t data_gap_bytes = 0;         // DATA bytes not captured (sizes stay exact)
};

}  // namespace zerotrace::protocols::http2
