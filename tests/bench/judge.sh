#!/usr/bin/env bash
# Benchmark of the other-filters judge (docs/foreign.md) on a KVM host as
# libvirt leaves it, with Docker's chains and a real fail2ban beside:
#
#   virbr0 (198.51.100.1/24, a documentation range for libvirt's
#   192.168.122.0/24), libvirt's iptables chains (LIBVIRT_INP, _OUT, _FWO,
#   _FWI, _FWX, nat LIBVIRT_PRT) and Debian's real dnsmasq started as
#   libvirt starts it (bind-dynamic, interface=virbr0, a DHCP range), so
#   autofw's proposal holds `ip daddr 198.51.100.1` and `iifname "virbr0"`
#   rules for DNS; Docker's chains (DOCKER, DOCKER-USER, the nat DOCKER
#   jump); a real fail2ban-server with one jail on its iptables action and
#   one on its nftables action, each having banned an address; socat as a
#   public ssh (22) and http (80).
#
# Timed, RUNS times each (the median and the slowest printed):
#   propose                 `autofw propose` (live scan, judged)
#   apply (dry run)         `autofw apply --json`
#   status (judging)        `autofw status --json` with the cached verdict
#                           removed first: the judge runs (the applied
#                           rules' kept listing stays)
#   status (cached)         `autofw status --json` with nothing changed
#                           since the last: the verdict from the state dir
# against the goals of issue 20 (0.3 s, 0.3 s, 0.3 s, 0.1 s). With OLD=PATH
# (an autofw built before this work, e.g. from f0d87af), the same with it,
# and the ratios old / new. The verdict's origin is read from `--json` to
# check that what is timed is what it says.
#
# Usage (as root, from the repository): tests/bench/judge.sh
# Env: RUNS (7), AUTOFW (default: a release build, built if missing), OLD.
# Only the namespace this script creates is touched; it and every process in
# it are removed on exit. No packet leaves it.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-7}
if [[ -z ${AUTOFW:-} ]]; then
  cargo build --release --quiet
  AUTOFW=target/release/autofw
fi
AUTOFW=$(realpath "$AUTOFW")
[[ -n ${OLD:-} ]] && OLD=$(realpath "$OLD")
[[ $EUID == 0 ]] || { echo "judge.sh: run as root (it creates a network namespace)" >&2; exit 1; }
for tool in ip dnsmasq fail2ban-server socat iptables-restore nft python3; do
  command -v "$tool" >/dev/null || { echo "judge.sh: needs $tool" >&2; exit 1; }
done

NS=afw-bench-judge-$$
WORK=$(mktemp -d)
cleanup() {
  local pids
  pids=$(ip netns pids "$NS" 2>/dev/null || true)
  # shellcheck disable=SC2086 # one pid per word
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
# The uplink, as the tests' hosts have it.
in_ns ip link add eth0 type veth peer name uplink-peer
in_ns ip link set uplink-peer up
in_ns ip addr add 192.0.2.1/24 dev eth0
in_ns ip link set eth0 up
in_ns sysctl -qw net.ipv4.ip_forward=1

# libvirt: the bridge, its chains, its dnsmasq.
in_ns ip link add virbr0 type bridge
in_ns ip addr add 198.51.100.1/24 dev virbr0
in_ns ip link set virbr0 up
in_ns iptables-restore --noflush <<'EOF'
*filter
:LIBVIRT_INP - [0:0]
:LIBVIRT_OUT - [0:0]
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWX - [0:0]
-A INPUT -j LIBVIRT_INP
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A FORWARD -j LIBVIRT_FWO
-A OUTPUT -j LIBVIRT_OUT
-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 53 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 67 -j ACCEPT
-A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 67 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p tcp -m tcp --dport 53 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 68 -j ACCEPT
-A LIBVIRT_OUT -o virbr0 -p tcp -m tcp --dport 68 -j ACCEPT
-A LIBVIRT_FWO -s 198.51.100.0/24 -i virbr0 -j ACCEPT
-A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWI -d 198.51.100.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable
-A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
COMMIT
*nat
:LIBVIRT_PRT - [0:0]
-A POSTROUTING -j LIBVIRT_PRT
-A LIBVIRT_PRT -s 198.51.100.0/24 -d 224.0.0.0/24 -j RETURN
-A LIBVIRT_PRT -s 198.51.100.0/24 -d 255.255.255.255/32 -j RETURN
-A LIBVIRT_PRT -s 198.51.100.0/24 ! -d 198.51.100.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535
-A LIBVIRT_PRT -s 198.51.100.0/24 ! -d 198.51.100.0/24 -p udp -j MASQUERADE --to-ports 1024-65535
-A LIBVIRT_PRT -s 198.51.100.0/24 ! -d 198.51.100.0/24 -j MASQUERADE
COMMIT
EOF
cat >"$WORK/default.conf" <<EOF
strict-order
user=root
pid-file=$WORK/default.pid
except-interface=lo
bind-dynamic
interface=virbr0
dhcp-range=198.51.100.2,198.51.100.254,255.255.255.0
dhcp-no-override
dhcp-authoritative
dhcp-lease-max=253
dhcp-leasefile=$WORK/default.leases
no-resolv
no-hosts
EOF
ip netns exec "$NS" dnsmasq --keep-in-foreground --log-facility="$WORK/dnsmasq.log" --conf-file="$WORK/default.conf" &
disown

# Docker's chains, as dockerd makes them with iptables-nft.
in_ns iptables -N DOCKER
in_ns iptables -N DOCKER-USER
in_ns iptables -A DOCKER-USER -j RETURN
in_ns iptables -A FORWARD -j DOCKER-USER
in_ns iptables -t nat -N DOCKER
in_ns iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER

# fail2ban, as tests/support/fail2ban.rs starts it.
F2B=$WORK/fail2ban
mkdir "$F2B"
ln -s /etc/fail2ban/action.d "$F2B/action.d"
ln -s /etc/fail2ban/filter.d "$F2B/filter.d"
printf '[Definition]\nloglevel = INFO\nlogtarget = %s\nsyslogsocket = auto\nallowipv6 = auto\nsocket = %s\npidfile = %s\ndbfile = :memory:\ndbpurgeage = 1d\n' \
  "$F2B/fail2ban.log" "$F2B/fail2ban.sock" "$F2B/fail2ban.pid" >"$F2B/fail2ban.conf"
printf '[DEFAULT]\nbackend = polling\nusedns = no\nbantime = 1d\nfindtime = 1h\nmaxretry = 2\n\n[sshd]\nenabled = true\nfilter = sshd\nlogpath = %s\naction = iptables-multiport[name=sshd, port=22, protocol=tcp]\n\n[nginx-http-auth]\nenabled = true\nfilter = nginx-http-auth\nlogpath = %s\naction = nftables-multiport[name=nginx-http-auth, port=80, protocol=tcp]\n' \
  "$F2B/auth.log" "$F2B/nginx-error.log" >"$F2B/jail.conf"
for i in 1 2; do
  echo "$(date +%Y-%m-%dT%H:%M:%S.%6N%:z) server sshd[4242]: Failed password for root from 203.0.113.7 port 5002$i ssh2" >>"$F2B/auth.log"
  echo "$(date '+%Y/%m/%d %H:%M:%S') [error] 4243#4243: *$i user \"admin\": password mismatch, client: 198.51.100.9, server: _, request: \"GET / HTTP/1.1\", host: \"192.0.2.1\"" >>"$F2B/nginx-error.log"
done
ip netns exec "$NS" fail2ban-server -f -x -c "$F2B" -s "$F2B/fail2ban.sock" -p "$F2B/fail2ban.pid" >/dev/null 2>&1 &
disown

# Public services.
ip netns exec "$NS" socat TCP6-LISTEN:22,fork,reuseaddr,ipv6only=0 EXEC:/bin/true &
disown
ip netns exec "$NS" socat TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0 EXEC:/bin/true &
disown

ready() {
  in_ns ss -Htln | grep -q '198.51.100.1:53' \
    && in_ns iptables -S f2b-sshd 2>/dev/null | grep -q 203.0.113.7 \
    && in_ns nft list set inet f2b-table addr-set-nginx-http-auth 2>/dev/null | grep -q 198.51.100.9 \
    && in_ns ss -Htln | grep -q ':80 '
}
for _ in $(seq 300); do ready && break; sleep 0.1; done
ready || { echo "judge.sh: the host did not come up (dnsmasq, fail2ban, socat)" >&2; exit 1; }

now() { date +%s%N; }
# time_of LABEL CMD...: RUNS timings in ms, one line "median max".
time_of() {
  local i t0 t1 all=()
  for i in $(seq "$RUNS"); do
    [[ -n ${BEFORE:-} ]] && eval "$BEFORE"
    t0=$(now)
    "$@" >"$WORK/out" 2>"$WORK/err" || [[ $? == 1 ]] || { cat "$WORK/err" >&2; exit 1; }
    t1=$(now)
    all+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${all[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[NR]}'
}
origin() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("other_filters", {}).get("verdict", "-"))' "$WORK/out"; }

# bench BINARY TAG: sets propose_TAG, apply_TAG, status_TAG, cached_TAG
bench() {
  local bin=$1 tag=$2 state=$WORK/state-$2 r
  r=$(time_of in_ns "$bin" propose); eval "propose_$tag='$r'"
  r=$(time_of in_ns "$bin" apply --json --state-dir "$state"); eval "apply_$tag='$r'"
  [[ $tag == new ]] && apply_origin=$(origin)
  in_ns "$bin" apply --confirm --yes --no-wait --state-dir "$state" >/dev/null 2>&1
  in_ns "$bin" confirm --state-dir "$state" >/dev/null
  r=$(BEFORE="rm -f '$state/other-filters.json'" time_of in_ns "$bin" status --json --state-dir "$state")
  eval "status_$tag='$r'"
  [[ $tag == new ]] && status_origin=$(origin)
  in_ns "$bin" status --json --state-dir "$state" >/dev/null || true
  r=$(time_of in_ns "$bin" status --json --state-dir "$state"); eval "cached_$tag='$r'"
  [[ $tag == new ]] && cached_origin=$(origin)
  # The next binary starts from no autofw table.
  in_ns nft delete table inet autofw 2>/dev/null || true
}
bench "$AUTOFW" new
[[ -n ${OLD:-} ]] && bench "$OLD" old

ms_to_s() { python3 -c "print(f'{$1 / 1000:.3f}')"; }
row() { # LABEL MEDIAN_MAX GOAL_S [OLD_MEDIAN_MAX] [ORIGIN]
  local med=${2% *} max=${2#* } line
  line=$(printf '%-22s %s s (slowest %s s)  goal <= %s s: %s' "$1" "$(ms_to_s "$med")" \
    "$(ms_to_s "$max")" "$3" "$(python3 -c "print('met' if $med <= $3 * 1000 else 'NOT met')")")
  [[ -n ${5:-} ]] && line+="  [verdict: $5]"
  if [[ -n ${4:-} ]]; then
    local old=${4% *}
    line+=$(printf '  | before: %s s, %sx faster' "$(ms_to_s "$old")" \
      "$(python3 -c "print(f'{$old / max($med, 1):.1f}')")")
  fi
  echo "$line"
}
echo "KVM host (libvirt's chains, dnsmasq on virbr0), Docker's chains, fail2ban; $RUNS runs each, median:"
row "propose" "$propose_new" 0.3 "${propose_old:-}"
row "apply (dry run)" "$apply_new" 0.3 "${apply_old:-}" "$apply_origin"
row "status (judging)" "$status_new" 0.3 "${status_old:-}" "$status_origin"
row "status (unchanged)" "$cached_new" 0.1 "${cached_old:-}" "$cached_origin"
