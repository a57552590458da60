#!/usr/bin/env bash
# Install what the tests need, then run them all: README's test command, and
# exactly what CI runs (.ci/run calls this). On a fresh Debian 12 machine, as
# root, with a Rust toolchain (cargo) on PATH.
#
#   1. the Debian packages below (the one list: add new test tools here);
#   2. .ci/purity: the files docs/design.md marks pure touch no host;
#   3. cargo test --locked: unit tests, and the namespace tests, which need
#      root and run for real (they never skip here);
#   4. tests/package.sh: builds the .deb, installs it on this machine, uses
#      it, removes and purges it, and checks nothing else changed.
#
# The host's own firewall is never touched: every rule is loaded inside a
# network namespace a test created. That is checked before and after.
set -euo pipefail
cd "$(dirname "$0")"

if [[ $(id -u) != 0 ]]; then
  echo "./test.sh installs Debian packages and runs namespace tests: run it as root" >&2
  exit 1
fi

# What the tests drive:
#   iproute2 (ip netns, veth), nftables and iptables (the kernel's own checks
#   of every proposal), ipset (the iptables blocklist), python3
#   (tests/support/listen.py), dnsutils, iputils-ping, bash, socat: probes;
#   procps and net-tools (ss and netstat, compared with scan);
#   openssh-server/-client (the real-SSH apply and acceptance tests);
#   time, coreutils, util-linux (unshare); prometheus (promtool check
#   metrics); man-db, bash-completion and dpkg-dev (the package test: man -w,
#   completion, and cargo-deb's shared-library dependencies; systemd for
#   systemd-analyze verify of the shipped units). python3-venv
#   (tests/fleet.rs installs ansible-core from PyPI into a virtualenv);
#   faketime (tests/window.rs steps the wall clock of autofw only);
#   rpcbind and prometheus-node-exporter: the real daemons of issue 8's host
#   (tests/trust.rs; the package also creates the `prometheus` system
#   account the exporter runs as); docker.io and busybox-static
#   (tests/docker.rs: a real dockerd in a namespace, with a busybox image
#   imported from a tarball); fail2ban (tests/support/fail2ban.rs: a real
#   fail2ban-server bans in a namespace, whose rules apply must keep); nginx
#   (tests/support/nginx.rs: the web server of the apply, status, forwarded
#   and fleet hosts; Debian 12's nginx-light is only a transitional package
#   that pulls nginx and a module in); samba (tests/support/smbd.rs: the
#   real smbd of issue 8's host in tests/trust.rs); redis-server
#   (tests/support/redis.rs: the cache of the forwarded, status and apply
#   tests, as user redis); postgresql (tests/support/postgres.rs: the
#   database of the fleet's db1 and of status, initdb'd in a temporary
#   directory and run as user postgres); openvpn (tests/support/openvpn.rs:
#   a server that drops to `user nobody` after root created its port, whose
#   port must stay open, in tests/trust.rs); podman and netavark
#   (tests/podman.rs: Debian 12's rootful podman with netavark's iptables
#   driver in a namespace, whose published ports the iptables backend must
#   govern although its FORWARD never jumps to DOCKER-USER); dnsmasq-base
#   (tests/support/dnsmasq.rs: dnsmasq as libvirt starts it, DHCP bound to
#   a bridge as 0.0.0.0%virbr0:67, in tests/device.rs; the -base package
#   ships no service to start). gcc: the linker cargo calls, and GCC's
#   static unwinder libgcc_eh.a, which src/main.rs links (a Rust toolchain
#   needs a C linker anyway; this names the one the build relies on).
PACKAGES=(
  iproute2 nftables iptables ipset python3 dnsutils iputils-ping bash procps
  net-tools socat openssh-server openssh-client time coreutils util-linux
  prometheus man-db bash-completion dpkg-dev systemd python3-venv faketime
  rpcbind prometheus-node-exporter docker.io busybox-static fail2ban
  nginx samba redis-server postgresql openvpn podman netavark dnsmasq-base gcc
  # podman's other network stack (tests/podman.rs runs it with
  # --network-backend cni): with netavark installed, podman's dependency on
  # container-network-stack does not pull it in
  containernetworking-plugins
)

export DEBIAN_FRONTEND=noninteractive
# The daemons above are for the tests to start inside namespaces; installing
# them must not start them on this machine (a host dockerd would write its
# own rules into the host's firewall). Debian's maintainer scripts ask
# policy-rc.d first: forbid starts for the install, unless the machine
# already has a policy of its own.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\n# ./test.sh: no service starts while it installs packages\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
if [[ -n $(trap -p EXIT) ]]; then
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi

host_rules_before=$(nft list ruleset)

# Pure modules touch no host (docs/design.md, the rule of the house).
bash .ci/purity
cargo test --locked
tests/package.sh

if [[ $(nft list ruleset) != "$host_rules_before" ]]; then
  echo "the host's own ruleset changed during the tests" >&2
  exit 1
fi
