//! Blocklists at scale, end to end in namespaces: a 100,000-entry mixed
//! IPv4/IPv6 list loads through `apply` (sets compared element by element
//! with what the files say), packets from a listed address are dropped
//! while the rest pass, `autofw blocklist refresh` ends with exactly the new
//! content without touching a rule, a malformed list changes nothing, and a
//! rollback puts the previous elements back exactly. The million-entry run
//! is the benchmark (tests/bench/blocklist.sh), not a test.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

/// A listed source address the client probes from (documentation range).
const LISTED_CLIENT: &str = "192.0.2.3";
/// Another client address, listed only after the refresh.
const LISTED_LATER: &str = "192.0.2.4";
/// A listed IPv6 source of the client (its hash set: the seventh).
const LISTED_CLIENT_V6: &str = "2001:db8::7";

/// What a list file holds, as the tests expect nft to list it.
#[derive(Default, Clone)]
struct Expected {
    v4: BTreeSet<String>,
    v6: BTreeSet<String>,
    net_v4: BTreeSet<String>,
    net_v6: BTreeSet<String>,
}

/// A deterministic pseudo-random sequence (no crate needed for a test list).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 16
    }
}

/// `count` IPv4 addresses in 10.0.0.0/9 and IPv6 addresses in
/// 2001:db8:ff00::/40 (list data only: no traffic goes there), unique,
/// multiples of three: never adjacent (so none merge into a range), and
/// every low-bits value occurs (so every hash set of a shard is used).
fn addresses(seed: u64, v4_count: usize, v6_count: usize) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut rng = Lcg(seed);
    let mut v4 = BTreeSet::new();
    while v4.len() < v4_count {
        let n = (rng.next() as u32 % (0x0080_0000 / 3)) * 3;
        v4.insert(std::net::Ipv4Addr::from(0x0a00_0000 | n).to_string());
    }
    let mut v6 = BTreeSet::new();
    while v6.len() < v6_count {
        let n = (u128::from(rng.next()) % (0x1_0000_0000_0000 / 3)) * 3;
        let base: u128 = 0x2001_0db8_ff00_0000_0000_0000_0000_0000;
        v6.insert(std::net::Ipv6Addr::from(base | n).to_string());
    }
    (v4, v6)
}

/// The hash set a sharded single address lives in: its low six bits.
fn shard_set(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => format!("blocklist_v4_{:02}", u32::from(a) % 64),
        std::net::IpAddr::V6(a) => format!("blocklist_v6_{:02}", u128::from(a) % 64),
    }
}

/// Write `expected` as a list in the formats people download: a Spamhaus
/// header, `; SBL` comments, FireHOL `#` lines, blank lines, duplicates.
fn write_list(path: &Path, e: &Expected) {
    let mut text = String::from("; Spamhaus DROP List 2026/11/28 - (c) test\n; Expires: never\n\n");
    text.push_str("# FireHOL style comment\n");
    for (i, net) in e.net_v4.iter().enumerate() {
        let _ = writeln!(text, "{net} ; SBL{i}");
    }
    for a in e.v4.iter().chain(&e.v6).chain(&e.net_v6) {
        let _ = writeln!(text, "{a}");
    }
    // A duplicate and an address inside a listed network: merged away.
    if let Some(first) = e.v4.iter().next() {
        let _ = writeln!(text, "{first}");
    }
    std::fs::write(path, text).unwrap();
}

/// The live content of the four blocklist sets, as nft lists them in JSON:
/// the single addresses gathered from their 64 hash sets, each checked to
/// be in the set its low bits name (or else the packet path, which looks
/// only there, would let it in).
fn live_sets(ns: &Netns) -> Expected {
    let mut out = Expected::default();
    let json: Value =
        serde_json::from_str(&ns.ok(&["nft", "-j", "list", "table", "inet", "autofw"])).unwrap();
    let mut shards = 0;
    for set in json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("set"))
    {
        let name = set["name"].as_str().unwrap();
        let sharded = name.len() == "blocklist_v4_00".len();
        let into = match &name[..name.len().min("blocklist_vN".len())] {
            _ if name.starts_with("blocklist_net_v4") => &mut out.net_v4,
            _ if name.starts_with("blocklist_net_v6") => &mut out.net_v6,
            "blocklist_v4" => &mut out.v4,
            "blocklist_v6" => &mut out.v6,
            _ => continue,
        };
        shards += usize::from(sharded);
        for elem in set["elem"].as_array().into_iter().flatten() {
            let text = match elem {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.contains_key("prefix") => {
                    format!(
                        "{}/{}",
                        o["prefix"]["addr"].as_str().unwrap(),
                        o["prefix"]["len"]
                    )
                }
                Value::Object(o) if o.contains_key("range") => format!(
                    "{}-{}",
                    o["range"][0].as_str().unwrap(),
                    o["range"][1].as_str().unwrap()
                ),
                other => panic!("unexpected element {other}"),
            };
            if sharded {
                assert_eq!(shard_set(&text), name, "{text} in the wrong hash set");
            }
            into.insert(text);
        }
    }
    assert_eq!(shards, 128, "64 hash sets a family for a list from files");
    out
}

fn assert_sets(ns: &Netns, expected: &Expected, when: &str) {
    let live = live_sets(ns);
    for (name, l, e) in [
        ("blocklist_v4", &live.v4, &expected.v4),
        ("blocklist_v6", &live.v6, &expected.v6),
        ("blocklist_net_v4", &live.net_v4, &expected.net_v4),
        ("blocklist_net_v6", &live.net_v6, &expected.net_v6),
    ] {
        let missing: Vec<_> = e.difference(l).take(5).collect();
        let extra: Vec<_> = l.difference(e).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && l.len() == e.len(),
            "{when}: {name}: live {} vs expected {}; missing {missing:?}, extra {extra:?}",
            l.len(),
            e.len()
        );
    }
}

/// Can the client reach http (80) on the server from `source`?
fn http_from(host: &Host, source: &str) -> bool {
    let server = if source.contains(':') {
        SERVER_V6
    } else {
        SERVER_V4
    };
    probe_tcp_from(&host.client, source, server, 80) == Probe::Open
}

fn refresh(host: &Host) -> std::process::Output {
    host.server.autofw(&[
        "blocklist",
        "refresh",
        "--state-dir",
        &host.state(),
        "--root",
        &host.dir.path().join("root").to_string_lossy(),
    ])
}

#[test]
fn a_100k_mixed_list_loads_drops_its_sources_and_refreshes_exactly() {
    if !require_root() {
        return;
    }
    let host = Host::new("bl");
    for a in [LISTED_CLIENT, LISTED_LATER] {
        host.client
            .ok(&["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"]);
    }
    host.client.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{LISTED_CLIENT_V6}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    let dir = host.dir.path();
    let list = dir.join("drop.txt");
    std::fs::write(
        dir.join("policy.toml"),
        "[blocklist]\nfiles = [\"drop.txt\"]\n",
    )
    .unwrap();
    let policy = dir.join("policy.toml").to_string_lossy().into_owned();

    // 103,500 entries: 74,000 IPv4 and 25,000 IPv6 addresses, 4,000 IPv4
    // and 500 IPv6 networks. The IPv4 interval set holds 8,000 elements (a
    // start and an end each), past one netlink message (about 3,750 IPv4
    // elements) both ways: an element lost at a message boundary, on add
    // or on the dump, shows as a count or set that differs.
    let (mut v4, mut v6) = addresses(1, 74_000, 25_000);
    v4.insert(LISTED_CLIENT.to_string());
    v6.insert(LISTED_CLIENT_V6.to_string());
    let mut first = Expected {
        v4,
        v6,
        ..Default::default()
    };
    for i in 0..4_000 {
        // Every other /24, so that no two merge into one interval.
        first
            .net_v4
            .insert(format!("10.{}.{}.0/24", 200 + i / 128, i % 128 * 2));
    }
    for i in 0..500 {
        first
            .net_v6
            .insert(format!("2001:db8:{:x}::/48", 0x100 + i * 2));
    }
    assert_eq!(first.net_v4.len(), 4_000);
    write_list(&list, &first);

    let out = host.apply(&["--policy", &policy, "--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    // One line a set, never the elements.
    assert!(
        stdout.contains("blocklist_v4: 74,001 entries, +74,001 −0 since the live set"),
        "{stdout}"
    );
    assert!(!stdout.contains(LISTED_CLIENT), "elements were printed");
    assert!(
        stdout.lines().count() < 400,
        "{} lines",
        stdout.lines().count()
    );
    let confirmed = host.confirm();
    assert!(confirmed.status.success(), "{}", show(&confirmed));
    assert_sets(&host.server, &first, "after apply");
    let rules_before = host
        .server
        .ok(&["nft", "-t", "list", "table", "inet", "autofw"]);

    // Packets from the listed address are dropped, the rest pass.
    assert!(http_from(&host, CLIENT_V4), "an unlisted source is let in");
    assert!(
        !http_from(&host, LISTED_CLIENT),
        "a listed source is dropped"
    );
    assert!(
        http_from(&host, CLIENT_V6),
        "an unlisted IPv6 source is let in"
    );
    assert!(
        !http_from(&host, LISTED_CLIENT_V6),
        "a listed IPv6 source is dropped"
    );

    // Refresh: half the addresses go, new ones come, the networks change.
    let mut second = first.clone();
    second.v4 = first.v4.iter().step_by(2).cloned().collect();
    second.v4.remove(LISTED_CLIENT);
    second.v4.insert(LISTED_LATER.to_string());
    second.v6 = first.v6.iter().skip(1).step_by(2).cloned().collect();
    let (new_v4, new_v6) = addresses(2, 5_000, 5_000);
    second.v4.extend(new_v4);
    second.v6.extend(new_v6);
    second.net_v4.remove("10.200.0.0/24");
    second.net_v4.insert("10.250.0.0/16".to_string());
    write_list(&list, &second);
    let out = refresh(&host);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("since the live set"),
        "{}",
        show(&out)
    );
    assert_sets(&host.server, &second, "after refresh");
    assert_eq!(
        host.server
            .ok(&["nft", "-t", "list", "table", "inet", "autofw"]),
        rules_before,
        "refresh changed the rules"
    );
    assert!(http_from(&host, LISTED_CLIENT), "no longer listed: let in");
    assert!(
        !http_from(&host, LISTED_LATER),
        "listed by the refresh: dropped"
    );

    // status: the live sets match the files.
    let status = host
        .server
        .autofw(&["status", "--state-dir", &host.state(), "--json"]);
    let report: Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    assert!(
        !text(&status.stdout).contains("blocklist-differs"),
        "{}",
        show(&status)
    );
    assert!(report.is_object(), "{}", show(&status));

    // A malformed line: the refresh fails naming it, and nothing changes.
    let mut bad = std::fs::read_to_string(&list).unwrap();
    let line = bad.lines().count() + 1;
    bad.push_str("203.0.113.0/33\n");
    std::fs::write(&list, &bad).unwrap();
    let out = refresh(&host);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains(&format!("drop.txt:{line}:")),
        "{}",
        show(&out)
    );
    assert_sets(&host.server, &second, "after a failed refresh");

    // The files changed behind the live sets: status says so.
    let status = host
        .server
        .autofw(&["status", "--state-dir", &host.state()]);
    assert!(
        text(&status.stdout).contains("blocklist"),
        "{}",
        show(&status)
    );

    // Sets edited by hand: status says so, and a refresh repairs them.
    let mut third = second.clone();
    let dropped = third.v4.iter().nth(7).cloned().unwrap();
    third.v4.remove(&dropped);
    write_list(&list, &third);
    host.server.ok(&[
        "nft",
        "delete",
        "element",
        "inet",
        "autofw",
        &shard_set(&dropped),
        &format!("{{ {dropped} }}"),
    ]);
    host.server.ok(&[
        "nft",
        "add",
        "element",
        "inet",
        "autofw",
        &shard_set("198.51.100.77"),
        "{ 198.51.100.77 }",
    ]);
    let status = host
        .server
        .autofw(&["status", "--state-dir", &host.state()]);
    assert!(
        text(&status.stdout).contains("not what autofw loaded"),
        "{}",
        show(&status)
    );
    let out = refresh(&host);
    assert!(out.status.success(), "{}", show(&out));
    assert_sets(&host.server, &third, "refresh after a hand edit");
    let second = third;

    // A new apply rolled back: the refreshed elements come back exactly.
    write_list(&list, &first);
    let out = host.apply(&["--policy", &policy, "--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_sets(&host.server, &first, "second apply");
    let out = host
        .server
        .autofw(&["rollback", "--state-dir", &host.state()]);
    assert!(out.status.success(), "{}", show(&out));
    assert_sets(&host.server, &second, "after rollback");

    // The list confirmed, then a policy without a blocklist applied and
    // rolled back: the confirmed elements come back exactly.
    let out = host.apply(&["--policy", &policy, "--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = host.confirm();
    assert!(out.status.success(), "{}", show(&out));
    let out = host.apply(&["--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !host.server.ruleset().contains("blocklist_net_v4"),
        "{}",
        show(&out)
    );
    let out = host
        .server
        .autofw(&["rollback", "--state-dir", &host.state()]);
    assert!(out.status.success(), "{}", show(&out));
    assert_sets(&host.server, &first, "rolled back, no blocklist");
}

#[test]
fn a_malformed_list_changes_nothing_at_apply() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("blbad");
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("scan.json");
    write_scan(&scan, &[("ssh", "sshd", 22)]);
    std::fs::write(
        dir.path().join("policy.toml"),
        "[blocklist]\nfiles = [\"list.txt\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("list.txt"),
        "198.51.100.7\n; comment\n203.0.113.5/24 ; SBL1\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let policy = dir.path().join("policy.toml");
    let args = [
        "apply",
        "--confirm",
        "--yes",
        "--no-wait",
        "--from",
        scan.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let out = ns.autofw(&args);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("list.txt:3:") && err.contains("did you mean `203.0.113.0/24`"),
        "{err}"
    );
    assert!(!ns.ruleset().contains("autofw"), "{}", ns.ruleset());
    // --skip-bad-lines: counted, reported, and the rest loads.
    let mut skipping = args.to_vec();
    skipping.push("--skip-bad-lines");
    let out = ns.autofw(&skipping);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("skipped 1 malformed blocklist line"),
        "{}",
        show(&out)
    );
    let listed = ns.ok(&[
        "nft",
        "list",
        "set",
        "inet",
        "autofw",
        &shard_set("198.51.100.7"),
    ]);
    assert!(listed.contains("198.51.100.7"), "{listed}");
}

/// The kernel refuses the new elements (here: another tool put a network
/// into autofw's interval set between the table load and the elements,
/// and the new list's network overlaps it): apply fails cleanly, and the
/// previous rules and the previous blocklist are in force, element for
/// element.
#[test]
fn refused_elements_leave_the_previous_blocklist_in_force() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("blrefused");
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    write_scan(Path::new(&path("scan.json")), &[("ssh", "sshd", 22)]);
    std::fs::write(path("policy.toml"), "[blocklist]\nfiles = [\"list.txt\"]\n").unwrap();
    let apply = |env_path: Option<&str>| {
        let mut cmd = ns.command("env");
        if let Some(p) = env_path {
            cmd.arg(format!("PATH={p}"));
        }
        cmd.args([autofw_bin(), "apply", "--confirm", "--yes", "--no-wait"])
            .args([
                "--from",
                &path("scan.json"),
                "--policy",
                &path("policy.toml"),
            ])
            .args(["--state-dir", &path("state")])
            .output()
            .unwrap()
    };

    let (v4, v6) = addresses(3, 2_000, 500);
    let first = Expected {
        v4,
        v6,
        net_v4: ["198.51.100.0/24".to_string()].into(),
        ..Default::default()
    };
    write_list(&dir.path().join("list.txt"), &first);
    let out = apply(None);
    assert!(out.status.success(), "{}", show(&out));
    let confirmed = ns.autofw(&["confirm", "--state-dir", &path("state")]);
    assert!(confirmed.status.success(), "{}", show(&confirmed));
    assert_sets(&ns, &first, "first apply");
    let rules = ns.ok(&["nft", "-t", "-s", "list", "ruleset"]);

    // The second list: other addresses, and 203.0.113.0/24.
    let (v4, v6) = addresses(4, 2_000, 500);
    let second = Expected {
        v4,
        v6,
        net_v4: ["203.0.113.0/24".to_string()].into(),
        ..Default::default()
    };
    write_list(&dir.path().join("list.txt"), &second);
    // An `nft` that, the first time it loads a file into this namespace
    // (not the judge's scratch one), then adds 203.0.113.128/25 to the
    // fresh interval set, as another tool might.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let marker = path("meddled");
    let netns = ns.ok(&["readlink", "/proc/self/ns/net"]);
    let shim = bin.join("nft");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\n/usr/sbin/nft \"$@\"; rc=$?\n\
             here=$(readlink /proc/self/ns/net)\n\
             for a in \"$@\"; do if [ \"$a\" = -f ] && [ \"$here\" = '{}' ] && [ ! -e {marker} ]; then \
             touch {marker}; \
             /usr/sbin/nft add element inet autofw blocklist_net_v4 '{{ 203.0.113.128/25 }}'; fi; done\n\
             exit $rc\n",
            netns.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env_path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = apply(Some(&env_path));
    assert!(
        Path::new(&marker).exists(),
        "the shim never ran: {}",
        show(&out)
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("refused the blocklist elements")
            && err.contains("another program editing autofw's blocklist sets")
            && err.contains("the previous rules and blocklist were put back"),
        "{err}"
    );
    assert_sets(&ns, &first, "after the refused apply");
    assert_eq!(ns.ok(&["nft", "-t", "-s", "list", "ruleset"]), rules);
}
