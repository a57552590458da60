//! Sockets bound to a device: a KVM host as libvirt leaves it, with the real
//! dnsmasq serving DHCP on its bridge as `0.0.0.0%virbr0:67`. scan names the
//! device, propose opens 67/udp on that bridge only, and after apply a
//! guest on the bridge still gets its lease while 67/udp from the public
//! link is dropped by autofw's own drop rule (its counter moves), in both
//! families and on both backends.

use crate::support::*;
use std::time::Duration;

/// Datagrams sent to 67/udp from the public side, per family: the drop
/// counter must move by at least this many (stray packets could move it by
/// one or two, never by this many in the moment it takes).
const SENT: u64 = 20;

/// The server (a bridge `virbr0` with 192.0.2.1/24 and a guest's veth on
/// it; a public link `eth0` with 203.0.113.1/24 and 2001:db8::1/64), the
/// guest, and a neighbour on the public link (203.0.113.2, 2001:db8::2).
struct KvmHost {
    /// Stopped (by pid) before its namespace goes: fields drop in order.
    dnsmasq: Daemon,
    server: Netns,
    guest: Netns,
    public: Netns,
    dir: tempfile::TempDir,
}

impl KvmHost {
    fn new(tag: &str) -> KvmHost {
        let server = Netns::new(&format!("{tag}-s"));
        let guest = Netns::new(&format!("{tag}-g"));
        let public = Netns::new(&format!("{tag}-p"));
        server.ok(&["ip", "link", "add", "virbr0", "type", "bridge"]);
        server.bring_up("virbr0", &["192.0.2.1/24"]);
        veth(&server, "vnet0", &guest, "eth0");
        server.ok(&["ip", "link", "set", "vnet0", "master", "virbr0"]);
        server.bring_up("vnet0", &[]);
        guest.bring_up("eth0", &[]);
        veth(&server, "eth0", &public, "eth0");
        server.bring_up("eth0", &["203.0.113.1/24", "2001:db8::1/64"]);
        public.bring_up("eth0", &["203.0.113.2/24", "2001:db8::2/64"]);
        let dnsmasq = start_dnsmasq(&server, "virbr0", "192.0.2.100,192.0.2.200");
        KvmHost {
            dnsmasq,
            server,
            guest,
            public,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> String {
        self.dir.path().join("state").display().to_string()
    }

    /// Does the guest get a lease (busybox udhcpc, at most 8 tries)? The
    /// script does not configure the address: the lease is what counts.
    fn guest_gets_a_lease(&self) -> bool {
        let out = self.guest.run(&[
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-f",
            "-q",
            "-n",
            "-t",
            "8",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ]);
        out.status.success() && String::from_utf8_lossy(&out.stderr).contains("obtained")
    }

    /// Send [`SENT`] datagrams to 67/udp at `address` from the public side.
    fn send_to_dhcp(&self, address: &str) {
        let script = format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET6 if ':' in '{address}' else socket.AF_INET, socket.SOCK_DGRAM)\n\
             for _ in range({SENT}):\n    s.sendto(b'DHCPDISCOVER?', ('{address}', 67))\n"
        );
        self.public.ok(&["python3", "-c", &script]);
    }
}

/// The packets counted by the rule commented `drop` (autofw's final drop)
/// in `family` (4 or 6; one inet table holds both for nft).
fn drop_count(server: &Netns, backend: &str, family: u8) -> u64 {
    match backend {
        "nft" => {
            let ruleset = server.ok(&["nft", "list", "ruleset"]);
            let line = ruleset
                .lines()
                .find(|l| l.contains("drop comment \"drop\""))
                .unwrap_or_else(|| panic!("no drop rule in:\n{ruleset}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "packets").unwrap();
            words[at + 1].parse().unwrap()
        }
        _ => {
            let save = if family == 4 {
                "iptables-save"
            } else {
                "ip6tables-save"
            };
            let rules = server.ok(&[save, "-c"]);
            let line = rules
                .lines()
                .find(|l| l.ends_with("-A AUTOFW-INPUT -m comment --comment drop -j DROP"))
                .unwrap_or_else(|| panic!("no drop rule in:\n{rules}"));
            // `[PACKETS:BYTES] -A ...`
            line.trim_start_matches('[')
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        }
    }
}

fn dnsmasq_on_a_bridge(backend: &str) {
    let host = KvmHost::new(&format!("dev-{backend}"));
    let server = &host.server;

    // scan: the device, in the table and the JSON, and not public.
    let table = stdout_of(&server.autofw(&["scan"]));
    let dhcp = table
        .lines()
        .find(|l| l.contains(" 67 "))
        .unwrap_or_else(|| panic!("no 67/udp in:\n{table}"));
    assert!(dhcp.contains("0.0.0.0%virbr0"), "{table}");
    assert!(dhcp.contains("private"), "{table}");
    let json = json_of(&server.autofw(&["scan", "--json"]));
    let listener = json["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == 67)
        .unwrap();
    assert_eq!(listener["device"], "virbr0", "{listener}");
    assert_eq!(listener["exposure"], "private", "{listener}");
    assert_eq!(listener["process"], "dnsmasq", "{listener}");

    // propose: 67/udp on the bridge only.
    let proposed = stdout_of(&server.autofw(&["propose", "--format", backend]));
    let rule = match backend {
        "nft" => "iifname \"virbr0\" udp dport 67 accept",
        _ => "-A AUTOFW-INPUT -i \"virbr0\" -p udp --dport 67 ",
    };
    assert!(proposed.contains(rule), "{proposed}");
    assert!(
        !proposed.contains("\tudp dport 67 accept")
            && !proposed.contains("INPUT -p udp --dport 67"),
        "67/udp opened on every interface:\n{proposed}"
    );

    // The guest gets its lease before and after the rules are applied.
    assert!(host.guest_gets_a_lease(), "no lease before apply");
    apply_confirmed(server, &host.state(), &["--backend", backend], &[]);
    let leases_before = dnsmasq_leases(&host.dnsmasq).lines().count();
    assert!(
        host.guest_gets_a_lease(),
        "no lease through autofw's rules; dnsmasq's log:\n{}",
        host.dnsmasq.log()
    );
    assert!(dnsmasq_leases(&host.dnsmasq).lines().count() >= leases_before.max(1));

    // 67/udp from the public link: autofw's drop rule takes it, each family.
    for (family, address) in [(4, "203.0.113.1"), (6, "2001:db8::1")] {
        let before = drop_count(server, backend, family);
        host.send_to_dhcp(address);
        let counted = wait_until(Duration::from_secs(2), || {
            drop_count(server, backend, family) >= before + SENT
        });
        assert!(
            counted,
            "67/udp to {address} from the public link was not dropped by autofw (drop counter {before} -> {}):\n{}",
            drop_count(server, backend, family),
            server.ok(&["nft", "list", "ruleset"])
        );
    }

    // status: as applied, no listener finding for 67/udp.
    let status = server.autofw(&["status", "--json", "--state-dir", &host.state()]);
    let status = json_of(&status);
    let dhcp_findings: Vec<_> = status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["port"] == 67)
        .collect();
    assert!(dhcp_findings.is_empty(), "{status}");
}

#[test]
fn dnsmasq_on_a_bridge_nft() {
    if !require_root() {
        return;
    }
    dnsmasq_on_a_bridge("nft");
}

#[test]
fn dnsmasq_on_a_bridge_iptables() {
    if !require_root() {
        return;
    }
    dnsmasq_on_a_bridge("iptables");
}
