#!/usr/bin/env bash
# Benchmark: a 10,000-entry blocklist, loaded the autofw way against the
# seed article's way (one `iptables -A` process per rule).
#
#   autofw: `autofw propose --from SCAN --policy P --out F` (its own time
#           included) then `nft -f F`, in a fresh namespace: the blocklist is
#           one interval set, matched by one rule.
#   autofw, iptables backend: propose --format iptables --ipset, then
#           `ipset restore` and `iptables-restore --noflush`.
#   seed:   `iptables -A INPUT -s ADDR -j DROP`, one process per entry, in a
#           fresh namespace. Timed on SEED_RULES entries (default 1,000) and
#           scaled linearly to 10,000; each `iptables -A` gets slower as the
#           chain grows, so the scaled figure flatters the seed.
#
# Usage (as root, from the repository): tests/bench/propose.sh
# Env: ENTRIES (10000), SEED_RULES (1000), AUTOFW (path of the binary;
# default: a release build, built if missing).
# Only namespaces this script creates are touched; they are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

ENTRIES=${ENTRIES:-10000}
SEED_RULES=${SEED_RULES:-1000}
if [[ -z ${AUTOFW:-} ]]; then
  cargo build --release --quiet
  AUTOFW=target/release/autofw
fi
[[ $EUID == 0 ]] || { echo "run as root (it creates network namespaces)" >&2; exit 1; }

work=$(mktemp -d)
ns_autofw="afw-bench-propose-a-$$"
ns_ipt="afw-bench-propose-i-$$"
ns_seed="afw-bench-propose-s-$$"
ns_chain="afw-bench-propose-l-$$"
ns_client="afw-bench-propose-c-$$"
cleanup() {
  for ns in "$ns_autofw" "$ns_ipt" "$ns_seed" "$ns_chain" "$ns_client"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
for ns in "$ns_autofw" "$ns_ipt" "$ns_seed" "$ns_chain" "$ns_client"; do ip netns add "$ns"; done

# ENTRIES distinct /32s from the benchmarking range 198.18.0.0/15, four apart
# so that none merge into a larger network: the set really holds ENTRIES
# elements. (Only data: no packet is sent to them.)
python3 - "$ENTRIES" >"$work/blocklist.txt" <<'EOF'
import ipaddress, sys
base = int(ipaddress.IPv4Address("198.18.0.1"))
for i in range(int(sys.argv[1])):
    print(ipaddress.IPv4Address(base + 4 * i))
EOF
printf '[blocklist]\nfiles = ["blocklist.txt"]\n' >"$work/policy.toml"
scan=fixtures/scans/seed-host.json

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# autofw, nft: build + load, end to end.
t0=$(now)
"$AUTOFW" propose --from "$scan" --policy "$work/policy.toml" --out "$work/rules.nft" 2>/dev/null
t1=$(now)
ip netns exec "$ns_autofw" nft -f "$work/rules.nft"
t2=$(now)
elements=$(ip netns exec "$ns_autofw" nft list set inet autofw blocklist_v4 | grep -o '198\.18\.' | wc -l)
# Rules of the input chain (the chain's own line carries a handle too).
rules=$(( $(ip netns exec "$ns_autofw" nft -a list chain inet autofw input | grep -c '# handle') - 1 ))
autofw_build=$(ms "$t0" "$t1"); autofw_load=$(ms "$t1" "$t2"); autofw_total=$(ms "$t0" "$t2")

# autofw, iptables backend: build + ipset + iptables-restore.
t0=$(now)
"$AUTOFW" propose --from "$scan" --policy "$work/policy.toml" --format iptables \
  --out "$work/rules.iptables" --ipset "$work/sets.ipset" 2>/dev/null
ip netns exec "$ns_ipt" ipset restore -exist -file "$work/sets.ipset"
ip netns exec "$ns_ipt" iptables-restore --noflush "$work/rules.iptables"
t1=$(now)
ipt_total=$(ms "$t0" "$t1")

# The seed's way: one iptables process per rule.
head -n "$SEED_RULES" "$work/blocklist.txt" >"$work/seed.txt"
t0=$(now)
while read -r addr; do
  ip netns exec "$ns_seed" iptables -A INPUT -s "$addr" -j DROP
done <"$work/seed.txt"
t1=$(now)
seed_ms=$(ms "$t0" "$t1")
seed_rules=$(ip netns exec "$ns_seed" iptables -S INPUT | grep -c -- '-j DROP')
seed_scaled=$(( seed_ms * ENTRIES / SEED_RULES ))

# Per packet: round trips over one TCP connection from a client namespace,
# through autofw's ruleset (blocklist = one set lookup) and through the
# seed's shape (the same 10,000 addresses as 10,000 rules, loaded here in one
# iptables-restore since only the per-packet cost is measured). Traffic stays
# on a veth pair between namespaces this script made (192.0.2.0/24).
ROUND_TRIPS=${ROUND_TRIPS:-20000}
{ echo '*filter'; sed 's/.*/-A INPUT -s & -j DROP/' "$work/blocklist.txt"; echo COMMIT; } >"$work/chain.rules"
ip netns exec "$ns_chain" iptables-restore "$work/chain.rules"
cat >"$work/echo.py" <<'EOF2'
import socket, sys, time
if sys.argv[1] == "serve":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 80)); s.listen(1); print("ready", flush=True)
    c, _ = s.accept()
    while (d := c.recv(64)):
        c.sendall(d)
else:
    c = socket.create_connection((sys.argv[2], 80), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = int(sys.argv[3]); t = time.perf_counter()
    for _ in range(n):
        c.sendall(b"x"); c.recv(64)
    print(f"{(time.perf_counter() - t) / n * 1e6:.1f}")
EOF2
round_trip_us() { # SERVER_NS: microseconds per round trip from the client
  local server=$1 i
  ip link add bench0 netns "$ns_client" type veth peer name eth0 netns "$server"
  ip -n "$ns_client" addr add 192.0.2.2/24 dev bench0
  ip -n "$server" addr add 192.0.2.1/24 dev eth0
  ip -n "$ns_client" link set bench0 up; ip -n "$server" link set eth0 up
  ip -n "$server" link set lo up
  ip netns exec "$server" python3 "$work/echo.py" serve >"$work/serve.out" &
  for i in $(seq 50); do grep -q ready "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
  ip netns exec "$ns_client" python3 "$work/echo.py" client 192.0.2.1 "$ROUND_TRIPS"
  wait
  ip -n "$ns_client" link del bench0
}
rtt_autofw=$(round_trip_us "$ns_autofw")
rtt_chain=$(round_trip_us "$ns_chain")

ratio() { python3 -c "print(f'{$1 / max($2, 1):.0f}')"; }
row() { printf '%-42s %s\n' "$1" "$2"; }
row "blocklist entries:" "$ENTRIES (the set holds $elements; the input chain has $rules rules)"
row "autofw propose (build):" "${autofw_build} ms"
row "nft -f (load):" "${autofw_load} ms"
row "autofw, nft, end to end:" "${autofw_total} ms"
row "autofw, iptables + ipset, end to end:" "${ipt_total} ms"
row "seed, $SEED_RULES x iptables -A:" "${seed_ms} ms ($seed_rules rules loaded)"
row "seed, scaled to $ENTRIES:" "${seed_scaled} ms"
row "ratio seed / autofw (nft):" "$(ratio "$seed_scaled" "$autofw_total")x"
row "ratio seed / autofw (iptables + ipset):" "$(ratio "$seed_scaled" "$ipt_total")x"
row "TCP round trip, autofw set of $ENTRIES:" "${rtt_autofw} us"
row "TCP round trip, chain of $ENTRIES rules:" "${rtt_chain} us"
