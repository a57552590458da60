//! `autofw apply`, `confirm`, `rollback` end to end, in namespaces the tests
//! create: a server with real listeners, a client that probes it, and real
//! nftables / iptables-nft. The proposal comes from a saved scan (`--from`)
//! describing the listeners each test starts, so these tests exercise apply,
//! not the scanner.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn assert_services_in_rest_dropped(host: &Host) {
    for addr in [SERVER_V4, SERVER_V6] {
        assert_eq!(
            probe_tcp(&host.client, addr, 5622),
            Probe::Open,
            "ssh {addr}"
        );
        assert_eq!(
            probe_tcp(&host.client, addr, 80),
            Probe::Open,
            "http {addr}"
        );
        assert_eq!(
            probe_tcp(&host.client, addr, 8080),
            Probe::Dropped,
            "8080 {addr}"
        );
        assert_eq!(probe_tcp(&host.client, addr, 9), Probe::Dropped, "9 {addr}");
    }
}

#[test]
fn dry_run_shows_plan_and_diff_and_changes_nothing() {
    if !require_root() {
        return;
    }
    let host = Host::new("dry");
    let _fail2ban = add_foreign_rules(&host.server);
    let before = host.server.ruleset();
    let out = host.server.autofw(&[
        "apply",
        "--from",
        &host.scan(),
        "--state-dir",
        &host.state(),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("table inet autofw"), "{stdout}");
    assert!(stdout.contains("+++ new table inet autofw"), "{stdout}");
    assert!(stdout.contains("+\t\ttcp dport 5622 accept"), "{stdout}");
    assert!(stdout.contains("dry run: nothing was changed"), "{stdout}");
    assert_eq!(host.server.ruleset(), before);
    assert!(!Path::new(&host.state()).exists(), "a dry run wrote state");
}

#[test]
fn confirmed_apply_lets_services_in_and_drops_the_rest() {
    if !require_root() {
        return;
    }
    let host = Host::new("keep");
    let apply = host.apply_in_background(&["--timeout", "30"]);
    assert_services_in_rest_dropped(&host);
    let out = host.confirm_and_finish(apply);
    assert!(text(&out.stdout).contains("confirmed"), "{}", show(&out));
    // Kept after the deadline would have passed, too.
    assert!(!Path::new(&host.state()).join("window.json").exists());
    assert_services_in_rest_dropped(&host);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&host.state()).join("applied.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["life"]["state"], "confirmed");
    assert_eq!(record["rules"]["backend"], "nft");
    assert_eq!(record["life"]["persisted"], false);
    assert!(
        record["rules"]["text"]
            .as_str()
            .unwrap()
            .contains("table inet autofw")
    );
    // The state directory and its files are root-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(Path::new(&host.state())), 0o700);
    for f in ["applied.json", "snapshot.json", "before-apply.nft", "lock"] {
        assert_eq!(mode(&Path::new(&host.state()).join(f)), 0o600, "{f}");
    }
}

#[test]
fn unconfirmed_apply_restores_the_empty_ruleset_byte_for_byte() {
    if !require_root() {
        return;
    }
    let host = Host::new("empty");
    let before = host.server.ruleset();
    assert_eq!(before, "", "a fresh namespace has no rules");
    let started = std::time::Instant::now();
    let out = host.apply(&["--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        text(&out.stderr).contains("end of input is not a confirmation"),
        "{}",
        show(&out)
    );
    assert!(text(&out.stderr).contains("rolled back"), "{}", show(&out));
    assert_eq!(host.server.ruleset(), before);
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Open);
    // A late confirm is refused: there is nothing left to confirm.
    let late = host.confirm();
    assert_eq!(late.status.code(), Some(4), "{}", show(&late));
}

#[test]
fn sigkill_of_apply_during_the_window_still_rolls_back() {
    if !require_root() {
        return;
    }
    let host = Host::new("kill");
    let _fail2ban = add_foreign_rules(&host.server);
    let before = host.server.ruleset();
    let mut apply = host.apply_in_background(&["--timeout", "3"]);
    assert_ne!(host.server.ruleset(), before);
    apply.kill().unwrap(); // SIGKILL
    apply.wait().unwrap();
    // The watchdog holds the apply lock for the window apply left open.
    let second = host.apply(&["--timeout", "30"]);
    assert_eq!(second.status.code(), Some(4), "{}", show(&second));
    assert!(
        wait_until(Duration::from_secs(8), || host.server.ruleset() == before),
        "not rolled back after SIGKILL:\n{}",
        host.server.ruleset()
    );
    // The watchdog did it (it logs just after restoring).
    let log = Path::new(&host.state()).join("watchdog.log");
    assert!(
        wait_until(Duration::from_secs(2), || std::fs::read_to_string(&log)
            .unwrap()
            .contains("deadline passed: rolled back")),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // Each line starts with its time as people read it: RFC 3339 UTC.
    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        let time = line.split(' ').next().unwrap();
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{line}"
        );
    }
}

#[test]
fn foreign_tables_survive_apply_and_rollback() {
    if !require_root() {
        return;
    }
    let host = Host::new("foreign");
    let _fail2ban = add_foreign_rules(&host.server);
    let before = host.server.ruleset();
    let apply = host.apply_in_background(&["--timeout", "30"]);
    let during = host.server.ruleset();
    for name in [
        "chain DOCKER",
        "chain DOCKER-USER",
        "chain f2b-sshd",
        "table inet f2b-table",
        F2B_NGINX_BANNED,
        F2B_SSHD_BANNED,
    ] {
        assert!(during.contains(name), "{name} lost by apply:\n{during}");
    }
    host.confirm_and_finish(apply);
    // Later, the operator changes their mind.
    let out = host
        .server
        .autofw(&["rollback", "--state-dir", &host.state()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out.stdout).contains("identical"), "{}", show(&out));
    assert_eq!(host.server.ruleset(), before);
}

/// An engine that rewrites its own rules weeks after a confirmed apply
/// (netavark does, as containers come and go) is not said to have changed
/// them "during the window": the rollback names what happened, and leaves
/// the engine's rules alone.
#[test]
fn rollback_after_another_tool_changed_its_rules_says_since_that_apply() {
    if !require_root() {
        return;
    }
    let host = Host::new("since");
    let apply = host.apply_in_background(&["--timeout", "30"]);
    host.confirm_and_finish(apply);
    // After the confirm: an engine writes a table of its own.
    host.server.ok(&["nft", "add", "table", "inet", "netavark"]);
    host.server.ok(&[
        "nft",
        "add",
        "chain",
        "inet",
        "netavark",
        "forward",
        "{ type filter hook forward priority filter; policy accept; }",
    ]);
    let out = host
        .server
        .autofw(&["rollback", "--state-dir", &host.state()]);
    assert!(out.status.success(), "{}", show(&out));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("since that apply"), "{}", show(&out));
    assert!(!said.contains("during the window"), "{}", show(&out));
    assert!(
        host.server.ruleset().contains("table inet netavark"),
        "the engine's table was touched"
    );
}

#[test]
fn rollback_keeps_a_previous_autofw_table_in_its_place() {
    if !require_root() {
        return;
    }
    let host = Host::new("prev");
    // A first, confirmed apply; then Docker and fail2ban start after it.
    let apply = host.apply_in_background(&["--timeout", "30"]);
    host.confirm_and_finish(apply);
    let _fail2ban = add_foreign_rules(&host.server);
    let before = host.server.ruleset();
    assert!(before.find("table inet autofw") < before.find("table inet f2b-table"));
    // A second apply with other choices, not confirmed.
    let out = host.apply(&["--timeout", "2", "--block", "http"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(host.server.ruleset(), before);
}

#[test]
fn lockout_guard_refuses_blocking_this_ssh_session() {
    if !require_root() {
        return;
    }
    let host = Host::new("guard");
    let before = host.server.ruleset();
    let (scan, state) = (host.scan(), host.state());
    let out = Autofw::new(&[
        "apply",
        "--confirm",
        "--yes",
        "--block",
        "ssh",
        "--from",
        &scan,
        "--state-dir",
        &state,
    ])
    .inside(&host.server)
    .env("SSH_CONNECTION", "192.0.2.2 50000 192.0.2.1 5622")
    .output();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("refusing to lock you out"),
        "{}",
        show(&out)
    );
    assert!(
        text(&out.stderr).contains("tcp/5622 on 192.0.2.1 from 192.0.2.2"),
        "{}",
        show(&out)
    );
    assert_eq!(host.server.ruleset(), before);
}

#[test]
fn second_concurrent_apply_is_refused() {
    if !require_root() {
        return;
    }
    let host = Host::new("twice");
    let first = host.apply_in_background(&["--timeout", "30"]);
    let during = host.server.ruleset();
    let second = host.apply(&["--timeout", "30", "--block", "http"]);
    assert_eq!(second.status.code(), Some(4), "{}", show(&second));
    assert!(
        text(&second.stderr).contains("another `autofw apply` is running"),
        "{}",
        show(&second)
    );
    assert_eq!(host.server.ruleset(), during);
    // `no` at the first apply's prompt rolls back at once.
    let mut first = first;
    first.stdin.as_mut().unwrap().write_all(b"no\n").unwrap();
    let out = finish(first);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(host.server.ruleset(), "");
}

#[test]
fn missing_tool_or_not_root_is_a_clear_host_failure() {
    if !require_root() {
        return;
    }
    let host = Host::new("notool");
    let apply = Autofw::new(&[
        "apply",
        "--confirm",
        "--yes",
        "--from",
        &host.scan(),
        "--state-dir",
        &host.state(),
    ])
    .inside(&host.server);
    let out = apply.through(&["env", "PATH=/nonexistent"]).output();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("`nft` is not installed"),
        "{}",
        show(&out)
    );
    let out = Autofw::new(&[
        "apply",
        "--confirm",
        "--yes",
        "--from",
        &host.scan(),
        "--state-dir",
        &host.state(),
    ])
    .inside(&host.server)
    .through(AS_NOBODY)
    .output();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(text(&out.stderr).contains("needs root"), "{}", show(&out));
    assert_eq!(host.server.ruleset(), "");
}

#[test]
fn iptables_backend_applies_and_restores_exactly() {
    if !require_root() {
        return;
    }
    let host = Host::new("ipt");
    let _fail2ban = add_foreign_rules(&host.server);
    let before = host.server.ruleset();
    let save_before = iptables_saves(&host.server);
    // Unconfirmed: back exactly, foreign chains untouched.
    let apply = host.apply_in_background(&["--timeout", "3", "--backend", "iptables"]);
    let during = iptables_saves(&host.server);
    assert!(during.contains("-A INPUT -j AUTOFW-INPUT"), "{during}");
    assert!(during.contains("-A f2b-sshd -j RETURN"), "{during}");
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(host.server.ruleset(), before);
    assert_eq!(iptables_saves(&host.server), save_before);
    // Confirmed: kept.
    let apply = host.apply_in_background(&["--timeout", "30", "--backend", "iptables"]);
    host.confirm_and_finish(apply);
    assert_services_in_rest_dropped(&host);
    assert!(host.server.ruleset().contains("chain f2b-sshd"));
}

#[test]
fn iptables_backend_on_a_fresh_host_leaves_no_table_behind() {
    if !require_root() {
        return;
    }
    let host = Host::new("iptfresh");
    let out = host.apply(&["--timeout", "2", "--backend", "iptables"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(host.server.ruleset(), "");
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Open);
}

#[test]
fn iptables_blocklist_ipsets_are_loaded_and_undone() {
    if !require_root() {
        return;
    }
    let host = Host::new("iptset");
    let policy = host.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[blocklist]\naddresses = [\"198.51.100.0/24\", \"2001:db8:bad::/48\"]\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let before = host.server.ruleset();
    let apply = host.apply_in_background(&[
        "--timeout",
        "3",
        "--backend",
        "iptables",
        "--policy",
        policy,
    ]);
    let sets = host.server.ok(&["ipset", "list", "-n"]);
    assert!(
        sets.contains("autofw-block-v4") && sets.contains("autofw-block-v6"),
        "{sets}"
    );
    assert!(
        host.server
            .ok(&["ipset", "list", "autofw-block-v4"])
            .contains("198.51.100.0/24")
    );
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 5622), Probe::Open);
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(host.server.ruleset(), before);
    assert_eq!(
        host.server.ok(&["ipset", "list", "-n"]),
        "",
        "ipsets left behind"
    );
}

/// iptables-save and ip6tables-save of the filter table, without the
/// comment lines that carry a timestamp.
fn iptables_saves(ns: &Netns) -> String {
    let mut out = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        for line in ns.ok(&[tool]).lines().filter(|l| !l.starts_with('#')) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn apply_over_a_real_ssh_session() {
    if !require_root() {
        return;
    }
    let server = Netns::new("ssh-s");
    let client = Netns::new("ssh-c");
    link(&server, &client);
    let ssh = Ssh::start(&server);
    let _nginx = start_nginx(&server, &["0.0.0.0:80", "[::]:80"]);
    // Loopback-only: gets no rule, and is no business of the client.
    let _redis = start_redis(&server, &["127.0.0.1"]);
    assert!(wait_until(Duration::from_secs(5), || probe_tcp(
        &client, SERVER_V4, 5622
    ) == Probe::Open));
    // As an operator would: the live scan of this host, no saved one.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let bin = autofw_bin();
    let state = state.display();

    // `--block ssh` from this session is refused and changes nothing.
    let before = server.ruleset();
    let out = ssh
        .command(
            &client,
            &format!("{bin} apply --confirm --yes --block ssh --state-dir {state}"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("refusing to lock you out"),
        "{}",
        show(&out)
    );
    assert_eq!(server.ruleset(), before);
    // The same without SSH_CONNECTION (as under sudo): the guard finds the
    // session through the sshd process that owns its socket.
    let out = ssh
        .command(
            &client,
            &format!(
                "env -u SSH_CONNECTION {bin} apply --confirm --yes --block ssh --state-dir {state}"
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("the connection of sshd (pid"),
        "{}",
        show(&out)
    );
    assert_eq!(server.ruleset(), before);

    // Session A applies, then stays open (cat) after apply ends.
    let mut a = ssh
        .command(
            &client,
            &format!("{bin} apply --confirm --yes --timeout 30 --state-dir {state}; echo apply-exit=$?; exec cat"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_applied_rules(&server, &state.to_string(), Duration::from_secs(15));
    // A NEW login gets in and confirms.
    let out = ssh
        .command(&client, &format!("{bin} confirm --state-dir {state}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let mut stdout = BufReader::new(a.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "session A ended");
        if line.starts_with("apply-exit=") {
            break;
        }
    }
    assert_eq!(line.trim(), "apply-exit=0");
    // Session A lives on: what it is sent comes back.
    a.stdin
        .as_mut()
        .unwrap()
        .write_all(b"still here\n")
        .unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "still here");
    for addr in [SERVER_V4, SERVER_V6] {
        assert_eq!(probe_tcp(&client, addr, 5622), Probe::Open, "ssh {addr}");
        assert_eq!(probe_tcp(&client, addr, 80), Probe::Open, "http {addr}");
        assert_eq!(
            probe_tcp(&client, addr, 8080),
            Probe::Dropped,
            "8080 {addr}"
        );
    }
    drop(a.stdin.take());
    let _ = a.kill();
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let _ = a.wait();
}

#[test]
fn confirm_or_rollback_without_any_apply_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-used");
    for (command, what) in [
        ("confirm", "nothing to confirm"),
        ("rollback", "nothing to roll back"),
    ] {
        let out = Autofw::new(&[command, "--state-dir", missing.to_str().unwrap()]).output();
        assert_eq!(out.status.code(), Some(4), "{}", show(&out));
        assert!(text(&out.stderr).contains(what), "{}", show(&out));
        assert!(!missing.exists(), "{command} created the state directory");
    }
}
