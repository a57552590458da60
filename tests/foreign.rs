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

/// A directory with an `unshare` that counts its runs (one per judging in a
/// scratch namespace) before it execs the real one, and the PATH that puts
/// it first.
fn counting_unshare(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let shim = dir.join("shim");
    std::fs::create_dir(&shim).unwrap();
    let count = dir.join("unshare.count");
    std::fs::write(
        shim.join("unshare"),
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec /usr/bin/unshare \"$@\"\n",
            count.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shim.join("unshare"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        shim.display()
    );
    (path, count)
}

/// How many times the shim ran the judge (apply's dry run uses `unshare`
/// for its plan too).
fn judgings(count: &std::path::Path) -> usize {
    std::fs::read_to_string(count)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with("autofw judge"))
        .count()
}

/// The `other_filters.ports` of a JSON report: (proto, port, family) →
/// the judgement.
fn judged_ports(report: &serde_json::Value) -> Vec<(String, u64, String, serde_json::Value)> {
    report["other_filters"]["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no other_filters.ports in {report:#}"))
        .iter()
        .map(|p| {
            (
                p["proto"].as_str().unwrap().to_string(),
                p["port"].as_u64().unwrap(),
                p["family"].as_str().unwrap().to_string(),
                p.clone(),
            )
        })
        .collect()
}

/// A KVM host as libvirt leaves it (virbr0, libvirt's iptables chains, its
/// real dnsmasq), with Docker's chains and a real fail2ban beside: the
/// other filters drop nothing autofw opens, and dnsmasq's DNS gets rules
/// scoped to virbr0's addresses, which no probe from the judge's scratch
/// address can pass. Those are judged by the rule, never probed, so propose
/// and apply no longer wait out a silence (1.5 s, twice, before); status
/// keeps the verdict and judges again only when a filter changes.
#[test]
fn a_kvm_host_is_judged_without_waiting_and_status_reuses_the_verdict() {
    if !require_root() {
        return;
    }
    let server = Netns::new("kvm-s");
    let client = Netns::new("kvm-c");
    link(&server, &client);
    let _ssh = Ssh::start(&server);
    let _dnsmasq = start_libvirt_network(&server);
    let _fail2ban = add_foreign_rules(&server);
    let dir = tempfile::tempdir().unwrap();
    let (path, count) = counting_unshare(dir.path());
    let state = dir.path().join("state").display().to_string();
    let run = |args: &[&str]| {
        Autofw::new(args)
            .inside(&server)
            .env("PATH", &path)
            .output()
    };

    let started = std::time::Instant::now();
    let propose = run(&["propose"]);
    let propose_took = started.elapsed();
    assert!(propose.status.success(), "{}", show(&propose));
    let stderr = text(&propose.stderr);
    assert!(
        stderr.contains("the other filters were not probed on tcp/53 (")
            && stderr.contains(&format!("to {VIRBR0_V4}"))
            && !stderr.contains("that autofw opens")
            && !stderr.contains("could not be checked"),
        "{}",
        show(&propose)
    );
    // One judging (everything loaded; every probe answered): no second run.
    assert_eq!(judgings(&count), 1, "{}", show(&propose));

    let started = std::time::Instant::now();
    let dry = run(&["apply", "--json", "--state-dir", &state]);
    let dry_took = started.elapsed();
    assert!(dry.status.success(), "{}", show(&dry));
    let report = json_of(&dry);
    assert_eq!(report["other_filters"]["verdict"], "judged", "{report:#}");
    let ports = judged_ports(&report);
    // DNS only to virbr0's addresses, DHCP only on virbr0 (dnsmasq's
    // `0.0.0.0%virbr0`): judged by the rule, in each family that has an
    // opening.
    let scoped = |p: &&(String, u64, String, serde_json::Value)| p.1 == 53 || p.1 == 67;
    let by_rule: Vec<_> = ports.iter().filter(scoped).collect();
    assert!(
        by_rule
            .iter()
            .any(|p| p.0 == "tcp" && p.1 == 53 && p.2 == "ipv4")
            && by_rule
                .iter()
                .any(|p| p.0 == "udp" && p.1 == 53 && p.2 == "ipv4")
            && by_rule.iter().any(|p| p.0 == "udp" && p.1 == 67)
            && by_rule.iter().all(|p| p.3["judged"] == "by-rule")
            && by_rule
                .iter()
                .filter(|p| p.1 == 53)
                .all(|p| p.3["rule"].as_str().unwrap().starts_with("to "))
            && by_rule
                .iter()
                .filter(|p| p.1 == 67)
                .all(|p| p.3["rule"] == "on virbr0"),
        "{report:#}"
    );
    // Everything else was probed and answered: no probe waited for a
    // silence (that is the only way to a `dropped` verdict).
    let probed: Vec<_> = ports.iter().filter(|p| !scoped(p)).collect();
    assert!(
        probed
            .iter()
            .any(|p| p.0 == "tcp" && p.1 == 5622 && p.2 == "ipv4")
            && probed
                .iter()
                .any(|p| p.0 == "tcp" && p.1 == 5622 && p.2 == "ipv6"),
        "{report:#}"
    );
    for p in &probed {
        assert_eq!(p.3["judged"], "probed", "{report:#}");
        assert_eq!(p.3["verdict"], "open", "{report:#}");
    }
    assert_eq!(
        judgings(&count),
        2,
        "{}",
        std::fs::read_to_string(&count).unwrap()
    );
    eprintln!("propose took {propose_took:?}, apply (dry run) {dry_took:?}");

    apply_confirmed(&server, &state, &[], &[("PATH", &path)]);
    let after_apply = judgings(&count);
    // A confirmed apply keeps its verdict for status: the same rules and
    // filters need no judging again.
    let status = |what: &str| {
        let out = run(&["status", "--json", "--state-dir", &state]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{what}: {}",
            show(&out)
        );
        json_of(&out)
    };
    let first = status("after apply");
    assert_eq!(first["other_filters"]["verdict"], "cached", "{first:#}");
    assert_eq!(judged_ports(&first).len(), ports.len(), "{first:#}");
    let namespaces = std::fs::read_to_string(&count).unwrap().lines().count();
    let second = status("nothing changed");
    assert_eq!(second["other_filters"]["verdict"], "cached", "{second:#}");
    assert_eq!(second["rules"]["state"], "live", "{second:#}");
    assert_eq!(judgings(&count), after_apply, "status ran the judge");
    // Nor any other scratch namespace: the applied rules' listing is kept
    // too while the live table lists the same.
    assert_eq!(
        std::fs::read_to_string(&count).unwrap().lines().count(),
        namespaces,
        "status ran a scratch namespace with nothing changed"
    );
    assert!(
        std::path::Path::new(&state)
            .join("other-filters.json")
            .exists(),
        "no cached verdict in the state directory"
    );

    // libvirt adds a rule (a new network's TFTP): the filters changed, so
    // the next status judges again, and the one after reuses that.
    server.ok(&[
        "iptables",
        "-A",
        "LIBVIRT_INP",
        "-i",
        "virbr0",
        "-p",
        "udp",
        "--dport",
        "69",
        "-j",
        "ACCEPT",
    ]);
    let changed = status("a filter changed");
    assert_eq!(changed["other_filters"]["verdict"], "judged", "{changed:#}");
    assert_eq!(judgings(&count), after_apply + 1);
    let again = status("nothing changed since");
    assert_eq!(again["other_filters"]["verdict"], "cached", "{again:#}");
    assert_eq!(judgings(&count), after_apply + 1);
}

/// 300 opened ports, every one dropped by a left-over `INPUT DROP`, under
/// an address-space limit and few file descriptors: the judge (one event
/// loop, batches as the descriptors allow) gives its verdict; two threads
/// per port panicked here ("failed to spawn thread").
#[test]
fn three_hundred_ports_under_tight_limits_get_a_verdict_not_a_panic() {
    if !require_root() {
        return;
    }
    let server = Netns::new("many-s");
    let client = Netns::new("many-c");
    link(&server, &client);
    for tool in ["iptables", "ip6tables"] {
        server.ok(&[tool, "-P", "INPUT", "DROP"]);
        server.ok(&[
            tool, "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT",
        ]);
    }
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("scan.json");
    let services: Vec<(String, u16)> = (0..300).map(|i| (format!("svc{i}"), 20000 + i)).collect();
    let services: Vec<(&str, &str, u16)> = services
        .iter()
        .map(|(name, port)| (name.as_str(), "daemon", *port))
        .collect();
    write_scan(&scan, &services);
    let state = dir.path().join("state").display().to_string();
    let out = Autofw::new(&[
        "apply",
        "--json",
        "--from",
        &scan.display().to_string(),
        "--state-dir",
        &state,
    ])
    .inside(&server)
    .through(&["prlimit", "--as=1073741824", "--nofile=256", "--"])
    .output();
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("failed to spawn"),
        "{}",
        show(&out)
    );
    assert!(out.status.success(), "{}", show(&out));
    let report = json_of(&out);
    assert_eq!(report["other_filters"]["verdict"], "judged", "{report:#}");
    let ports = judged_ports(&report);
    assert_eq!(ports.len(), 600, "{report:#}");
    assert!(
        ports
            .iter()
            .all(|p| p.3["judged"] == "probed" && p.3["verdict"] == "dropped"),
        "{report:#}"
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("iptables-nft's filter INPUT (policy drop) drops tcp/20000")
            && warnings.contains("tcp/20299"),
        "{report:#}"
    );
}
