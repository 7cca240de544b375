#!/usr/bin/env bash
# The Debian package on this machine: apt install, systemd-analyze verify, the installed agent
# (under systemd when systemd is PID 1, else started as the unit would start it: as an
# unprivileged user with only the unit's capabilities) traces a curl into the installed
# otlp-sink, and apt remove leaves no BPF state and no file outside the configuration.
# Usage: deb_test.sh BUILD_DIR   (root; the package is made there with cpack). Ends with
# "N passed, N failed"; always removes the package again, also on failure.
set -uo pipefail
BUILD=$(cd "$1" && pwd)
WORK=$(mktemp -d /tmp/zt-deb-test.XXXXXX)
chmod 755 "$WORK"
PIDS=()
passed=0 failed=0
ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if dpkg-query -W -f='${Status}' zerotrace 2>/dev/null | grep -q "ok installed\|config-files"; then
    apt-get purge -y zerotrace >/dev/null 2>&1 || dpkg --purge zerotrace >/dev/null 2>&1
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Programs and maps of zerotrace in the kernel (their names start with zt_).
bpf_state() { bpftool prog list 2>/dev/null | grep -c " name zt_"; }

if dpkg-query -W zerotrace >/dev/null 2>&1; then
  echo "zerotrace is installed already; this test installs and removes it itself" >&2
  exit 1
fi

(cd "$BUILD" && cpack -G DEB >"$WORK/cpack.log" 2>&1) || { cat "$WORK/cpack.log"; exit 1; }
DEB=$(ls "$BUILD"/zerotrace_*.deb)
before=$(find /etc /usr /var/lib /lib -xdev 2>/dev/null | sort)

check "apt install ./$(basename "$DEB")" apt-get install -y "$DEB" -o Dpkg::Use-Pty=0 >"$WORK/apt.log" 2>&1
[[ -x /usr/bin/zerotrace ]] || { cat "$WORK/apt.log"; exit 1; }
check "the package ships zerotrace, otlp-sink, the config, the unit and the man page" \
  test -x /usr/bin/otlp-sink -a -f /etc/zerotrace/config.yaml \
  -a -f /usr/lib/systemd/system/zerotrace.service -a -f /usr/share/man/man8/zerotrace.8.gz
check "the default config is valid" /usr/bin/zerotrace --config /etc/zerotrace/config.yaml --print-config >/dev/null
check "systemd-analyze verify zerotrace.service" systemd-analyze verify /usr/lib/systemd/system/zerotrace.service
UNIT=/usr/lib/systemd/system/zerotrace.service
caps=$(sed -n 's/^AmbientCapabilities=//p' "$UNIT")
check "the unit grants exactly the capabilities docs/SECURITY.md lists" \
  test "$caps" = "CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_SYS_PTRACE"
# Without CAP_SYS_ADMIN the agent cannot mount tracefs: systemd must, before the agent starts.
wants_tracefs() {
  grep -qx 'After=.*sys-kernel-tracing\.mount.*' "$UNIT" && grep -qx 'Wants=.*sys-kernel-tracing\.mount.*' "$UNIT"
}
check "the unit wants tracefs mounted before it starts" wants_tracefs

# A collector (the installed otlp-sink) and a server in this test's port range.
PORT_SINK=${ZT_PORT_BASE:-24700}
PORT_SRV=$((PORT_SINK + 1))
/usr/bin/otlp-sink --grpc off --http 127.0.0.1:$PORT_SINK --jsonl "$WORK/received.jsonl" >"$WORK/sink.log" 2>&1 &
PIDS+=($!)
python3 -m http.server --bind 127.0.0.1 $PORT_SRV --directory "$WORK" >/dev/null 2>&1 &
PIDS+=($!)
wait_for 20 grep -q "http listening" "$WORK/sink.log" || { bad "otlp-sink started"; exit 1; }

# "One config edit": the endpoint. The installed config file is left as shipped.
sed "s|^otlp-endpoint: .*|otlp-endpoint: http://127.0.0.1:$PORT_SINK|; s|^metrics-addr: .*|metrics-addr: 127.0.0.1:$((PORT_SINK + 2))|" \
  /etc/zerotrace/config.yaml >"$WORK/config.yaml"
chmod 644 "$WORK/config.yaml"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT" | sed "s|/etc/zerotrace/config.yaml|$WORK/config.yaml|")
if [[ "$(ps -p 1 -o comm=)" == systemd ]]; then
  echo "systemd is PID 1: starting the unit"
  mkdir -p /run/systemd/system/zerotrace.service.d
  printf '[Service]\nExecStart=\nExecStart=%s\n' "$exec_start" >/run/systemd/system/zerotrace.service.d/test.conf
  systemctl daemon-reload && systemctl restart zerotrace.service
  AGENT_LOG() { journalctl -u zerotrace.service --no-pager -o cat; }
else
  echo "PID 1 is $(ps -p 1 -o comm=), not systemd: starting ExecStart as the unit would (user nobody, the unit's capabilities only)"
  # The unit wants sys-kernel-tracing.mount: what systemd would start first, done as root here.
  if ! mountpoint -q /sys/kernel/tracing; then
    echo "tracefs is not mounted: mounting it as the unit's sys-kernel-tracing.mount would"
    mount -t tracefs -o nosuid,nodev,noexec tracefs /sys/kernel/tracing
  fi
  lc=$(echo "$caps" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
  # shellcheck disable=SC2086
  setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs \
    --inh-caps=-all,$lc --ambient-caps=-all,$lc --bounding-set=-all,$lc \
    $exec_start >"$WORK/agent.log" 2>&1 &
  PIDS+=($!)
  AGENT_LOG() { cat "$WORK/agent.log"; }
fi
if wait_for 60 bash -c "grep -q 'zerotrace: tracing' '$WORK/agent.log' 2>/dev/null || journalctl -u zerotrace.service -o cat 2>/dev/null | grep -q 'zerotrace: tracing'"; then
  ok "the installed agent started with the unit's privileges"
else
  bad "the installed agent started with the unit's privileges"; AGENT_LOG | tail -20
fi
curl -s -o /dev/null "http://127.0.0.1:$PORT_SRV/traced-by-the-package" &
CURL=$!
wait $CURL
has_curl_span() { grep -q "traced-by-the-package" "$WORK/received.jsonl" 2>/dev/null && grep -q "\"intValue\":\"$CURL\"" "$WORK/received.jsonl"; }
check "the installed agent traces a curl into the collector" wait_for 30 has_curl_span

# Stop it as systemd would (SIGTERM), then remove the package.
if [[ "$(ps -p 1 -o comm=)" == systemd ]]; then
  rm -rf /run/systemd/system/zerotrace.service.d
else
  kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}"; unset 'PIDS[-1]'
fi
check "apt remove" apt-get remove -y zerotrace -o Dpkg::Use-Pty=0 >>"$WORK/apt.log" 2>&1
check "no zerotrace BPF programs are left" test "$(bpf_state)" -eq 0
after=$(find /etc /usr /var/lib /lib -xdev 2>/dev/null | sort)
left=$(comm -13 <(echo "$before") <(echo "$after") | grep -v "^/var/lib/dpkg\|^/var/lib/apt\|^/var/cache" || true)
check "only the configuration is left: $(echo $left)" test "$left" = "$(printf '/etc/zerotrace\n/etc/zerotrace/config.yaml')"
check "apt purge removes it too" apt-get purge -y zerotrace -o Dpkg::Use-Pty=0 >>"$WORK/apt.log" 2>&1
check "nothing is left after purge" test ! -e /etc/zerotrace
echo "deb: $passed passed, $failed failed"
((failed == 0))
