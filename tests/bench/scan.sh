#!/usr/bin/env bash
# Benchmark of `autofw scan` against the tools it replaces, on a busy host.
#
# Usage (as root): tests/bench/scan.sh
#   env: CONNECTIONS (20000), FILLERS (500), LISTENERS (50), RUNS (20),
#        AUTOFW (a built autofw; default: builds target/release/autofw)
#
# Builds the busy host of issue 2 in a throwaway network namespace
# (tests/bench/busy_host.py: CONNECTIONS established loopback connections
# over 8 processes, FILLERS more processes holding open files, LISTENERS
# listeners), then times, side by side in one hyperfine run inside it:
# `autofw scan --all` (and each of its sources), `ss -tuln`, `ss -tulnp`,
# `netstat -tulnp`; prints the ratios against autofw and each tool's peak
# RSS (/usr/bin/time). Without hyperfine it falls back to a plain loop.
# The namespace and every process in it are removed on exit, also on
# failure or Ctrl-C. Nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNECTIONS=${CONNECTIONS:-20000}
FILLERS=${FILLERS:-500}
LISTENERS=${LISTENERS:-50}
RUNS=${RUNS:-20}

if [[ $EUID -ne 0 ]]; then
  echo "scan.sh: needs root (it creates a network namespace)" >&2
  exit 1
fi
for tool in ip ss netstat python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "scan.sh: needs $tool" >&2; exit 1; }
done

NS=afw-bench-$$
WORK=$(mktemp -d)
cleanup() {
  local pids
  pids=$(ip netns pids "$NS" 2>/dev/null || true)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086 # one pid per word
    kill -9 $pids 2>/dev/null || true
  fi
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${AUTOFW:-} ]]; then
  cargo build --release --locked --quiet
  AUTOFW=$PWD/target/release/autofw
fi

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
# Room for the connections: ephemeral ports, and descriptors for the
# processes (busy_host.py raises its own limit; this is for the tools).
in_ns sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building the busy host: $CONNECTIONS connections, $FILLERS extra processes, $LISTENERS listeners..."
in_ns python3 tests/bench/busy_host.py "$CONNECTIONS" "$FILLERS" "$LISTENERS" >"$WORK/ready" &
busy=$!
disown "$busy" # killed by cleanup, through the namespace's pids
for _ in $(seq 600); do
  grep -q ready "$WORK/ready" 2>/dev/null && break
  kill -0 "$busy" 2>/dev/null || { echo "scan.sh: busy_host.py failed" >&2; exit 1; }
  sleep 0.1
done
grep -q ready "$WORK/ready" || { echo "scan.sh: busy host not ready after 60 s" >&2; exit 1; }

established=$(in_ns ss -Htn state established | wc -l)
listening=$(in_ns ss -Htuln | wc -l)
processes=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
descriptors=$(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
scanned=$(in_ns "$AUTOFW" scan --all --json 2>/dev/null | grep -c '"proto"')
echo "host: $established established TCP sockets, $listening listeners (autofw lists $scanned), $processes processes, $descriptors open descriptors on the machine"
echo "kernel $(uname -r), $(nproc) cores; $(ss -V); $(netstat -V 2>&1 | head -1)"
echo

commands=(
  "autofw scan --all|$AUTOFW scan --all"
  "autofw scan --all --source netlink|$AUTOFW scan --all --source netlink"
  "autofw scan --all --source proc|$AUTOFW scan --all --source proc"
  "ss -tuln (no processes)|ss -tuln"
  "ss -tulnp|ss -tulnp"
  "netstat -tulnp|netstat -tulnp"
)

# Times in ms: "name<TAB>mean<TAB>stddev" per line in $WORK/times.
if command -v hyperfine >/dev/null; then
  args=()
  for entry in "${commands[@]}"; do
    args+=(-n "${entry%%|*}" "${entry#*|}")
  done
  in_ns hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/hyperfine.json" "${args[@]}" >&2
  python3 - "$WORK/hyperfine.json" >"$WORK/times" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f'{r["command"]}\t{r["mean"] * 1000:.2f}\t{r["stddev"] * 1000:.2f}')
EOF
else
  echo "(no hyperfine: timing with a loop of $RUNS runs)" >&2
  for entry in "${commands[@]}"; do
    name=${entry%%|*}
    # shellcheck disable=SC2206 # the command line is split on purpose
    cmd=(${entry#*|})
    for _ in 1 2 3; do in_ns "${cmd[@]}" >/dev/null 2>&1; done
    samples=()
    for _ in $(seq "$RUNS"); do
      start=$(date +%s%N)
      in_ns "${cmd[@]}" >/dev/null 2>&1
      samples+=($(( $(date +%s%N) - start )))
    done
    python3 -c 'import statistics, sys; s = [int(x) / 1e6 for x in sys.argv[2:]]; print(f"{sys.argv[1]}\t{statistics.mean(s):.2f}\t{statistics.stdev(s):.2f}")' "$name" "${samples[@]}" >>"$WORK/times"
  done
fi

# Peak RSS (kB) of one run of each.
for entry in "${commands[@]}"; do
  # shellcheck disable=SC2206
  cmd=(${entry#*|})
  rss=$(in_ns /usr/bin/time -f '%M' "${cmd[@]}" 2>&1 >/dev/null | tail -1)
  printf '%s\t%s\n' "${entry%%|*}" "$rss" >>"$WORK/rss"
done

python3 - "$WORK/times" "$WORK/rss" <<'EOF'
import sys
times = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
rss = dict(line.rstrip("\n").split("\t") for line in open(sys.argv[2]))
base = float(times[0][1])
print(f'{"command":<36} {"mean ms":>9} {"± ms":>7} {"x autofw":>9} {"peak RSS":>10}')
for name, mean, dev in times:
    print(f'{name:<36} {float(mean):>9.2f} {float(dev):>7.2f} {float(mean) / base:>9.2f} {int(rss[name]) / 1024:>7.1f} MiB')
by = {name: float(mean) for name, mean, _ in times}
print()
print(f'autofw scan --all takes {by["autofw scan --all"] / by["ss -tulnp"]:.2f} of the time of ss -tulnp '
      f'(goal: at most 0.33), {by["autofw scan --all"] / by["netstat -tulnp"]:.2f} of netstat -tulnp; '
      f'peak RSS {int(rss["autofw scan --all"]) / 1024:.1f} MiB (goal: under 16 MiB)')
EOF
