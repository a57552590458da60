//! A KVM host's network as libvirt leaves it: the `virbr0` bridge, libvirt's
//! iptables chains (`LIBVIRT_INP`, `LIBVIRT_FWO`, ... as libvirt's iptables
//! backend writes them), and Debian's real dnsmasq started as libvirt starts
//! it (`bind-dynamic`, `interface=virbr0`, a DHCP range), so that autofw's
//! proposal holds the address- and device-scoped rules (`ip daddr
//! VIRBR0_V4`, `iifname "virbr0" ip6 daddr fe80::...`) a real KVM host gets.
//! The bridge's network is a documentation range, not libvirt's
//! 192.168.122.0/24.

use super::*;
use std::time::Duration;

/// virbr0's address (libvirt's default would be 192.168.122.1).
pub const VIRBR0_V4: &str = "198.51.100.1";

/// libvirt's chains, as `iptables-save` shows them on a host with the
/// default network (libvirt 9, iptables backend), for `iptables-restore
/// --noflush`.
pub const LIBVIRT_CHAINS: &str = "\
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
";

/// The bridge, libvirt's chains and its dnsmasq in `ns` (which routes, as
/// a KVM host does). dnsmasq runs as root (`user=root`): whom a daemon
/// that drops privileges is trusted as is not this module's question. It
/// runs until the returned value is dropped.
pub fn start_libvirt_network(ns: &Netns) -> Daemon {
    ns.ok(&["ip", "link", "add", "virbr0", "type", "bridge"]);
    ns.bring_up("virbr0", &[&format!("{VIRBR0_V4}/24")]);
    ns.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let restore = ns
        .command("iptables-restore")
        .arg("--noflush")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    write_stdin_and_wait(restore, LIBVIRT_CHAINS);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("default.conf"),
        format!(
            "strict-order\nuser=root\npid-file={d}/default.pid\nexcept-interface=lo\n\
             bind-dynamic\ninterface=virbr0\ndhcp-range=198.51.100.2,198.51.100.254,255.255.255.0\n\
             dhcp-no-override\ndhcp-authoritative\ndhcp-lease-max=253\n\
             dhcp-leasefile={d}/default.leases\nno-resolv\nno-hosts\n"
        ),
    )
    .unwrap();
    let argv = [
        "dnsmasq".to_string(),
        "--keep-in-foreground".into(),
        "--log-facility=-".into(),
        format!("--conf-file={d}/default.conf"),
    ];
    let mut dnsmasq = Daemon::spawn(ns, dir, &argv);
    dnsmasq.wait_ready(
        "listen on virbr0's address",
        Duration::from_secs(10),
        || tcp_listening_on(ns, &[&format!("{VIRBR0_V4}:53")]),
    );
    dnsmasq
}

fn write_stdin_and_wait(mut child: std::process::Child, input: &str) {
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "iptables-restore of libvirt's chains failed"
    );
}
