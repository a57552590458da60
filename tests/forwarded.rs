//! Forwarded (DNAT) ports, issue 9, without Docker: a router namespace that
//! forwards 8080 and 6379 with a hand-written nft `dnat to` to a guest behind
//! a bridge (`br-guest`, a routing bridge by name), a client on the public
//! link. scan must list the forwarded ports, apply must govern them like
//! listeners (the published-ports guard in the forward hook), status must
//! report a port forwarded after apply, and rollback must leave the nat
//! table as it was. Docker itself is in `docker.rs`.

use crate::support::*;
use std::io::Write;
use std::process::{Output, Stdio};

/// The guest's address behind the router's bridge.
pub const GUEST_V4: &str = "10.88.0.2";

/// A router (`server`, the host autofw runs on), a guest behind its bridge,
/// and a client on the public link.
pub struct Routed {
    /// The guest's web server (a real nginx on 80) and cache (a real
    /// redis-server on 6379), first: they stop before their namespace goes.
    _nginx: Daemon,
    _redis: Daemon,
    pub server: Netns,
    pub client: Netns,
    pub guest: Netns,
    pub dir: tempfile::TempDir,
}

impl Routed {
    /// Link the namespaces; the guest listens on 80 (nginx) and 6379, the client on
    /// 9000 (standing in for a host on the internet), the router forwards.
    pub fn new(tag: &str) -> Routed {
        let server = Netns::new(&format!("{tag}-r"));
        let mut client = Netns::new(&format!("{tag}-c"));
        let guest = Netns::new(&format!("{tag}-g"));
        link(&server, &client);
        server.ok(&["ip", "link", "add", "br-guest", "type", "bridge"]);
        veth(&server, "vguest", &guest, "eth0");
        for cmd in [
            "ip link set vguest master br-guest",
            "ip link set vguest up",
            "ip addr add 10.88.0.1/24 dev br-guest",
            "ip link set br-guest up",
            "sysctl -qw net.ipv4.ip_forward=1",
        ] {
            server.sh_ok(cmd);
        }
        guest.bring_up("eth0", &[&format!("{GUEST_V4}/24")]);
        guest.ok(&["ip", "route", "add", "default", "via", "10.88.0.1"]);
        let nginx = start_nginx(&guest, &["0.0.0.0:80"]);
        let redis = start_redis(&guest, &["0.0.0.0"]);
        client.listen(Some("internet"), &["tcp:0.0.0.0:9000"]);
        Routed {
            _nginx: nginx,
            _redis: redis,
            server,
            client,
            guest,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn state(&self) -> String {
        self.dir.path().join("state").to_string_lossy().into_owned()
    }

    /// `autofw apply --confirm` (live scan) with `extra`, confirmed with
    /// `autofw confirm` once the rules are loaded.
    pub fn apply_confirmed(&self, extra: &[&str]) -> Output {
        apply_confirmed(&self.server, &self.state(), extra, &[])
    }
}

const NAT: &str = "table ip nat {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    iifname \"eth0\" tcp dport 8080 dnat to 10.88.0.2:80
    iifname \"eth0\" tcp dport 6379 dnat to 10.88.0.2:6379
  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.88.0.0/24 oifname \"eth0\" masquerade
  }
}
";

fn nat_table(ns: &Netns) -> String {
    ns.ok(&["nft", "-s", "list", "table", "ip", "nat"])
}

#[test]
fn plain_dnat_ports_obey_the_proposal() {
    if !require_root() {
        return;
    }
    let routed = Routed::new("fwd");
    let (server, client, guest) = (&routed.server, &routed.client, &routed.guest);
    let mut load = server.command("nft");
    load.args(["-f", "-"]).stdin(Stdio::piped());
    let mut child = load.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(NAT.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let nat_before = nat_table(server);
    // Without autofw both forwarded ports answer: the problem of issue 9.
    assert_eq!(probe_tcp(client, SERVER_V4, 8080), Probe::Open);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Open);

    // scan lists them, with their targets, once each.
    let out = server.autofw(&["scan", "--json"]);
    let scan = json_of(&out);
    let forwarded: Vec<String> = forwarded_listeners(&scan)
        .into_iter()
        .map(|l| {
            format!(
                "{} {} {} {} {} risky={}",
                l["proto"].as_str().unwrap(),
                l["address"].as_str().unwrap(),
                l["port"],
                l["service"].as_str().unwrap(),
                l["forwarded_to"].as_str().unwrap(),
                l["risky"]
            )
        })
        .collect();
    assert_eq!(
        forwarded,
        [
            "tcp 0.0.0.0 6379 redis 10.88.0.2:6379 risky=true",
            "tcp 0.0.0.0 8080 http-alt 10.88.0.2:80 risky=false"
        ],
        "{}",
        text(&out.stdout)
    );

    // apply: the web port answers, the redis is dropped, the guest still
    // reaches the "internet" through the router's NAT.
    let out = routed.apply_confirmed(&[]);
    assert!(
        text(&out.stdout).contains("chain published"),
        "{}",
        show(&out)
    );
    assert_eq!(probe_tcp(client, SERVER_V4, 8080), Probe::Open);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Dropped);
    assert_eq!(probe_tcp(guest, CLIENT_V4, 9000), Probe::Open);
    // From the bridge (a guest reaching a published port), nothing changes.
    assert_eq!(
        nat_table(server),
        nat_before,
        "the nat table is not autofw's"
    );
    let status = server.autofw(&["status", "--state-dir", &routed.state()]);
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));

    // A port forwarded after apply stays closed, and status says so.
    server.sh_ok("nft add rule ip nat prerouting iifname eth0 tcp dport 8081 dnat to 10.88.0.2:80");
    assert_eq!(probe_tcp(client, SERVER_V4, 8081), Probe::Dropped);
    let status = server.autofw(&["status", "--state-dir", &routed.state()]);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert!(
        text(&status.stdout).contains("forwarded to 10.88.0.2:80")
            && text(&status.stdout).contains("8081/tcp"),
        "{}",
        show(&status)
    );

    // `--source` restricts a forwarded port like a listener; `--allow` opens it.
    routed.apply_confirmed(&["--source", "redis=198.51.100.0/24"]);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Dropped);
    routed.apply_confirmed(&["--source", "redis=192.0.2.0/24"]);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Open);
    routed.apply_confirmed(&["--allow", "redis"]);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Open);
    assert_eq!(probe_tcp(client, SERVER_V4, 8080), Probe::Open);

    // Rollback puts the guard back exactly as it was before the last apply.
    let opened = server.ok(&["nft", "-s", "list", "table", "inet", "autofw"]);
    routed.apply_confirmed(&[]);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Dropped);
    let out = server.autofw(&["rollback", "--state-dir", &routed.state()]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        server.ok(&["nft", "-s", "list", "table", "inet", "autofw"]),
        opened
    );
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Open);
    server.sh_ok("nft delete rule ip nat prerouting handle $(nft -a list chain ip nat prerouting | sed -n 's/.*dport 8081.*handle \\([0-9]*\\)/\\1/p')");
    assert_eq!(nat_table(server), nat_before);
}

/// The guard's jump as `iptables-save -t mangle` lists it.
const GUARD_JUMP: &str = "-A FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED";

/// A plain DNAT with no engine on the iptables backend (issue 20: the guard
/// used to hang off Docker's DOCKER-USER, which only Docker's FORWARD jumps
/// to). The guard sits in mangle's FORWARD: it governs the forwards with no
/// DOCKER-USER anywhere, holds when something later inserts an accept of
/// DNATed connections at the top of filter's FORWARD (as netavark and CNI
/// do for their own chains when they restart), its absence is drift, and
/// rollback leaves every table as it was.
#[test]
fn plain_dnat_on_the_iptables_backend_is_guarded_from_mangle_forward() {
    if !require_root() {
        return;
    }
    let routed = Routed::new("fwdipt");
    let (server, client) = (&routed.server, &routed.client);
    for cmd in [
        "iptables -t nat -A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80",
        "iptables -t nat -A PREROUTING -i eth0 -p tcp --dport 6379 -j DNAT --to-destination 10.88.0.2:6379",
        "iptables -t nat -A POSTROUTING -s 10.88.0.0/24 -o eth0 -j MASQUERADE",
    ] {
        server.sh_ok(cmd);
    }
    let save_all = r"iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'";
    let before = server.sh_ok(save_all);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Open);
    let out = routed.apply_confirmed(&["--backend", "iptables"]);
    let mangle = server.sh_ok("iptables-save -t mangle");
    assert_eq!(
        mangle.matches(GUARD_JUMP).count(),
        1,
        "the one jump, in mangle's FORWARD:\n{mangle}\n{}",
        show(&out)
    );
    assert!(
        !server
            .sh_ok("iptables-save -t filter")
            .contains("DOCKER-USER"),
        "no DOCKER-USER made on a host without Docker"
    );
    assert_eq!(probe_tcp(client, SERVER_V4, 8080), Probe::Open);
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Dropped);
    assert_eq!(probe_tcp(&routed.guest, CLIENT_V4, 9000), Probe::Open);
    let status = server.autofw(&["status", "--state-dir", &routed.state()]);
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));

    // An engine (re)starting puts its accept first in filter's FORWARD:
    // mangle's FORWARD has run before it.
    server.sh_ok("iptables -I FORWARD 1 -m conntrack --ctstate DNAT -j ACCEPT");
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Dropped);
    assert_eq!(probe_tcp(client, SERVER_V4, 8080), Probe::Open);
    server.sh_ok("iptables -D FORWARD -m conntrack --ctstate DNAT -j ACCEPT");

    // The guard's jump gone: drift, and the forward is reachable.
    server.sh_ok(&format!(
        "iptables -t mangle {}",
        GUARD_JUMP.replacen("-A", "-D", 1)
    ));
    let status = server.autofw(&["status", "--state-dir", &routed.state()]);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert!(
        text(&status.stdout).contains(GUARD_JUMP),
        "the diff names the missing jump: {}",
        show(&status)
    );
    assert_eq!(probe_tcp(client, SERVER_V4, 6379), Probe::Open);

    let out = server.autofw(&["rollback", "--state-dir", &routed.state()]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(server.sh_ok(save_all), before);
}

#[test]
fn scan_reads_legacy_and_native_dnats_once_each() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("fwdscan");
    ns.sh_ok("sysctl -qw net.ipv4.ip_forward=1");
    // iptables-legacy (its own kernel tables), iptables-nft and native nft,
    // side by side, as on a host in the middle of a migration.
    ns.sh_ok("iptables-legacy -t nat -A PREROUTING -p tcp --dport 7001 -j DNAT --to-destination 10.9.0.1:70");
    ns.sh_ok(
        "iptables-nft -t nat -A PREROUTING -p udp --dport 7002 -j DNAT --to-destination 10.9.0.2",
    );
    ns.sh_ok("nft 'add table ip forwards; add chain ip forwards pre { type nat hook prerouting priority dstnat; }; add rule ip forwards pre ip daddr 203.0.113.7 tcp dport 7003 dnat to 10.9.0.3:73'");
    let out = ns.autofw(&["scan", "--json"]);
    let scan = json_of(&out);
    let got: Vec<String> = scan["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {}",
                l["proto"].as_str().unwrap(),
                l["address"].as_str().unwrap(),
                l["port"],
                l["forwarded_to"].as_str().unwrap_or("-"),
                l["exposure"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "tcp 0.0.0.0 7001 10.9.0.1:70 public",
            "tcp 203.0.113.7 7003 10.9.0.3:73 public",
            "udp 0.0.0.0 7002 10.9.0.2:7002 public",
        ],
        "{}",
        show(&out)
    );
    // The table shows where each goes.
    let out = ns.autofw(&["scan"]);
    assert!(
        text(&out.stdout).contains("forwarded to 10.9.0.3:73"),
        "{}",
        show(&out)
    );
}

/// The iptables boot hook loads the guard into mangle's FORWARD (no
/// DOCKER-USER needed: Docker need not have started), and a restart of the
/// unit leaves one jump, not two.
#[test]
fn iptables_boot_hook_loads_the_guard_into_mangle_once() {
    if !require_root() {
        return;
    }
    let root = crate::persist::systemd_image();
    let r = root.path().to_str().unwrap();
    {
        let routed = Routed::new("fwdboot");
        routed.server.sh_ok(
            "iptables -t nat -A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80",
        );
        routed.apply_confirmed(&["--backend", "iptables", "--persist", "--root", r]);
    }
    let fresh = Netns::new("fwdreboot");
    for boot in 0..2 {
        crate::persist::boot_with_unit(&fresh, root.path(), "autofw-iptables.service");
        let mangle = fresh.sh_ok("iptables-save -t mangle");
        assert_eq!(
            mangle.matches(GUARD_JUMP).count(),
            1,
            "boot {boot}:\n{mangle}"
        );
        assert!(mangle.contains(":AUTOFW-PUBLISHED - [0:0]"), "{mangle}");
        assert!(mangle.contains("--ctorigdstport 8080"), "{mangle}");
        assert!(
            !fresh
                .sh_ok("iptables-save -t filter")
                .contains("DOCKER-USER")
        );
    }
}
