// The YAML configuration file (--config) and the effective configuration (--print-config).
#pragma once

#include <CLI/CLI.hpp>
#include <istream>
#include <string>
#include <utility>
#include <vector>

#include "agent/options.h"
#include "export/otlp_config.h"

namespace zerotrace::agent {

// Reads the file for CLI11: every key is a flag's long name without "--", so a key and its
// flag share one check and one error message, and a flag given on the command line wins.
//   - include: and exclude: are maps of selector kinds (include: {port: [80]} is
//     --include-port 80);
//   - env: maps OTEL_* variable names to values, which win over the process environment.
// Unknown keys, maps where a value belongs and keys without a value are errors naming the key.
class YamlConfig : public CLI::Config {
 public:
  explicit YamlConfig(const CLI::App* app) : app_(app) {}
  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return ""; }
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
  // The env: section of the last file read, in file order.
  const std::vector<std::pair<std::string, std::string>>& env() const { return env_; }

 private:
  const CLI::App* app_;
  mutable std::vector<std::pair<std::string, std::string>> env_;
};

// The OTEL_* variables the agent itself reads: the keys env: may hold.
const std::vector<std::string>& AgentOtelVariables();

// getenv with the file's env: section in front of the process environment. The function
// refers to `options`, which must outlive it.
exporter::GetEnvFn EnvWithFile(const Options& options);

// The effective configuration as a YAML file that --config accepts: every key with its value
// (defaults included), the selectors, and the OTEL_* variables in effect with where each came
// from. Secrets are REDACTED: header values, and credentials and query of endpoint URLs.
std::string EffectiveConfigYaml(const Options& options, const exporter::GetEnvFn& getenv);

}  // namespace zerotrace::agent
