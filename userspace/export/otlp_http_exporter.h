// OTLP/HTTP span exporter: POST protobuf or JSON bodies with libcurl, gzip, TLS, retries.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "export/otlp_config.h"
#include "export/otlp_exporter_base.h"

typedef void CURL;
struct curl_slist;
typedef struct z_stream_s z_stream;

namespace zerotrace::exporter {

class OtlpHttpExporter final : public OtlpExporterBase {
 public:
  // One reused curl handle (keep-alive) POSTing to config.endpoint. Errors: a protocol other
  // than http/*, libcurl or zlib failing to initialise.
  static StatusOr<std::unique_ptr<OtlpHttpExporter>> Create(const OtlpConfig& config,
                                                            OtlpExporterOptions options = {});
  ~OtlpHttpExporter() override;

  const char* name() const override { return "otlp-http"; }

 private:
  OtlpHttpExporter(const OtlpConfig& config, OtlpExporterOptions options);
  Status Init();
  size_t Encode(const std::vector<trace::Span>& spans) override;
  size_t Assemble(std::span<const EncodedSpan> spans) override;
  bool TakesProto() const override { return !json_; }
  // Gzips body_ into gzipped_ when configured; returns body_'s size.
  size_t Compress();
  AttemptResult Send(std::chrono::milliseconds timeout) override;
  void CancelAttempt() override { cancelled_.store(true); }
  // The collector's message from an error body (google.rpc.Status as protobuf or JSON).
  std::string ErrorMessage() const;
  void ParsePartialSuccess(AttemptResult* result) const;

  static size_t OnBody(char* data, size_t size, size_t n, void* self);
  static size_t OnHeader(char* data, size_t size, size_t n, void* self);

  const bool json_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  z_stream* zstream_ = nullptr;
  char curl_error_[256] = {};
  // Reused across batches.
  std::string body_;
  std::string gzipped_;
  // The last response.
  std::string response_body_;
  std::string retry_after_;
  std::atomic<bool> cancelled_{false};  // CancelAttempt ran: the transfer aborts, none starts
};

// Create() as the SpanExporter interface, for the agent's exporter list.
StatusOr<std::unique_ptr<SpanExporter>> MakeOtlpHttpExporter(const OtlpConfig& config,
                                                             OtlpExporterOptions options = {});

}  // namespace zerotrace::exporter
