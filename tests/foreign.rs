//! Other tools on the same host, end to end in namespaces: rules and
//! policies that Docker, fail2ban or an old script set, and that autofw's
//! apply and rollback must work with rather than over.

use crate::support::*;
use std::time::Duration;

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
    let _fail2ban = add_foreign_rules(&host.server);
    // An old script's accept for 8080, which autofw's proposal leaves closed.
    for tool in ["iptables", "ip6tables"] {
        host.server.ok(&[
            tool, "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
        ]);
    }
    // A second address on the client, which fail2ban banned through its
    // f2b-sshd chain.
    let banned = format!("{F2B_SSHD_BANNED}/32");
    host.client
        .ok(&["ip", "addr", "add", &banned, "dev", "eth0"]);
    host.server
        .ok(&["ip", "route", "add", &banned, "dev", "eth0"]);
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Open);
    assert_eq!(
        probe_tcp_from(&host.client, F2B_SSHD_BANNED, SERVER_V4, 5622),
        Probe::Refused,
        "fail2ban bans before autofw's apply"
    );

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
    // fail2ban's chain and the old accept stop none of the ports autofw
    // opens (the judge's client is not banned): nothing is blamed on them.
    assert!(
        !text(&plan.stderr).contains("that autofw opens"),
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
        probe_tcp_from(&host.client, F2B_SSHD_BANNED, SERVER_V4, 5622),
        Probe::Refused,
        "fail2ban's ban must still come first"
    );
    let out = host.confirm_and_finish(apply);
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

/// `autofw propose` on the live host (no saved scan), inside the server.
fn propose_live(host: &Host) -> std::process::Output {
    host.server.autofw(&["propose"])
}

/// `autofw status --json` of `host`'s state directory: exit code, report.
fn status_json(host: &Host) -> (Option<i32>, serde_json::Value) {
    let out = host
        .server
        .autofw(&["status", "--json", "--state-dir", &host.state()]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", show(&out)));
    (out.status.code(), report)
}

/// The findings of a status report of `kind`, by message.
fn messages_of(report: &serde_json::Value, kind: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_left_over_iptables_policy_drop_is_named_in_propose_apply_and_status() {
    if !require_root() {
        return;
    }
    // What an old script or an active ufw leaves behind: INPUT DROP with an
    // ssh accept (IPv4 only).
    let host = Host::new("leftover");
    host.server.ok(&["iptables", "-P", "INPUT", "DROP"]);
    host.server.ok(&[
        "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5622", "-j", "ACCEPT",
    ]);
    let said = "iptables-nft's filter INPUT (policy drop) drops tcp/80 that autofw opens";

    // The live scan also opens the stray 8080.
    let propose = propose_live(&host);
    assert!(propose.status.success(), "{}", show(&propose));
    assert!(
        text(&propose.stderr).contains(
            "iptables-nft's filter INPUT (policy drop) drops tcp/80, tcp/8080 that autofw opens"
        ),
        "{}",
        show(&propose)
    );
    assert!(
        text(&propose.stderr).contains("ufw disable"),
        "{}",
        show(&propose)
    );
    assert!(
        !text(&propose.stderr).contains("tcp/5622"),
        "{}",
        show(&propose)
    );

    // apply --json (for automation) carries it among its warnings.
    let dry = host
        .server
        .autofw(&["apply", "--json", "--from", &host.scan()]);
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let warnings = dry["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(said)),
        "{dry:#}"
    );

    let apply = host.apply_in_background(&["--timeout", "30"]);
    let out = host.confirm_and_finish(apply);
    assert!(text(&out.stderr).contains(said), "{}", show(&out));
    // The kernel agrees on the host itself: autofw opens 80, it is dropped.
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 80), Probe::Dropped);
    assert_eq!(probe_tcp(&host.client, SERVER_V6, 80), Probe::Open);

    let (code, report) = status_json(&host);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(messages_of(&report, "foreign-drop"), [said], "{report:#}");

    // Resolved: no more foreign drop (the stray 8080 is drift of its own).
    host.server.ok(&["iptables", "-P", "INPUT", "ACCEPT"]);
    let (_, report) = status_json(&host);
    assert!(
        messages_of(&report, "foreign-drop").is_empty(),
        "{report:#}"
    );
    assert_eq!(
        messages_of(&report, "unopened-listener").len(),
        1,
        "{report:#}"
    );
}

#[test]
fn iptables_legacy_rules_are_detected_and_judged() {
    if !require_root() {
        return;
    }
    // Legacy tables are per network namespace: this one is the test's own.
    let host = Host::new("legacy");
    host.server.ok(&[
        "iptables-legacy",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "DROP",
    ]);
    let said = "iptables-legacy's filter INPUT drops tcp/80 before autofw's rules see it";

    let scan = host.server.autofw(&["scan"]);
    assert!(
        text(&scan.stderr)
            .contains("iptables-legacy tables hold rules (iptables-legacy: filter (1 rule))"),
        "{}",
        show(&scan)
    );
    let propose = propose_live(&host);
    assert!(text(&propose.stderr).contains(said), "{}", show(&propose));

    let apply = host.apply_in_background(&["--timeout", "30"]);
    let out = host.confirm_and_finish(apply);
    assert!(text(&out.stderr).contains(said), "{}", show(&out));
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 80), Probe::Dropped);
    assert!(
        !host.server.ruleset().contains("dport 80 drop"),
        "invisible to nft"
    );

    let (code, report) = status_json(&host);
    assert_eq!(code, Some(1), "{report:#}");
    let drops = messages_of(&report, "foreign-drop");
    assert!(drops.len() == 1 && drops[0].starts_with(said), "{report:#}");

    // Legacy rules that drop nothing autofw opens are still drift.
    host.server.ok(&[
        "iptables-legacy",
        "-R",
        "INPUT",
        "1",
        "-p",
        "tcp",
        "--dport",
        "9999",
        "-j",
        "DROP",
    ]);
    let (code, report) = status_json(&host);
    assert_eq!(code, Some(1), "{report:#}");
    assert!(
        messages_of(&report, "foreign-drop").is_empty(),
        "{report:#}"
    );
    let legacy = messages_of(&report, "legacy-rules");
    assert!(
        legacy.len() == 1 && legacy[0].contains("they drop none of the ports autofw opens now"),
        "{report:#}"
    );
}

#[test]
fn autofws_own_legacy_rules_do_not_count() {
    if !require_root() {
        return;
    }
    // A host whose iptables is the legacy one: PATH puts the legacy tools
    // first under the plain names, in this test only.
    let host = Host::new("ownlegacy");
    let shims = host.dir.path().join("legacy-bin");
    std::fs::create_dir(&shims).unwrap();
    for tool in ["iptables", "ip6tables"] {
        for suffix in ["", "-save", "-restore"] {
            std::os::unix::fs::symlink(
                format!("/usr/sbin/{tool}-legacy{}", suffix),
                shims.join(format!("{tool}{suffix}")),
            )
            .unwrap();
        }
    }
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap());
    let state = host.state();
    let scan = host.scan();
    let out = host
        .server
        .command("env")
        .args([
            &format!("PATH={path}"),
            autofw_bin(),
            "apply",
            "--confirm",
            "--yes",
        ])
        .args(["--backend", "iptables", "--timeout", "30", "--from", &scan])
        .args(["--state-dir", &state])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        std::path::Path::new(&state).join("window.json").exists()
            && text(&host.server.run(&["iptables-legacy-save"]).stdout).contains("AUTOFW-INPUT")
    }));
    std::thread::sleep(Duration::from_millis(300));
    let confirm = host
        .server
        .command("env")
        .args([
            &format!("PATH={path}"),
            autofw_bin(),
            "confirm",
            "--state-dir",
            &state,
        ])
        .output()
        .unwrap();
    assert!(confirm.status.success(), "{}", show(&confirm));
    let out = finish(out);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!text(&out.stderr).contains("legacy"), "{}", show(&out));
    let status = host
        .server
        .command("env")
        .args([
            &format!("PATH={path}"),
            autofw_bin(),
            "status",
            "--json",
            "--state-dir",
            &state,
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["rules"]["state"], "live", "{report:#}");
    // Only the stray 8080, which the saved scan leaves out, is drift.
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unopened-listener"], "{report:#}");
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Dropped);
}
