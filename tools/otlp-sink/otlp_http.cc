// OTLP/HTTP request handling: content negotiation, gzip, decoding, and answers per the spec.
#include "otlp_http.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "gzip.h"
#include "rpc_status.h"
#include "wire_count.h"

namespace zerotrace::otlp_sink {
namespace {

constexpr size_t kMaxInflatedBytes = 256 * 1024 * 1024;
constexpr int kGrpcInvalidArgument = 3;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "application/json; charset=utf-8" -> "application/json".
std::string MediaType(const std::string* content_type) {
  if (content_type == nullptr) return "";
  std::string t = Lower(content_type->substr(0, content_type->find(';')));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  return t;
}

const char* ContentType(Encoding e) {
  return e == Encoding::kJson ? "application/json" : "application/x-protobuf";
}

HttpResponse Plain(int status, const std::string& text) {
  HttpResponse resp;
  resp.status = status;
  resp.headers.emplace_back("Content-Type", "text/plain");
  resp.body = text + "\n";
  return resp;
}

// A google.rpc.Status body in the request's encoding.
HttpResponse StatusResponse(int http_status, Encoding encoding, int grpc_code,
                            const std::string& message,
                            std::optional<std::chrono::milliseconds> retry_after) {
  HttpResponse resp;
  resp.status = http_status;
  resp.headers.emplace_back("Content-Type", ContentType(encoding));
  if (retry_after) {
    // Retry-After is whole seconds; round up so a client never retries before the hint.
    resp.headers.emplace_back("Retry-After", std::to_string((retry_after->count() + 999) / 1000));
  }
  if (encoding == Encoding::kProtobuf) {
    resp.body = EncodeRpcStatus(grpc_code, message, retry_after);
  } else {
    nlohmann::ordered_json status = {{"code", grpc_code}, {"message", message}};
    if (retry_after) {
      char delay[32];
      std::snprintf(delay, sizeof(delay), "%lld.%03llds",
                    static_cast<long long>(retry_after->count() / 1000),
                    static_cast<long long>(retry_after->count() % 1000));
      status["details"] = {{{"@type", std::string(kRetryInfoTypeUrl)}, {"retryDelay", delay}}};
    }
    resp.body = status.dump();
  }
  return resp;
}

// The sink's answer as the HTTP response, in the request's encoding.
HttpResponse Answered(const Answer& answer, Encoding encoding) {
  if (answer.kind != Answer::Kind::kAccepted) {
    return StatusResponse(answer.http_status, encoding, answer.grpc_code, answer.message,
                          answer.retry_after);
  }
  ExportResponse response;
  if (answer.rejected_spans > 0) {
    response.mutable_partial_success()->set_rejected_spans(answer.rejected_spans);
    response.mutable_partial_success()->set_error_message(answer.error_message);
  }
  HttpResponse resp;
  resp.headers.emplace_back("Content-Type", ContentType(encoding));
  resp.body = encoding == Encoding::kProtobuf ? response.SerializeAsString()
                                              : EncodeOtlpJsonResponse(response);
  return resp;
}

}  // namespace

HttpResponse HandleOtlpHttp(Sink& sink, const HttpRequest& request,
                            const std::function<bool()>& client_gone) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != "/v1/traces") return Plain(404, "otlp-sink: only POST /v1/traces is served");
  if (request.method != "POST") {
    HttpResponse resp = Plain(405, "otlp-sink: /v1/traces takes POST");
    resp.headers.emplace_back("Allow", "POST");
    return resp;
  }

  RequestMeta meta;
  meta.transport = Transport::kHttp;
  const std::string media = MediaType(request.Header("content-type"));
  if (media == "application/x-protobuf") {
    meta.encoding = Encoding::kProtobuf;
  } else if (media == "application/json") {
    meta.encoding = Encoding::kJson;
  } else {
    return Plain(415,
                 "otlp-sink: Content-Type must be application/x-protobuf or "
                 "application/json, not \"" +
                     media + "\"");
  }
  for (const auto& [name, value] : request.headers) {
    if (name.rfind("x-", 0) != 0) continue;
    auto it = std::find_if(meta.headers.begin(), meta.headers.end(),
                           [&](const auto& h) { return h.first == name; });
    if (it == meta.headers.end()) {
      meta.headers.emplace_back(name, value);
    } else {
      it->second += ", " + value;
    }
  }

  const std::string* content_encoding = request.Header("content-encoding");
  const std::string coding = content_encoding ? Lower(*content_encoding) : "identity";
  std::optional<std::string> inflated;
  if (coding == "gzip") {
    meta.gzip = true;
    inflated = Gunzip(request.body, kMaxInflatedBytes);
    if (!inflated) {
      const std::string error = "Content-Encoding is gzip but the body is not valid gzip";
      sink.RecordInvalid(meta, 400, error);
      return StatusResponse(400, meta.encoding, kGrpcInvalidArgument, error, std::nullopt);
    }
  } else if (coding != "identity") {
    return Plain(415,
                 "otlp-sink: Content-Encoding must be gzip or identity, not \"" + coding + "\"");
  }
  const std::string& body = inflated ? *inflated : request.body;

  // Protobuf is parsed into an arena: a few blocks, not objects per span and attribute.
  // DecodeOtlpJson builds its message on the heap; it is used where it is.
  google::protobuf::Arena arena(RequestArenaOptions());
  std::variant<ExportRequest, DecodeError> decoded;
  const ExportRequest* export_request = nullptr;
  if (meta.encoding == Encoding::kProtobuf && sink.count_only()) {
    const std::optional<int64_t> spans = CountSpansInWire(body);
    if (!spans) {
      const std::string error = "body is not a protobuf ExportTraceServiceRequest";
      sink.RecordInvalid(meta, 400, error);
      return StatusResponse(400, meta.encoding, kGrpcInvalidArgument, error, std::nullopt);
    }
    return Answered(sink.HandleCounted(*spans, meta, client_gone), meta.encoding);
  }
  if (meta.encoding == Encoding::kProtobuf) {
    auto* parsed = google::protobuf::Arena::CreateMessage<ExportRequest>(&arena);
    if (!parsed->ParseFromString(body)) {
      const std::string error = "body is not a protobuf ExportTraceServiceRequest";
      sink.RecordInvalid(meta, 400, error);
      return StatusResponse(400, meta.encoding, kGrpcInvalidArgument, error, std::nullopt);
    }
    export_request = parsed;
  } else {
    decoded = DecodeOtlpJson(body);
    if (auto* error = std::get_if<DecodeError>(&decoded)) {
      sink.RecordInvalid(meta, 400, error->message);
      return StatusResponse(400, meta.encoding, kGrpcInvalidArgument, error->message, std::nullopt);
    }
    export_request = &std::get<ExportRequest>(decoded);
  }

  return Answered(sink.Handle(*export_request, meta, client_gone), meta.encoding);
}

}  // namespace zerotrace::otlp_sink
