// OTLP/HTTP: POST /v1/traces with protobuf or JSON bodies, optionally gzip, answered by a Sink.
#pragma once

#include <functional>

#include "http_server.h"
#include "sink.h"

namespace zerotrace::otlp_sink {

// Decodes the request and answers it as the OTLP/HTTP specification says: 200 with an
// ExportTraceServiceResponse in the request's encoding; failures with a google.rpc.Status body
// in that encoding (and Retry-After in seconds when the sink gives a retry hint); 400 for a
// body that does not decode, 404 for another path, 405 for another method, 415 for another
// Content-Type or Content-Encoding.
HttpResponse HandleOtlpHttp(Sink& sink, const HttpRequest& request,
                            const std::function<bool()>& client_gone);

}  // namespace zerotrace::otlp_sink
