// A traced process as an OpenTelemetry resource: its identity, with secrets in its command line
// redacted the way URLs and headers are redacted in spans (protocols/http_common/route.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "conn/process_info.h"
#include "trace/span.h"

namespace zerotrace::protocols {

// The command line as process.command_args may carry it:
// - an argument that is a URL keeps its scheme, host and path; its query values become
//   "REDACTED" (RedactQuery), and so does the password of its user info (the whole user info
//   when it has no ':', as in https://TOKEN@host);
// - "--name=value" / "name=value" with a sensitive name (IsSensitiveHeader: password, token,
//   secret, api-key, auth, ...) becomes "--name=REDACTED"; other values are redacted as URLs;
// - the argument after a sensitive "--name" flag without '=' becomes "REDACTED";
// - a short flag with its value attached ("-pSECRET") keeps the flag only ("-pREDACTED");
// - any other bare argument after the program is shown only when it is a path, a program
//   file (app.py, server.js) or a number of up to 5 digits; others may be values
//   (`redis-cli SET key VALUE`) and become "REDACTED".
std::vector<std::string> RedactCommandArgs(const std::vector<std::string>& args);

// The resource of `info`'s spans. `served_port` (0: a client connection) lets the name map's
// port rules apply; `host_name` and `extra` (the agent's OTEL_RESOURCE_ATTRIBUTES) are copied.
std::shared_ptr<trace::Resource> MakeResource(const conn::ProcessInfo& info, uint16_t served_port,
                                              const std::string& host_name,
                                              const std::vector<trace::ResourceAttribute>& extra);

}  // namespace zerotrace::protocols
