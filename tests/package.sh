#!/usr/bin/env bash
# The Debian package on this very machine (run by ./test.sh, as root): build
# it, `apt-get install ./autofw_*.deb`, use it as an operator would (version,
# man pages, bash completion, a persisted apply whose rules load only inside
# a namespace this script creates), then remove and purge it, and check that
# the machine is exactly as before: same files under /etc /usr /lib /var/lib
# (and same contents in /etc), and the host's firewall untouched throughout:
# the maintainer scripts never run autofw, never load or flush rules.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package test: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "needs root (it installs the package on this machine)"
# One package test per machine at a time: two would install and purge the
# same package under each other (worktrees running ./test.sh side by side).
exec 9>/run/lock/autofw-package-test.lock
flock 9
if dpkg -s autofw >/dev/null 2>&1; then
  fail "autofw is already installed here; remove it first (this test must leave the machine as it found it)"
fi

ns=afw-pkg-$$
work=$(mktemp -d)
cleanup() {
  # Whatever happened: no package, no namespace, no boot hook left behind.
  if dpkg -s autofw >/dev/null 2>&1; then apt-get -o DPkg::Lock::Timeout=600 purge -y -qq autofw >/dev/null 2>&1 || true; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# What must not change. dpkg's and apt's own records, caches and logs do.
snapshot() {
  echo "== nft"; nft list ruleset
  echo "== iptables"; iptables-save | grep -v '^#' || true
  echo "== ip6tables"; ip6tables-save | grep -v '^#' || true
  echo "== ipsets"; ipset list -n 2>/dev/null || true
  echo "== files"
  find /etc /usr /lib /var/lib /opt /srv \
    \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/ucf \) -prune \
    -o -printf '%p %y %m %l\n' | sort
  echo "== /etc contents"
  find /etc -type f ! -name ld.so.cache -exec md5sum {} + | sort -k2
}
host_firewall() { nft list ruleset; iptables-save | grep -v '^#' || true; ip6tables-save | grep -v '^#' || true; }

echo "package test: building the package"
./pkg/build-deb >/dev/null
deb=$(ls target/debian/autofw_*.deb | tail -n1)

# The maintainer scripts, read before anything runs: no line of code calls
# autofw (postrm runs after the binary is gone) or a firewall tool.
dpkg-deb -e "$deb" "$work/control"
for script in "$work"/control/{preinst,postinst,prerm,postrm}; do
  [[ -e $script ]] || continue
  if grep -vE '^\s*#' "$script" \
    | grep -nE '(^|[;&|(]|then|do|else)\s*(/usr/s?bin/)?(autofw|nft|iptables[a-z-]*|ip6tables[a-z-]*|ipset)(\s|$)'; then
    fail "$(basename "$script") runs autofw or a firewall tool (the lines above)"
  fi
done

snapshot >"$work/before"
firewall_before=$(host_firewall)

echo "package test: apt-get install ./$deb"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "./$deb" >/dev/null
[[ $(host_firewall) == "$firewall_before" ]] || fail "installing changed the host's firewall"

# The binary, from PATH, and no Rust toolchain needed to run it.
[[ $(command -v autofw) == /usr/sbin/autofw ]] || PATH=/usr/sbin:$PATH
version=$(/usr/sbin/autofw --version)
[[ $version == "autofw "* ]] || fail "autofw --version said: $version"
# What an operator runs first, with no Rust toolchain needed: scan reads only.
/usr/sbin/autofw scan --all >"$work/scan.out" 2>&1 || fail "autofw scan failed: $(cat "$work/scan.out")"

# Man pages: the command and each subcommand, with the sections promised.
for page in autofw autofw-apply autofw-status autofw-log; do
  path=$(man -w "$page") || fail "man -w $page found nothing"
  [[ $path == /usr/share/man/man8/$page.8.gz ]] || fail "man -w $page: $path"
done
apply_page=$(MANPAGER=cat MANWIDTH=100 man autofw-apply 2>/dev/null)
for section in SYNOPSIS OPTIONS "EXIT STATUS" FILES EXAMPLES; do
  grep -q "^$section" <<<"$apply_page" || fail "autofw-apply(8) has no $section section"
done

# bash completion as bash-completion loads it on demand, for `autofw <TAB>`
# and `autofw status --format <TAB>`.
complete_words() {
  bash --norc --noprofile -c '
    source /usr/share/bash-completion/bash_completion
    _completion_loader autofw
    complete -p autofw >/dev/null || exit 3
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    fn=$(complete -p autofw | sed -n "s/.*-F \([^ ]*\).*/\1/p")
    "$fn" autofw "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' bash "$@"
}
expect_completion() {
  local want=$1 got
  shift
  got=$(complete_words "$@" 2>&1) || true
  grep -qx -- "$want" <<<"$got" \
    || fail "bash completion of '$* <TAB>' does not offer $want; it offered: $(tr '\n' ' ' <<<"$got")"
}
expect_completion apply autofw ""
expect_completion apply autofw ap
expect_completion prometheus autofw status --format ""

# What the package ships for systemd: disabled, and never running autofw at boot.
for unit in autofw.service autofw-iptables.service autofw-status.service autofw-status.timer; do
  [[ -f /lib/systemd/system/$unit ]] || fail "$unit not shipped"
  if compgen -G "/etc/systemd/system/*.wants/$unit" >/dev/null; then
    fail "$unit was enabled by installing the package"
  fi
done
# The programs the boot hooks run (each ExecStart's first word, and what
# find -exec runs): none is autofw.
hooks=(/lib/systemd/system/autofw.service /lib/systemd/system/autofw-iptables.service)
programs=$(sed -nE 's/^ExecStart=[-@:+!]*"?([^" ]+)"?.*/\1/p' "${hooks[@]}"
  sed -nE 's/^ExecStart=.* -exec "?([^" ]+)"? .*/\1/p' "${hooks[@]}")
[[ -n $programs ]] || fail "no ExecStart in the boot hooks"
if grep -qE '(^|/)autofw$' <<<"$programs"; then
  fail "the boot hook runs autofw: $(tr '\n' ' ' <<<"$programs")"
fi
[[ $(stat -c %a /var/lib/autofw) == 700 ]] || fail "/var/lib/autofw is not 0700"
# systemd's own check of the shipped units (it works without systemd running).
if ! verify=$(systemd-analyze verify --man=no /lib/systemd/system/autofw.service \
  /lib/systemd/system/autofw-iptables.service /lib/systemd/system/autofw-status.service \
  /lib/systemd/system/autofw-status.timer 2>&1) || [[ -n $verify ]]; then
  fail "systemd-analyze verify: $verify"
fi

# An operator's persisted apply, its rules loaded only in our namespace: the
# boot files land on this machine's /etc, for purge to remove.
ip netns add "$ns"
ip -n "$ns" link set lo up
cat >"$work/scan.json" <<'EOF'
{"listeners": [
  {"proto": "tcp", "address": "0.0.0.0", "port": 22, "exposure": "public",
   "service": "ssh", "process": "sshd", "pids": [1], "risky": false}],
 "unreadable_processes": 0}
EOF
sleep 120 | ip netns exec "$ns" autofw apply --confirm --yes --force --persist \
  --timeout 60 --from "$work/scan.json" --blocklist 198.51.100.7 >"$work/apply.out" 2>&1 &
apply=$!
for _ in $(seq 100); do
  [[ -e /var/lib/autofw/window.json ]] && ip netns exec "$ns" nft list tables | grep -q autofw && break
  sleep 0.1
done
sleep 0.3
ip netns exec "$ns" autofw confirm >"$work/confirm.out" 2>&1 || { cat "$work"/*.out; fail "confirm failed"; }
wait "$apply" || { cat "$work"/*.out; fail "apply did not keep the rules"; }
[[ -f /etc/autofw/rules.nft ]] || fail "apply --persist wrote no /etc/autofw/rules.nft"
[[ -f /etc/autofw/blocklist-0001.nft ]] || fail "apply --persist wrote no blocklist batch file"
if [[ -d /run/systemd/system ]]; then
  [[ $(readlink /etc/systemd/system/sysinit.target.wants/autofw.service) == /lib/systemd/system/autofw.service ]] \
    || fail "apply did not enable the packaged unit"
  [[ ! -e /etc/systemd/system/autofw.service ]] || fail "apply wrote a unit the package ships"
else
  grep -q '^/usr/sbin/nft -f /etc/autofw/rules.nft' /etc/network/if-pre-up.d/autofw \
    || fail "no ifupdown hook loading /etc/autofw/rules.nft"
fi
[[ $(host_firewall) == "$firewall_before" ]] || fail "the host's firewall changed (apply ran in a namespace)"
echo "# the operator's policy" >/etc/autofw/policy.toml

echo "package test: apt-get remove, then purge"
apt-get -o DPkg::Lock::Timeout=600 remove -y -qq autofw >/dev/null
[[ ! -e /usr/sbin/autofw ]] || fail "remove left the binary"
[[ -f /etc/autofw/rules.nft && -d /var/lib/autofw ]] || fail "remove (not purge) deleted the boot rules or state"
[[ $(host_firewall) == "$firewall_before" ]] || fail "removing changed the host's firewall"
ip netns exec "$ns" nft list table inet autofw >/dev/null || fail "removing unloaded the rules"

apt-get -o DPkg::Lock::Timeout=600 purge -y -qq autofw >/dev/null
[[ $(host_firewall) == "$firewall_before" ]] || fail "purging changed the host's firewall"
[[ $(cat /etc/autofw/policy.toml) == "# the operator's policy" ]] || fail "purge removed the operator's policy"
[[ ! -e /etc/autofw/blocklist-0001.nft ]] || fail "purge left the persisted blocklist batch file"
rm /etc/autofw/policy.toml
rmdir /etc/autofw
ip netns del "$ns"

snapshot >"$work/after"
if ! diff -u "$work/before" "$work/after" >"$work/diff"; then
  cat "$work/diff" >&2
  fail "install, apply --persist, remove and purge left the machine changed (diff above)"
fi
echo "package test: ok ($deb: installed, used, removed, purged; nothing else changed)"
