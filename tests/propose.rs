//! `autofw propose`: snapshots of the rendered rulesets for the fixture
//! scans, errors for bad choices, and the kernel's own verdict: every
//! proposal loads in a namespace, and loaded, lets in exactly what it says.

use crate::support::*;

const SCANS: &[&str] = &[
    "seed-host",
    "docker-host",
    "risky-host",
    "ipv6-host",
    "kvm-host",
];
const FORMATS: &[&str] = &["nft", "iptables", "ip6tables"];

/// Fixture paths are relative to the crate root, where [`autofw`] runs, so
/// that the places named in the output (and the snapshots) do not depend on
/// where the repository is checked out.
fn scan_path(name: &str) -> String {
    format!("fixtures/scans/{name}.json")
}

fn policy_path(name: &str) -> String {
    format!("fixtures/policies/{name}")
}

fn propose(scan: &str, format: &str, extra: &[&str]) -> String {
    let path = scan_path(scan);
    let mut args = vec!["propose", "--from", &path, "--format", format];
    args.extend_from_slice(extra);
    Autofw::new(&args).stdout()
}

/// One test per rendered ruleset, so one mismatch does not hide the others:
/// each checks `tests/snapshots/tests__propose__NAME.snap`.
macro_rules! snapshot {
    ($test:ident, $scan:literal, $format:literal, $name:literal) => {
        snapshot!($test, $scan, $format, $name, &[]);
    };
    ($test:ident, $scan:literal, $format:literal, $name:literal, $extra:expr) => {
        #[test]
        fn $test() {
            let extra: &[&str] = $extra;
            insta::assert_snapshot!($name, propose($scan, $format, extra));
        }
    };
}

snapshot!(snapshot_seed_host_nft, "seed-host", "nft", "seed-host.nft");
snapshot!(
    snapshot_seed_host_iptables,
    "seed-host",
    "iptables",
    "seed-host.iptables"
);
snapshot!(
    snapshot_seed_host_ip6tables,
    "seed-host",
    "ip6tables",
    "seed-host.ip6tables"
);
snapshot!(
    snapshot_docker_host_nft,
    "docker-host",
    "nft",
    "docker-host.nft"
);
snapshot!(
    snapshot_docker_host_iptables,
    "docker-host",
    "iptables",
    "docker-host.iptables"
);
snapshot!(
    snapshot_docker_host_ip6tables,
    "docker-host",
    "ip6tables",
    "docker-host.ip6tables"
);
snapshot!(
    snapshot_risky_host_nft,
    "risky-host",
    "nft",
    "risky-host.nft"
);
snapshot!(
    snapshot_risky_host_iptables,
    "risky-host",
    "iptables",
    "risky-host.iptables"
);
snapshot!(
    snapshot_risky_host_ip6tables,
    "risky-host",
    "ip6tables",
    "risky-host.ip6tables"
);
snapshot!(snapshot_ipv6_host_nft, "ipv6-host", "nft", "ipv6-host.nft");
snapshot!(
    snapshot_ipv6_host_iptables,
    "ipv6-host",
    "iptables",
    "ipv6-host.iptables"
);
snapshot!(
    snapshot_ipv6_host_ip6tables,
    "ipv6-host",
    "ip6tables",
    "ipv6-host.ip6tables"
);
snapshot!(
    snapshot_admin_policy_nft,
    "seed-host",
    "nft",
    "seed-host-admin.nft",
    &["--policy", &policy_path("admin.toml"), "--allow", "mysql"]
);
snapshot!(
    snapshot_admin_policy_iptables,
    "seed-host",
    "iptables",
    "seed-host-admin.iptables",
    &["--policy", &policy_path("admin.toml"), "--allow", "mysql"]
);
snapshot!(
    snapshot_admin_policy_ip6tables,
    "seed-host",
    "ip6tables",
    "seed-host-admin.ip6tables",
    &["--policy", &policy_path("admin.toml"), "--allow", "mysql"]
);

/// `--source`, `--limit` and `--blocklist` are the policy file's
/// `[service.SPEC]` and `[blocklist]` on the command line: the same choices
/// give the same ruleset, in every format.
#[test]
fn command_line_policies_give_the_policy_files_ruleset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[service.ssh]\nsources = [\"192.0.2.0/24\", \"2001:db8:1::/48\"]\nlimit = true\n\
         [blocklist]\naddresses = [\"198.51.100.7\", \"2001:db8:bad::/48\"]\n",
    )
    .unwrap();
    for format in FORMATS {
        let by_file = propose("seed-host", format, &["--policy", file.to_str().unwrap()]);
        let by_flags = propose(
            "seed-host",
            format,
            &[
                "--source",
                "ssh=192.0.2.0/24,2001:db8:1::/48",
                "--limit",
                "ssh",
                "--blocklist",
                "198.51.100.7",
                "--blocklist",
                "2001:db8:bad::/48",
            ],
        );
        // The rules are the same; only the comments differ, as they name the
        // place each choice was written (`policy.toml:1`, `--limit ssh`).
        let rules = |text: &str| {
            text.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(rules(&by_file), rules(&by_flags), "{format}");
        assert!(by_flags.contains("--limit ssh"), "{by_flags}");
        assert_ne!(by_flags, propose("seed-host", format, &[]), "{format}");
    }
    let out = Autofw::new(&[
        "propose",
        "--from",
        &scan_path("seed-host"),
        "--policy",
        file.to_str().unwrap(),
        "--limit",
        "ssh",
    ])
    .output();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("also given at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn same_inputs_give_byte_identical_output() {
    let policy = policy_path("admin.toml");
    let a = propose("risky-host", "nft", &["--policy", &policy]);
    let b = propose("risky-host", "nft", &["--policy", &policy]);
    assert_eq!(a, b);
}

#[test]
fn nft_output_keeps_the_contract_with_apply() {
    for scan in SCANS {
        let text = propose(scan, "nft", &[]);
        assert!(
            text.starts_with("table inet autofw\ndelete table inet autofw\n"),
            "{scan}: {text}"
        );
        // Nothing but autofw's table is named.
        for line in text
            .lines()
            .filter(|l| l.starts_with("table") || l.contains("delete"))
        {
            assert!(
                line.starts_with("table inet autofw") || line == "delete table inet autofw",
                "{line}"
            );
        }
        for format in ["iptables", "ip6tables"] {
            let text = propose(scan, format, &[]);
            let jumps: Vec<_> = text.lines().filter(|l| l.starts_with("-A INPUT")).collect();
            assert_eq!(jumps, ["-A INPUT -j AUTOFW-INPUT"], "{scan} {format}");
            for line in text.lines().filter(|l| l.starts_with(':')) {
                let chain = line[1..].split(' ').next().unwrap();
                assert!(
                    ["INPUT", "FORWARD", "OUTPUT"].contains(&chain) || chain.starts_with("AUTOFW-"),
                    "{scan} {format} declares {chain}"
                );
            }
        }
    }
}

#[test]
fn risky_listeners_are_left_closed_and_said_so() {
    let path = scan_path("risky-host");
    let out = Autofw::new(&["propose", "--from", &path]).output();
    let text = stdout_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("dport 6379") && !text.contains("dport 3306"),
        "{text}"
    );
    assert!(
        text.contains("redis 6379/tcp") && text.contains("--allow redis"),
        "{text}"
    );
    assert!(
        err.contains("left closed: mysql 3306/tcp") && err.contains("--allow mysql"),
        "{err}"
    );
    let text = propose("risky-host", "nft", &["--allow", "mysql"]);
    assert!(text.contains("tcp dport 3306 accept"), "{text}");
    assert!(!text.contains("dport 6379"), "{text}");
}

#[test]
fn docker_hosts_keep_forwarding_but_published_ports_obey_the_proposal() {
    let path = scan_path("docker-host");
    let out = Autofw::new(&["propose", "--from", &path]).output();
    let text = stdout_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    // The guard governs published ports: no "cannot close it" warning any more.
    assert!(!err.contains("is published by Docker"), "{err}");
    assert!(text.contains("docker0"), "{text}");
    // One forward chain, policy accept, that only drops DNATed new connections
    // from outside the bridges to ports not opened (postgresql: risky).
    assert_eq!(text.matches("hook forward").count(), 1, "{text}");
    assert!(
        text.contains("type filter hook forward priority filter - 10; policy accept;"),
        "{text}"
    );
    assert!(
        text.contains("meta l4proto tcp ct original proto-dst 8080 return"),
        "{text}"
    );
    assert!(!text.contains("proto-dst 5432"), "{text}");
    assert!(!text.contains(" accept comment \"published"), "{text}");
    let text = propose("docker-host", "iptables", &[]);
    assert!(!text.contains(":FORWARD"), "{text}");
    assert!(
        text.contains("*mangle\n")
            && text.contains("-I FORWARD 1 -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED")
            && !text.contains("DOCKER-USER"),
        "{text}"
    );
    let text = propose("seed-host", "iptables", &[]);
    assert!(text.contains(":FORWARD DROP"), "{text}");
}

#[test]
fn json_prints_the_model_with_reasons() {
    let text = propose("seed-host", "nft", &["--json"]);
    insta::assert_snapshot!("seed-host.json", text);
    let v: serde_json::Value = serde_json::from_str(&text).expect("propose --json is JSON");
    let input = v["input"].as_array().unwrap();
    let ssh = input
        .iter()
        .find(|r| r["match"] == "service" && r["port"] == 5622)
        .expect("an ssh rule");
    assert_eq!(ssh["proto"], "tcp");
    assert_eq!(ssh["verdict"], "accept");
    assert_eq!(ssh["reason"], "ssh (sshd, pid 630)");
    assert_eq!(input.last().unwrap()["verdict"], "drop");
    assert_eq!(v["forward"]["forward"], "drop");
    let closed: Vec<_> = v["closed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["port"].as_u64().unwrap())
        .collect();
    assert_eq!(closed, [953, 3306]);
}

#[test]
fn out_writes_a_file_and_ipset_the_sets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("rules.nft");
    let sets = dir.join("sets.ipset");
    let policy = policy_path("admin.toml");
    let printed = Autofw::new(&[
        "propose",
        "--from",
        &scan_path("seed-host"),
        "--policy",
        &policy,
        "--out",
        out.to_str().unwrap(),
        "--ipset",
        sets.to_str().unwrap(),
    ])
    .stdout();
    assert_eq!(printed, "");
    let rules = std::fs::read_to_string(&out).unwrap();
    assert!(rules.starts_with("table inet autofw\n"));
    let sets = std::fs::read_to_string(&sets).unwrap();
    assert!(
        sets.contains("create autofw-block-v4 hash:net family inet"),
        "{sets}"
    );
    assert!(
        sets.contains("add autofw-block-v6 2001:db8:dead::/64"),
        "{sets}"
    );
}

/// Each bad input: exit 2 and a message naming the problem and its place.
#[test]
fn bad_choices_exit_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bad_policy = dir.join("bad.toml");
    std::fs::write(
        &bad_policy,
        "allow = [\"ssh\"]\n\n[service.ssh]\nsource = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    let bad_addr = dir.join("addr.toml");
    std::fs::write(
        &bad_addr,
        "[blocklist]\naddresses = [\n  \"192.0.2.1\",\n  \"192.0.2.999\",\n]\n",
    )
    .unwrap();
    let bad_scan = dir.join("scan.json");
    std::fs::write(&bad_scan, "{\"listeners\": [{\"proto\": \"sctp\"}]}").unwrap();
    let seed = scan_path("seed-host");
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["--allow", "htps"],
            vec!["--allow htps: unknown service `htps`".into()],
        ),
        (
            vec!["--allow", "0"],
            vec!["--allow 0: port 0 is out of range".into()],
        ),
        (
            vec!["--block", "70000/udp"],
            vec!["--block 70000/udp: port 70000 is out of range".into()],
        ),
        (
            vec!["--allow", "80/icmp"],
            vec!["unknown protocol `icmp`".into()],
        ),
        (
            vec!["--policy", bad_policy.to_str().unwrap()],
            vec![
                bad_policy.display().to_string(),
                "line 4".into(),
                "unknown field `source`".into(),
            ],
        ),
        (
            vec!["--policy", bad_addr.to_str().unwrap()],
            vec![
                format!("{}:4", bad_addr.display()),
                "`192.0.2.999` is not an IP address".into(),
            ],
        ),
    ];
    for (extra, wanted) in cases {
        let mut args = vec!["propose", "--from", &seed];
        args.extend_from_slice(&extra);
        let out = Autofw::new(&args).output();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.starts_with("autofw: "), "{err}");
        for w in wanted {
            assert!(err.contains(&w), "{extra:?}: wanted {w:?} in {err}");
        }
        assert!(out.stdout.is_empty(), "{extra:?} printed a ruleset");
    }
    let out = Autofw::new(&["propose", "--from", bad_scan.to_str().unwrap()]).output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("saved scan {}", bad_scan.display())),
        "{err}"
    );
    let out = Autofw::new(&["propose", "--from", "/nonexistent/scan.json"]).output();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scan.json"));
}

/// The kernel's own checks: `nft -c`, `iptables-restore --test` and
/// `ip6tables-restore --test` accept every fixture's proposal, with and
/// without a policy, inside a namespace this test creates.
#[test]
fn the_kernel_accepts_every_proposal() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("propose-check");
    let policy = policy_path("admin.toml");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sets = dir.join("sets.ipset");
    // The policy's blocklist needs its ipsets for the iptables formats.
    Autofw::new(&[
        "propose",
        "--from",
        &scan_path("seed-host"),
        "--policy",
        &policy,
        "--ipset",
        sets.to_str().unwrap(),
    ])
    .stdout();
    ns.ok(&[
        "ipset",
        "restore",
        "-exist",
        "-file",
        sets.to_str().unwrap(),
    ]);
    for scan in SCANS {
        for extra in [&[][..], &["--policy", &policy][..]] {
            for (format, argv) in [
                ("nft", &["nft", "-c", "-f"][..]),
                ("iptables", &["iptables-restore", "--test", "--noflush"][..]),
                (
                    "ip6tables",
                    &["ip6tables-restore", "--test", "--noflush"][..],
                ),
            ] {
                let file = dir.join(format!("{scan}.{format}"));
                std::fs::write(&file, propose(scan, format, extra)).unwrap();
                let mut cmd = argv.to_vec();
                let path = file.to_str().unwrap();
                cmd.push(path);
                let out = ns.run(&cmd);
                assert!(
                    out.status.success(),
                    "{scan} {format} {extra:?} rejected: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    // A check is a check: nothing was loaded.
    assert_eq!(ns.ok(&["nft", "list", "tables"]), "");
}

/// apply's lockout guard asks `Proposal::admits`; it must say what the
/// kernel does. Probe a mix of ports from the client and compare.
fn assert_admits_agrees_with_the_kernel(scan_file: &std::path::Path, client: &Netns) {
    use autofw::Proto;
    let scan = autofw::read_saved_scan(scan_file).unwrap();
    let proposal = autofw::build(&scan, &autofw::Choices::default());
    let mut targets = Vec::new();
    for (addr, client_addr) in [(SERVER_V4, CLIENT_V4), (SERVER_V6, CLIENT_V6)] {
        for port in [22, 25, 953, 3306, 5622, 8080] {
            targets.push((addr, port, client_addr));
        }
    }
    let probes: Vec<(&str, u16)> = targets.iter().map(|(a, p, _)| (*a, *p)).collect();
    let got = probe_all(client, &probes);
    for ((addr, port, client_addr), probe) in targets.iter().zip(got) {
        let admitted = proposal.admits(autofw::Arrival {
            proto: Proto::Tcp,
            port: *port,
            source: client_addr.parse().unwrap(),
            destination: addr.parse().ok(),
            interface: Some("eth0"),
        });
        assert_eq!(
            admitted,
            probe == Probe::Open,
            "admits(tcp, {port}, {client_addr}) = {admitted} but the kernel said {probe:?} for {addr}"
        );
    }
}

/// Acceptance, nft: the seed host's proposal, loaded with `nft -f` as it is.
#[test]
fn seed_host_nft_lets_in_exactly_its_services() {
    if !require_root() {
        return;
    }
    let mut server = Netns::new("propose-nft-s");
    let client = Netns::new("propose-nft-c");
    link(&server, &client);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scan = dir.join("scan.json");
    start_seed_host(&mut server, &scan);
    assert_open_before_rules(&client);
    let rules = dir.join("rules.nft");
    Autofw::new(&[
        "propose",
        "--from",
        scan.to_str().unwrap(),
        "--out",
        rules.to_str().unwrap(),
    ])
    .stdout();
    server.ok(&["nft", "-f", rules.to_str().unwrap()]);
    let live = server.ok(&["nft", "list", "ruleset"]);
    assert!(
        live.contains("table inet autofw") && live.contains("policy drop"),
        "{live}"
    );
    assert_seed_rules_hold(&server, &client, "nft");
    assert_admits_agrees_with_the_kernel(&scan, &client);
}

/// Acceptance, iptables: the same host, loaded with `iptables-restore
/// --noflush` and `ip6tables-restore --noflush`.
#[test]
fn seed_host_iptables_lets_in_exactly_its_services() {
    if !require_root() {
        return;
    }
    let mut server = Netns::new("propose-ipt-s");
    let client = Netns::new("propose-ipt-c");
    link(&server, &client);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scan = dir.join("scan.json");
    start_seed_host(&mut server, &scan);
    assert_open_before_rules(&client);
    for (format, tool) in [
        ("iptables", "iptables-restore"),
        ("ip6tables", "ip6tables-restore"),
    ] {
        let rules = dir.join(format!("rules.{format}"));
        Autofw::new(&[
            "propose",
            "--from",
            scan.to_str().unwrap(),
            "--format",
            format,
            "--out",
            rules.to_str().unwrap(),
        ])
        .stdout();
        server.ok(&[tool, "--noflush", rules.to_str().unwrap()]);
    }
    assert_seed_rules_hold(&server, &client, "iptables");
}

/// The operator's choices, enforced by the kernel: ssh only from the admin
/// network and rate-limited per source, the client's IPv6 address
/// blocklisted.
const ADMIN_POLICY: &str = r#"
[service.ssh]
sources = ["192.0.2.2/32"]
limit = "1/minute"
limit_burst = 3

[blocklist]
addresses = ["198.51.100.0/24", "2001:db8::2"]
"#;

fn assert_policy_holds(loader: &str) {
    let mut server = Netns::new(&format!("propose-pol-{loader}-s"));
    let client = Netns::new(&format!("propose-pol-{loader}-c"));
    link(&server, &client);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sshd = Ssh::start(&server);
    let pid = sshd.pid();
    let dns = server.listen(Some("named"), &["udp:0.0.0.0:53", "udp:[::]:53"]);
    let listener = |proto: &str, addr: &str, port: u16, service: &str, pid: u32| {
        serde_json::json!({"proto": proto, "address": addr, "port": port, "exposure": "public",
            "service": service, "process": service, "pids": [pid], "risky": false})
    };
    let scan = serde_json::json!({"listeners": [
        listener("tcp", "0.0.0.0", 5622, "ssh", pid),
        listener("tcp", "::", 5622, "ssh", pid),
        listener("udp", "0.0.0.0", 53, "dns", dns),
        listener("udp", "::", 53, "dns", dns),
    ]});
    let scan_file = dir.join("scan.json");
    std::fs::write(&scan_file, scan.to_string()).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, ADMIN_POLICY).unwrap();
    let base = [
        "propose",
        "--from",
        scan_file.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ];
    if loader == "nft" {
        let rules = dir.join("rules.nft");
        let mut args = base.to_vec();
        args.extend(["--out", rules.to_str().unwrap()]);
        Autofw::new(&args).stdout();
        server.ok(&["nft", "-f", rules.to_str().unwrap()]);
    } else {
        let sets = dir.join("sets.ipset");
        for (format, tool) in [
            ("iptables", "iptables-restore"),
            ("ip6tables", "ip6tables-restore"),
        ] {
            let rules = dir.join(format!("rules.{format}"));
            let mut args = base.to_vec();
            args.extend(["--format", format, "--out", rules.to_str().unwrap()]);
            args.extend(["--ipset", sets.to_str().unwrap()]);
            Autofw::new(&args).stdout();
            server.ok(&[
                "ipset",
                "restore",
                "-exist",
                "-file",
                sets.to_str().unwrap(),
            ]);
            server.ok(&[tool, "--noflush", rules.to_str().unwrap()]);
        }
    }
    flush_neighbours(&server, &client);
    // IPv4: the admin network may reach ssh and DNS; IPv6: the client is
    // blocklisted, so nothing at all answers, not even ping.
    assert!(ping(&client, SERVER_V4), "{loader}: ping v4");
    assert!(probe_dns(&client, SERVER_V4, 53), "{loader}: dns v4");
    assert!(
        !ping(&client, SERVER_V6),
        "{loader}: ping v6 from a blocklisted address"
    );
    assert!(
        !probe_dns(&client, SERVER_V6, 53),
        "{loader}: dns v6 from a blocklisted address"
    );
    assert_eq!(
        probe_tcp(&client, SERVER_V6, 5622),
        Probe::Dropped,
        "{loader}"
    );
    // ssh from another address of the client, outside the sources: dropped.
    client.ok(&["ip", "addr", "add", "192.0.2.3/24", "dev", "eth0"]);
    assert_eq!(
        probe_tcp_from(&client, "192.0.2.3", SERVER_V4, 5622),
        Probe::Dropped,
        "{loader}: ssh from outside the sources"
    );
    // ssh: a burst of 3 new connections from one address, then dropped.
    for i in 0..3 {
        assert_eq!(
            probe_tcp(&client, SERVER_V4, 5622),
            Probe::Open,
            "{loader}: ssh #{i}"
        );
    }
    assert_eq!(
        probe_tcp(&client, SERVER_V4, 5622),
        Probe::Dropped,
        "{loader}: the 4th ssh connection in a burst should be rate-limited"
    );
    // apply's lockout guard sees the same: the admin address in, the others out.
    let args = autofw::PolicyOptions {
        policy: Some(policy.clone()),
        from: Some(scan_file.clone()),
        ..Default::default()
    };
    let (scan, choices) = autofw::gather(&args).unwrap();
    let proposal = autofw::build(&scan, &choices);
    let ssh = |src: &str| {
        let source: std::net::IpAddr = src.parse().unwrap();
        proposal.admits(autofw::Arrival {
            proto: autofw::Proto::Tcp,
            port: 5622,
            source,
            destination: if source.is_ipv4() {
                SERVER_V4
            } else {
                SERVER_V6
            }
            .parse()
            .ok(),
            interface: Some("eth0"),
        })
    };
    assert!(
        ssh(CLIENT_V4) && !ssh("192.0.2.3") && !ssh(CLIENT_V6),
        "{loader}"
    );
}

#[test]
fn policy_sources_limits_and_blocklist_hold_under_nft() {
    if !require_root() {
        return;
    }
    assert_policy_holds("nft");
}

#[test]
fn policy_sources_limits_and_blocklist_hold_under_iptables() {
    if !require_root() {
        return;
    }
    assert_policy_holds("iptables");
}

/// A Docker host with `userland-proxy: false`, as scan saw it: the published
/// ports are listeners with no process, only `forwarded_to` and `container`.
#[test]
fn published_ports_follow_allow_and_source_in_both_formats() {
    let out = Autofw::new(&["propose", "--from", &scan_path("docker-published")]).output();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The redis is risky: closed in both hooks, and the operator is told
    // which container it is.
    assert!(
        err.contains("container redis, forwarded to 172.17.0.3:6379"),
        "{err}"
    );
    assert!(
        text.contains("meta l4proto tcp ct original proto-dst 8080 return"),
        "{text}"
    );
    assert!(!text.contains("proto-dst 6379"), "{text}");
    // --source restricts it in the forward hook as in INPUT.
    let text = propose("docker-published", "nft", &["--source", "redis=10.0.0.0/8"]);
    assert!(
        text.contains("ip saddr 10.0.0.0/8 meta l4proto tcp ct original proto-dst 6379 return"),
        "{text}"
    );
    let text = propose(
        "docker-published",
        "iptables",
        &["--source", "redis=10.0.0.0/8"],
    );
    assert!(
        text.contains("-A AUTOFW-PUBLISHED -s 10.0.0.0/8 -p tcp -m conntrack --ctproto tcp --ctorigdstport 6379"),
        "{text}"
    );
    // No IPv6 network given: IPv6 stays closed for it.
    let text = propose(
        "docker-published",
        "ip6tables",
        &["--source", "redis=10.0.0.0/8"],
    );
    assert!(!text.contains("--ctorigdstport 6379"), "{text}");
    // --allow opens it to everyone.
    let text = propose("docker-published", "nft", &["--allow", "redis"]);
    assert!(
        text.contains("meta l4proto tcp ct original proto-dst 6379 return"),
        "{text}"
    );
}
