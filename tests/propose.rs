//! `autofw propose`: snapshots of the rendered rulesets for the fixture
//! scans, errors for bad choices, and the kernel's own verdict: every
//! proposal loads in a namespace, and loaded, lets in exactly what it says.

use crate::support::*;
use std::process::{Command, Output};

const SCANS: &[&str] = &["seed-host", "docker-host", "risky-host", "ipv6-host"];
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

/// Run `autofw args` on the host, in the crate root (propose never touches
/// the host's firewall).
fn autofw(args: &[&str]) -> Output {
    Command::new(autofw_bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("cannot run autofw")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "autofw failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn propose(scan: &str, format: &str, extra: &[&str]) -> String {
    let path = scan_path(scan);
    let mut args = vec!["propose", "--from", &path, "--format", format];
    args.extend_from_slice(extra);
    stdout(&autofw(&args))
}

#[test]
fn snapshots_of_every_fixture_in_every_format() {
    for scan in SCANS {
        for format in FORMATS {
            let text = propose(scan, format, &[]);
            insta::assert_snapshot!(format!("{scan}.{format}"), text);
        }
    }
}

#[test]
fn snapshots_with_a_policy_file() {
    let policy = policy_path("admin.toml");
    for format in FORMATS {
        let text = propose(
            "seed-host",
            format,
            &["--policy", &policy, "--allow", "mysql"],
        );
        insta::assert_snapshot!(format!("seed-host-admin.{format}"), text);
    }
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
    let out = autofw(&["propose", "--from", &path]);
    let text = stdout(&out);
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
fn docker_hosts_get_a_warning_and_keep_forwarding() {
    let path = scan_path("docker-host");
    let out = autofw(&["propose", "--from", &path]);
    let text = stdout(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("8080/tcp is published by Docker"), "{err}");
    assert!(!text.contains("hook forward"), "{text}");
    assert!(text.contains("docker0"), "{text}");
    let text = propose("docker-host", "iptables", &[]);
    assert!(!text.contains(":FORWARD"), "{text}");
    let text = propose("seed-host", "iptables", &[]);
    assert!(text.contains(":FORWARD DROP"), "{text}");
}

#[test]
fn json_prints_the_model_with_reasons() {
    let text = propose("seed-host", "nft", &["--json"]);
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
    let dir = std::env::temp_dir().join(format!("autofw-propose-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("rules.nft");
    let sets = dir.join("sets.ipset");
    let policy = policy_path("admin.toml");
    let printed = stdout(&autofw(&[
        "propose",
        "--from",
        &scan_path("seed-host"),
        "--policy",
        &policy,
        "--out",
        out.to_str().unwrap(),
        "--ipset",
        sets.to_str().unwrap(),
    ]));
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
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each bad input: exit 2 and a message naming the problem and its place.
#[test]
fn bad_choices_exit_2_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("autofw-propose-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
        let out = autofw(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.starts_with("autofw: "), "{err}");
        for w in wanted {
            assert!(err.contains(&w), "{extra:?}: wanted {w:?} in {err}");
        }
        assert!(out.stdout.is_empty(), "{extra:?} printed a ruleset");
    }
    let out = autofw(&["propose", "--from", bad_scan.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("saved scan {}", bad_scan.display())),
        "{err}"
    );
    let out = autofw(&["propose", "--from", "/nonexistent/scan.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scan.json"));
    std::fs::remove_dir_all(&dir).unwrap();
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
    let dir = std::env::temp_dir().join(format!("autofw-propose-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sets = dir.join("sets.ipset");
    // The policy's blocklist needs its ipsets for the iptables formats.
    stdout(&autofw(&[
        "propose",
        "--from",
        &scan_path("seed-host"),
        "--policy",
        &policy,
        "--ipset",
        sets.to_str().unwrap(),
    ]));
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
    std::fs::remove_dir_all(&dir).unwrap();
}
