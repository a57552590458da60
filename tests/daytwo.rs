//! Day two (issue 19): living with the firewall after the first apply.
//! Each test drives the real binary in namespaces it creates: a server
//! with a real sshd and nginx ([`Host`]), a client that probes it, and,
//! where a person would be on one, a real SSH session from the client.

use crate::support::*;
use std::path::Path;
use std::process::Output;

fn autofw_in(host: &Host, args: &[&str]) -> Output {
    host.server.autofw(args)
}

fn iptables_save(ns: &Netns) -> String {
    ns.ok(&["iptables-save", "-t", "filter"]) + &ns.ok(&["ip6tables-save", "-t", "filter"])
}

/// Point 4: `autofw disable` removes autofw's rules of both backends and its
/// boot hook, keeps the policy and the state, says what is unfiltered now;
/// a later apply brings the rules back.
#[test]
fn disable_removes_both_backends_and_the_boot_hook_and_apply_brings_them_back() {
    if !require_root() {
        return;
    }
    let host = Host::new("disable");
    let before = host.server.ruleset();
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let policy = root.path().join("etc/autofw/policy.toml");
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    std::fs::write(&policy, "# the operator's policy\nallow = [\"https\"]\n").unwrap();
    let apply = host.apply_in_background(&["--timeout", "30", "--persist", "--root", r]);
    host.confirm_and_finish(apply);
    assert!(root.path().join("etc/autofw/rules.nft").exists());
    // autofw's own rules of the other backend, as an earlier
    // `apply --backend iptables` leaves them.
    for cmd in [
        "iptables -N AUTOFW-INPUT",
        "iptables -A AUTOFW-INPUT -p tcp --dport 8080 -j DROP",
        "iptables -A INPUT -j AUTOFW-INPUT",
        "ip6tables -N AUTOFW-INPUT",
        "ip6tables -A INPUT -j AUTOFW-INPUT",
    ] {
        host.server.ok(&cmd.split(' ').collect::<Vec<_>>());
    }
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Dropped);

    let state = host.state();
    let out = autofw_in(&host, &["disable", "--state-dir", &state, "--root", r]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let said = text(&out.stdout);
    for expected in [
        "nft table inet autofw",
        "iptables and ip6tables AUTOFW-* chains",
        "rules.nft",
        "UNFILTERED now",
        "5622/tcp ssh",
        "80/tcp http",
        "8080/tcp",
        "autofw apply --confirm --state-dir",
    ] {
        assert!(said.contains(expected), "{expected}: {said}");
    }
    let live = host.server.ruleset();
    assert!(!live.contains("autofw"), "{live}");
    assert!(!iptables_save(&host.server).contains("AUTOFW"));
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Open);
    assert!(!root.path().join("etc/autofw/rules.nft").exists());
    // The policy and the state stay.
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        "# the operator's policy\nallow = [\"https\"]\n"
    );
    assert!(Path::new(&state).join("applied.json").exists());
    let _ = before;

    // A later apply brings the rules back.
    let apply = host.apply_in_background(&["--timeout", "30", "--root", r]);
    host.confirm_and_finish(apply);
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Dropped);
    assert!(host.server.ruleset().contains("tcp dport 443 accept"));
}
