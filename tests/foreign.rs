//! Other tools on the same host, end to end in namespaces: rules and
//! policies that Docker, fail2ban or an old script set, and that autofw's
//! apply and rollback must work with rather than over.

use crate::apply::{Host, add_foreign_rules, finish};
use crate::support::*;
use std::time::Duration;

/// A TCP connect from `client` with source address `source`, 2 s deadline.
fn probe_tcp_from(client: &Netns, source: &str, addr: &str, port: u16) -> Probe {
    let script = format!(
        "import socket\ns = socket.socket()\ns.settimeout(2)\ns.bind(('{source}', 0))\n\
         try:\n    s.connect(('{addr}', {port})); print('open')\n\
         except ConnectionRefusedError: print('refused')\n\
         except OSError: print('dropped')\n"
    );
    let out = client.run(&["python3", "-c", &script]);
    match text(&out.stdout).trim() {
        "open" => Probe::Open,
        "refused" => Probe::Refused,
        _ => Probe::Dropped,
    }
}

/// The built-in chain's policy in `tool`'s filter table (`DROP`/`ACCEPT`).
fn policy(ns: &Netns, tool: &str, chain: &str) -> String {
    let listing = ns.ok(&[tool, "-S", chain]);
    let first = listing.lines().next().unwrap_or_default();
    first
        .strip_prefix(&format!("-P {chain} "))
        .unwrap_or_else(|| panic!("no policy line in {listing}"))
        .to_string()
}

#[test]
fn an_earlier_accept_no_longer_bypasses_autofw_and_fail2ban_keeps_banning() {
    if !require_root() {
        return;
    }
    let host = Host::new("early");
    add_foreign_rules(&host.server);
    // An old script's accept for 8080, which autofw's proposal leaves closed.
    for tool in ["iptables", "ip6tables"] {
        host.server.ok(&[
            tool, "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
        ]);
    }
    // A second address on the client, banned by the f2b-sshd chain.
    host.client
        .ok(&["ip", "addr", "add", "203.0.113.7/32", "dev", "eth0"]);
    host.server
        .ok(&["ip", "route", "add", "203.0.113.7/32", "dev", "eth0"]);
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Open);

    let plan = host.server.autofw(&[
        "apply",
        "--backend",
        "iptables",
        "--from",
        &host.scan(),
        "--state-dir",
        &host.state(),
    ]);
    let plan_text = text(&plan.stdout);
    assert!(
        plan_text.contains(
            "# iptables INPUT: autofw's jump goes at position 2, after 1 rule that only drop"
        ) && plan_text.contains("before `-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT`"),
        "{}",
        show(&plan)
    );

    let apply = host.apply_in_background(&["--timeout", "30", "--backend", "iptables"]);
    let input = host.server.ok(&["iptables", "-S", "INPUT"]);
    let order: Vec<&str> = input.lines().skip(1).collect();
    assert_eq!(
        order,
        [
            "-A INPUT -p tcp -m multiport --dports 5622 -j f2b-sshd",
            "-A INPUT -j AUTOFW-INPUT",
            "-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT",
        ],
        "{input}"
    );
    for addr in [SERVER_V4, SERVER_V6] {
        assert_eq!(
            probe_tcp(&host.client, addr, 8080),
            Probe::Dropped,
            "{addr}"
        );
        assert_eq!(probe_tcp(&host.client, addr, 5622), Probe::Open, "{addr}");
    }
    assert_eq!(
        probe_tcp_from(&host.client, "203.0.113.7", SERVER_V4, 5622),
        Probe::Refused,
        "fail2ban's ban must still come first"
    );
    assert!(host.confirm().status.success());
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        !text(&out.stderr).contains("accepts before"),
        "{}",
        show(&out)
    );

    let status = host
        .server
        .autofw(&["status", "--state-dir", &host.state()]);
    assert!(
        !text(&status.stdout).contains("accept-before-autofw"),
        "{}",
        show(&status)
    );

    // Another accept, inserted at the top after the apply: status says so.
    host.server.ok(&[
        "iptables", "-I", "INPUT", "1", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
    ]);
    let status = host
        .server
        .autofw(&["status", "--state-dir", &host.state()]);
    let report = text(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert!(
        report.contains("accept-before-autofw")
            && report.contains(
                "iptables INPUT rule 1 (`-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT`) accepts \
                 before autofw's chain sees the packet"
            )
            && report.contains("iptables -D INPUT 1"),
        "{}",
        show(&status)
    );
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Open);
}

/// A saved scan of `Host`'s listeners on a host that routes for Docker.
fn write_routing_scan(host: &Host) {
    let path = std::path::PathBuf::from(host.scan());
    let mut scan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    scan["host"] = serde_json::json!({ "ip_forward": true, "bridges": ["docker0"] });
    std::fs::write(&path, scan.to_string()).unwrap();
}

#[test]
fn a_forward_drop_set_during_the_window_survives_the_rollback() {
    if !require_root() {
        return;
    }
    // A host that routes: autofw leaves FORWARD alone; Docker (re)starts in
    // the window and sets FORWARD DROP.
    let host = Host::new("fwdrop");
    write_routing_scan(&host);
    let apply = host.apply_in_background(&["--timeout", "3", "--backend", "iptables"]);
    assert_eq!(policy(&host.server, "iptables", "INPUT"), "DROP");
    for tool in ["iptables", "ip6tables"] {
        host.server.ok(&[tool, "-P", "FORWARD", "DROP"]);
    }
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    for tool in ["iptables", "ip6tables"] {
        assert_eq!(policy(&host.server, tool, "FORWARD"), "DROP", "{tool}");
        assert_eq!(policy(&host.server, tool, "INPUT"), "ACCEPT", "{tool}");
    }
    assert!(!host.server.ok(&["iptables-save"]).contains("AUTOFW"));
}

#[test]
fn docker_starting_in_the_window_keeps_its_forward_drop() {
    if !require_root() {
        return;
    }
    // A host that routed nothing: autofw sets FORWARD DROP. Docker starts in
    // the window: it turns IPv4 forwarding on and sets FORWARD DROP too.
    let host = Host::new("fwdocker");
    let apply = host.apply_in_background(&["--timeout", "3", "--backend", "iptables"]);
    assert_eq!(policy(&host.server, "iptables", "FORWARD"), "DROP");
    host.server.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    host.server.ok(&["iptables", "-P", "FORWARD", "DROP"]);
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(policy(&host.server, "iptables", "FORWARD"), "DROP");
    assert_eq!(policy(&host.server, "iptables", "INPUT"), "ACCEPT");
    // IPv6 forwarding stayed off: autofw's FORWARD DROP there is undone.
    assert_eq!(policy(&host.server, "ip6tables", "FORWARD"), "ACCEPT");
    assert!(wait_until(Duration::from_secs(1), || probe_tcp(
        &host.client,
        SERVER_V4,
        8080
    ) == Probe::Open));
}
