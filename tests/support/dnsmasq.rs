//! dnsmasq as libvirt starts it for a virtual network: `bind-dynamic` on
//! one bridge, a DHCP range, the lease file and pid file in a temporary
//! directory, as the system account `dnsmasq` (libvirt's own account on
//! Debian is `libvirt-dnsmasq`; Debian's dnsmasq-base makes `dnsmasq`).
//! It binds DHCP to the bridge (`0.0.0.0%BRIDGE:67`, `SO_BINDTODEVICE`) and
//! DNS to the bridge's addresses.

use super::*;
use std::time::Duration;

/// Start dnsmasq in `ns` serving `bridge` with leases from `range`
/// (`192.0.2.100,192.0.2.200`), and wait until its DHCP socket is bound.
pub fn start_dnsmasq(ns: &Netns, bridge: &str, range: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut dnsmasq = Daemon::spawn(
        ns,
        dir,
        &[
            "/usr/sbin/dnsmasq",
            // Nothing from /etc/dnsmasq.conf or /etc/dnsmasq.d.
            "--conf-file=/dev/null",
            "--keep-in-foreground",
            "--log-facility=-",
            "--user=dnsmasq",
            "--strict-order",
            &format!("--pid-file={d}/dnsmasq.pid"),
            "--except-interface=lo",
            "--bind-dynamic",
            &format!("--interface={bridge}"),
            &format!("--dhcp-range={range},255.255.255.0"),
            "--dhcp-no-override",
            "--dhcp-authoritative",
            &format!("--dhcp-leasefile={d}/dnsmasq.leases"),
        ],
    );
    let bound = format!("%{bridge}:67 ");
    dnsmasq.wait_ready(
        &format!("bind DHCP to {bridge}"),
        Duration::from_secs(10),
        || {
            let out = ns.run(&["ss", "-Hlun"]);
            String::from_utf8_lossy(&out.stdout).contains(&bound)
        },
    );
    dnsmasq
}

/// The leases dnsmasq has given: its lease file's lines
/// (`EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID`).
pub fn dnsmasq_leases(dnsmasq: &Daemon) -> String {
    std::fs::read_to_string(dnsmasq.dir().join("dnsmasq.leases")).unwrap_or_default()
}
