// The protocol half of an HTTP/2 stream's span: the HTTP conventions (as HTTP/1.x, with
// network.protocol.version "2"), or for a gRPC call the RPC conventions of OpenTelemetry
// semantic conventions v1.37.0 (rpc.system, rpc.service, rpc.method, rpc.grpc.status_code).
#pragma once

#include <cstdint>

#include "protocols/http2/types.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::http2 {

struct SpanOptions {
  bool infer_routes = true;  // HTTP span names with route templates ("GET /users/{id}")
};

// Fills `done` for stream `st` (its `error` says how it failed, if it did) as seen by the side
// `ctx` names. `finished_ns` ends a stream that has no end of its own (a timeout, a close).
// Every field of done->span it sets is overwritten, reusing its storage.
void BuildExchange(const Stream& st, const SessionContext& ctx, const SpanOptions& options,
                   uint64_t finished_ns, ExchangeDone* done);

// The gRPC status a stream ended with, as its client reports it: the trailers' (or a
// Trailers-Only response's) grpc-status; without one, from the HTTP status; for a reset, from
// its error code (a client's CANCEL once its grpc-timeout passed is DEADLINE_EXCEEDED).
// -1 when unknown (the connection failed or the agent stopped first).
int GrpcStatusOf(const Stream& st);

}  // namespace zerotrace::protocols::http2
