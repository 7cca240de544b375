// Who a process is: service.name and the identity around it, from its environment, cgroup,
// container runtime state, command line and executable. Pure functions over file contents.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zerotrace::conn {

// Where a process's service.name came from; the first that applies wins, in this order.
enum class ServiceNameSource : uint8_t {
  kNameMap = 0,      // --service-name-map, by executable or cgroup (by port: per connection)
  kEnvironment = 1,  // OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES
  kContainer = 2,    // the container's name in its runtime's state on this host
  kSystemdUnit = 3,  // system.slice/foo.service -> "foo"
  kEntryPoint = 4,   // an interpreter's script, module, jar or main class
  kExecutable = 5,   // the executable's file name
  kComm = 6,         // the kernel's task name (the executable could not be read)
};
// "name-map", "environment", "container", "systemd-unit", "entry-point", "executable", "comm".
const char* ServiceNameSourceName(ServiceNameSource source);

// What a /proc/PID/cgroup file says about the process.
struct CgroupIdentity {
  std::string path;               // the cgroup v2 path ("0::" line); empty on a v1-only host
  std::string container_id;       // innermost 64-hex id (docker, containerd, CRI-O, podman)
  std::string container_runtime;  // "docker", "containerd", "cri-o", "podman"; empty: unknown
  std::string k8s_pod_uid;        // from a kubepods path, with dashes; empty outside a pod
  std::string systemd_unit;       // innermost *.service unit without ".service"; not in a
                                  // container, never the user manager (user@UID.service)
};
CgroupIdentity ParseCgroup(std::string_view cgroup_file);

// Names a container runtime keeps in its own state on this host (no API server needed).
struct ContainerNames {
  std::string service;         // compose service, else the Kubernetes container name, else
                               // the container's name
  std::string container_name;  // container.name
  std::string k8s_pod_name;
  std::string k8s_namespace;
  std::string k8s_container_name;
};
// Reads <root>/var/lib/docker/containers/ID/config.v2.json (docker: name, compose service)
// or the OCI bundle's config.json annotations (containerd's CRI plugin under
// <root>/run/containerd/io.containerd.runtime.v2.task/k8s.io/ID, CRI-O under
// <root>/run/containers/storage/overlay-containers/ID/userdata). Empty when none is readable.
// Pod owners (deployment names) and labels are only known to the API server: not read.
ContainerNames ReadContainerNames(const std::string& root, const CgroupIdentity& cgroup);

// What an interpreter or VM runs, named as a service, and the runtime's name.
struct EntryPoint {
  std::string service;  // "orders" for python3 /srv/orders.py; empty when not an interpreter
                        // or when it runs inline code (-c, -e)
  std::string runtime;  // process.runtime.name: "cpython", "pypy", "nodejs", "java", "ruby",
                        // "php"; empty for other executables
};
// python: script (its directory for __main__.py) or -m module; node: script (its directory for
// index.js); java: -jar's file without ".jar" and a version suffix, or the main class's simple
// name; ruby: script; php: script. args[0] is the program as invoked.
EntryPoint InterpreterEntryPoint(std::string_view exe_name, const std::vector<std::string>& args);

// What the process's own environment says (NUL-separated KEY=VALUE entries).
struct EnvIdentity {
  std::string service_name;  // OTEL_SERVICE_NAME, else service.name of OTEL_RESOURCE_ATTRIBUTES
  std::string instance_id;   // service.instance.id of OTEL_RESOURCE_ATTRIBUTES
};
EnvIdentity IdentityFromEnviron(std::string_view environ);

// A /proc/PID/cmdline file as arguments: at most kMaxArgs, each cut at kMaxArgBytes.
inline constexpr size_t kMaxArgs = 64;
inline constexpr size_t kMaxArgBytes = 1024;
std::vector<std::string> SplitCmdline(std::string_view cmdline);

// A stable service.instance.id for one process lifetime on one boot: an RFC 9562 version 8
// UUID hashed from the boot id, the pid and the process's start time (clock ticks).
std::string InstanceId(std::string_view boot_id, uint32_t pid, uint64_t start_ticks);

// Field 22 (starttime) of a /proc/PID/stat line; 0 when it does not parse.
uint64_t StartTicksFromStat(std::string_view stat);

}  // namespace zerotrace::conn
