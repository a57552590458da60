#!/usr/bin/env bash
# Benchmark of `autofw scan` against the tools it replaces (`ss -tulnp`,
# `netstat -tulnp`), on two hosts, in one run, printed side by side:
#
#   seed: the seed article's VPS (the listeners of tests/support/seed.rs,
#         real sockets held by listen.py under each daemon's name, on
#         192.0.2.1 and 2001:db8::1), on an otherwise quiet machine;
#   busy: the busy host of issue 2 (tests/bench/busy_host.py: CONNECTIONS
#         established loopback connections over 8 processes, FILLERS more
#         processes holding open files, LISTENERS listeners).
#
# Goals (issue 20): scan at most 0.35x `ss -tulnp` on the seed host, at most
# 0.2x on the busy one.
#
# Usage (as root): tests/bench/scan.sh
#   env: CONNECTIONS (20000), FILLERS (500), LISTENERS (50), RUNS (20),
#        AUTOFW (a built autofw; default: builds target/release/autofw),
#        AUTOFW_BEFORE (another build, e.g. of main, timed in the same
#        rounds as "autofw scan --all (before)")
#
# Each host lives in a throwaway network namespace; the fd walk of every
# tool covers the whole machine's processes, so the hosts are measured one
# after the other (the seed host first, before the busy host's 500
# processes exist). Within a host the commands run interleaved, round by
# round (a machine shared with other work changes speed over a run; every
# command sees the same changes), each started from a timer inside the
# namespace (no `ip netns exec` in the times), in a shuffled order.
# Reported: the median and the minimum of RUNS runs, and each tool's peak
# RSS (/usr/bin/time) on the busy host. Namespaces and every process in them are removed on exit, also on
# failure or Ctrl-C. Nothing leaves the namespaces.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNECTIONS=${CONNECTIONS:-20000}
FILLERS=${FILLERS:-500}
LISTENERS=${LISTENERS:-50}
RUNS=${RUNS:-20}

if [[ $EUID -ne 0 ]]; then
  echo "scan.sh: needs root (it creates network namespaces)" >&2
  exit 1
fi
for tool in ip ss netstat python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "scan.sh: needs $tool" >&2; exit 1; }
done

SEED=afw-bench-seed-$$
BUSY=afw-bench-busy-$$
WORK=$(mktemp -d)
remove_ns() {
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  if [[ -n $pids ]]; then
    # shellcheck disable=SC2086 # one pid per word
    kill -9 $pids 2>/dev/null || true
  fi
  ip netns del "$1" 2>/dev/null || true
}
cleanup() {
  remove_ns "$SEED"
  remove_ns "$BUSY"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${AUTOFW:-} ]]; then
  cargo build --release --locked --quiet
  AUTOFW=$PWD/target/release/autofw
fi

# The timer: RUNS rounds, each running every command once, in an order
# shuffled each round (seeded: the same orders every run), so that no
# command always follows the same one: part of a process's exit (freeing
# its memory, closing its sockets) lands on whatever runs next, and in a
# fixed order autofw always followed `true`, the lightest (docs/scan.md,
# "the order of the commands"). Writes
# "host<TAB>command<TAB>median<TAB>min" lines (ms).
cat >"$WORK/timer.py" <<'EOF'
import random, statistics, subprocess, sys, time
host, runs, commands = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
names = [c.split("|")[0] for c in commands]
argvs = [c.split("|")[1].split() for c in commands]
for argv in argvs * 3:  # warm-up: page cache, dentries
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
samples = [[] for _ in argvs]
order = list(range(len(argvs)))
shuffle = random.Random(20).shuffle
for _ in range(runs):
    shuffle(order)
    for i in order:
        start = time.perf_counter_ns()
        subprocess.run(argvs[i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples[i].append((time.perf_counter_ns() - start) / 1e6)
for name, s in zip(names, samples):
    print(f"{host}\t{name}\t{statistics.median(s):.2f}\t{min(s):.2f}")
EOF

commands=(
  "autofw scan --all|$AUTOFW scan --all"
  "autofw scan --all --source proc|$AUTOFW scan --all --source proc"
  "ss -tuln (no processes)|ss -tuln"
  "ss -tulnp|ss -tulnp"
  "netstat -tulnp|netstat -tulnp"
  "true (one process start)|/bin/true"
)
if [[ -n ${AUTOFW_BEFORE:-} ]]; then
  commands+=("autofw scan --all (before)|$AUTOFW_BEFORE scan --all")
fi
machine() {
  echo "$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l) processes and $(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) open descriptors on the machine, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- The seed host -------------------------------------------------------
ip netns add "$SEED"
in_seed() { ip netns exec "$SEED" "$@"; }
in_seed ip link set lo up
# A veth pair inside the namespace holds the public addresses (no dummy
# device needed).
in_seed ip link add eth0 type veth peer name eth1
in_seed ip addr add 192.0.2.1/24 dev eth0
in_seed ip addr add 2001:db8::1/64 dev eth0 nodad
in_seed ip link set eth0 up
in_seed ip link set eth1 up
# tests/support/seed.rs's SEED_LISTENERS, one process per daemon.
seed_listeners=(
  "vsftpd tcp:0.0.0.0:21 tcp:[::]:21"
  "sendmail tcp:0.0.0.0:25 tcp:[::]:25 tcp:0.0.0.0:587 tcp:[::]:587"
  "named tcp:192.0.2.1:53 udp:192.0.2.1:53 tcp:[2001:db8::1]:53 udp:[2001:db8::1]:53 tcp:127.0.0.1:53 udp:127.0.0.1:53 tcp:127.0.0.1:953"
  "apache2 tcp:0.0.0.0:80 tcp:[::]:80 tcp:0.0.0.0:443 tcp:[::]:443"
  "dovecot tcp:0.0.0.0:110 tcp:[::]:110 tcp:0.0.0.0:143 tcp:[::]:143 tcp:0.0.0.0:993 tcp:[::]:993 tcp:0.0.0.0:995 tcp:[::]:995"
  "sshd tcp:0.0.0.0:5622 tcp:[::]:5622"
  "mysqld tcp:127.0.0.1:3306"
)
for entry in "${seed_listeners[@]}"; do
  # shellcheck disable=SC2086 # the specs are split on purpose
  set -- $entry
  name=$1
  shift
  ip netns exec "$SEED" python3 tests/support/listen.py --name "$name" "$@" >"$WORK/seed-$name" &
  disown $! # killed by cleanup, through the namespace's pids
done
for entry in "${seed_listeners[@]}"; do
  name=${entry%% *}
  for _ in $(seq 100); do
    grep -q ready "$WORK/seed-$name" 2>/dev/null && break
    sleep 0.1
  done
  grep -q ready "$WORK/seed-$name" || { echo "scan.sh: seed listener $name did not start" >&2; exit 1; }
done
echo "seed host: $(in_seed ss -Htuln | wc -l) listeners (autofw lists $(in_seed "$AUTOFW" scan --all --json 2>/dev/null | grep -c '"proto"')); $(machine)"
args=()
for entry in "${commands[@]}"; do args+=("$entry"); done
in_seed python3 "$WORK/timer.py" seed "$RUNS" "${args[@]}" >>"$WORK/times"
remove_ns "$SEED"

# --- The busy host -------------------------------------------------------
ip netns add "$BUSY"
in_busy() { ip netns exec "$BUSY" "$@"; }
in_busy ip link set lo up
# Room for the connections: ephemeral ports, and descriptors for the
# processes (busy_host.py raises its own limit; this is for the tools).
in_busy sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building the busy host: $CONNECTIONS connections, $FILLERS extra processes, $LISTENERS listeners..."
ip netns exec "$BUSY" python3 tests/bench/busy_host.py "$CONNECTIONS" "$FILLERS" "$LISTENERS" >"$WORK/ready" &
busy=$!
disown "$busy" # killed by cleanup, through the namespace's pids
for _ in $(seq 600); do
  grep -q ready "$WORK/ready" 2>/dev/null && break
  kill -0 "$busy" 2>/dev/null || { echo "scan.sh: busy_host.py failed" >&2; exit 1; }
  sleep 0.1
done
grep -q ready "$WORK/ready" || { echo "scan.sh: busy host not ready after 60 s" >&2; exit 1; }
echo "busy host: $(in_busy ss -Htn state established | wc -l) established TCP sockets, $(in_busy ss -Htuln | wc -l) listeners (autofw lists $(in_busy "$AUTOFW" scan --all --json 2>/dev/null | grep -c '"proto"')); $(machine)"
in_busy python3 "$WORK/timer.py" busy "$RUNS" "${args[@]}" >>"$WORK/times"

# Peak RSS (kB) of one run of each, on the busy host.
for entry in "${commands[@]}"; do
  # shellcheck disable=SC2206 # the command line is split on purpose
  cmd=(${entry#*|})
  rss=$(in_busy /usr/bin/time -f '%M' "${cmd[@]}" 2>&1 >/dev/null | tail -1)
  printf '%s\t%s\n' "${entry%%|*}" "$rss" >>"$WORK/rss"
done
echo "kernel $(uname -r), $(nproc) cores; $(ss -V); $(netstat -V 2>&1 | head -1)"
echo

python3 - "$WORK/times" "$WORK/rss" <<'EOF'
import sys
times = {}
for line in open(sys.argv[1]):
    host, name, median, low = line.rstrip("\n").split("\t")
    times[(host, name)] = (float(median), float(low))
rss = dict(line.rstrip("\n").split("\t") for line in open(sys.argv[2]))
names = [name for host, name in times if host == "seed"]
print(f'{"":<34} {"---------- seed host ----------":>32}   {"---------- busy host ----------":>32}')
print(f'{"command":<34} {"median":>9} {"min":>8} {"x ss -p":>8}    {"median":>9} {"min":>8} {"x ss -p":>8}   {"peak RSS":>9}')
for name in names:
    row = f"{name:<34}"
    for host in ("seed", "busy"):
        median, low = times[(host, name)]
        ss = times[(host, "ss -tulnp")][0]
        row += f" {median:>6.1f} ms {low:>5.1f} ms {median / ss:>8.2f}   "
    row += f"{int(rss[name]) / 1024:>6.1f} MiB"
    print(row)
print()
for host, goal in (("seed", 0.35), ("busy", 0.2)):
    ratio = times[(host, "autofw scan --all")][0] / times[(host, "ss -tulnp")][0]
    net = times[(host, "autofw scan --all")][0] / times[(host, "netstat -tulnp")][0]
    verdict = "met" if ratio <= goal else "NOT met"
    print(f"{host} host: autofw scan --all takes {ratio:.2f}x the time of ss -tulnp "
          f"(goal: at most {goal}; {verdict}), {net:.2f}x netstat -tulnp (medians)")
EOF
