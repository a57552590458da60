//! The acceptance of issues 4 and 5, end to end, as an operator would live
//! it: the seed article's host (every daemon of its `netstat -tunlp`, with a
//! real OpenSSH server on 5622), reached only over SSH from a client
//! namespace. Apply runs from that SSH session on the live scan, is kept by
//! `autofw confirm` from a new login, persisted, and brought back after "the
//! reboot" (a fresh namespace), watched by `autofw status`; unconfirmed and
//! killed applies roll back to the old ruleset exactly.

use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::Duration;

/// The seed host behind a real sshd, and a client linked to it.
struct SeedHost {
    /// First, so that sshd stops before its namespace goes (fields drop in order).
    ssh: Ssh,
    server: Netns,
    client: Netns,
    dir: tempfile::TempDir,
}

impl SeedHost {
    fn start(tag: &str) -> SeedHost {
        let mut server = Netns::new(&format!("{tag}-s"));
        let client = Netns::new(&format!("{tag}-c"));
        link(&server, &client);
        let ssh = Ssh::start(&server);
        start_seed_services(&mut server, true);
        assert!(
            wait_until(Duration::from_secs(5), || probe_tcp(
                &client, SERVER_V4, 5622
            ) == Probe::Open),
            "sshd did not come up"
        );
        SeedHost {
            server,
            client,
            ssh,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> String {
        self.dir.path().join("state").display().to_string()
    }

    /// Run `remote` in a new SSH login and wait for it.
    fn login(&self, remote: &str) -> std::process::Output {
        self.ssh.command(&self.client, remote).output().unwrap()
    }

    /// Session A: `autofw apply --confirm --yes ARGS` from an SSH login that
    /// stays open afterwards (`exec cat`), with its stdin held by the test
    /// (an operator who does not type). Returns once the rules are loaded.
    fn apply_in_session(&self, args: &str) -> (Child, BufReader<ChildStdout>) {
        let remote = format!(
            "{} apply --confirm --yes --state-dir {} {args}; echo apply-exit=$?; exec cat",
            autofw_bin(),
            self.state()
        );
        let mut session = self
            .ssh
            .command(&self.client, &remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(session.stdout.take().unwrap());
        wait_for_applied_rules(&self.server, &self.state(), Duration::from_secs(20));
        (session, stdout)
    }
}

/// Read session lines until `apply-exit=N`; return N.
fn apply_exit(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the SSH session ended before apply did");
        if let Some(code) = line.trim().strip_prefix("apply-exit=") {
            return code.to_string();
        }
    }
}

#[test]
fn seed_host_applied_over_ssh_is_kept_persisted_and_restored_after_reboot() {
    if !require_root() {
        return;
    }
    let mut host = SeedHost::start("acc-keep");
    let state = host.state();
    // Boot files outlive the host: the disk survives the reboot.
    let boot = tempfile::tempdir().unwrap();
    let root = boot.path().display().to_string();
    let bin = autofw_bin();

    // The scan an operator reads first: the 12 public services, by name.
    let out = host.login(&format!("{bin} scan --json"));
    assert!(out.status.success(), "{}", show(&out));
    let scan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut seen: Vec<(String, u16, String)> = scan["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["proto"].as_str().unwrap().to_string(),
                l["port"].as_u64().unwrap() as u16,
                l["service"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    let mut want: Vec<(String, u16, String)> = [
        ("tcp", 21, "ftp"),
        ("tcp", 25, "smtp"),
        ("tcp", 53, "dns"),
        ("tcp", 80, "http"),
        ("tcp", 110, "pop3"),
        ("tcp", 143, "imap"),
        ("tcp", 443, "https"),
        ("tcp", 587, "submission"),
        ("tcp", 993, "imaps"),
        ("tcp", 995, "pop3s"),
        ("tcp", 5622, "ssh"),
        ("udp", 53, "dns"),
    ]
    .iter()
    .map(|(p, n, s)| (p.to_string(), *n, s.to_string()))
    .collect();
    want.sort();
    assert_eq!(seen, want, "public listeners of the seed host");

    // `--block ssh` from this very session is refused, and nothing changes.
    let before = host.server.ruleset();
    let out = host.login(&format!(
        "{bin} apply --confirm --yes --block ssh --state-dir {state} --persist --root {root}"
    ));
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(text(&out.stderr).contains("lock you out"), "{}", show(&out));
    assert_eq!(host.server.ruleset(), before);

    // Session A applies from the live scan, asking to persist.
    let (mut session, mut stdout) =
        host.apply_in_session(&format!("--timeout 60 --persist --root {root}"));
    assert!(
        !Path::new(&root).join("etc").exists(),
        "persisted before confirmation"
    );
    // A new login proves new connections work, and keeps the rules.
    let out = host.login(&format!("{bin} confirm --state-dir {state}"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(apply_exit(&mut stdout), "0");
    // Session A lives on.
    let stdin = session.stdin.as_mut().unwrap();
    stdin.write_all(b"still here\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "still here");

    // Every public service answers over IPv4 and IPv6; the rest is dropped.
    assert_seed_rules_hold(&host.server, &host.client, "applied over ssh");
    let confirmed = host.server.ruleset();

    // From cron: no drift, until a new service starts listening publicly.
    let out = host.server.autofw(&["status", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    host.server
        .listen(Some("node"), &["tcp:0.0.0.0:3000", "tcp:[::]:3000"]);
    let out = host
        .server
        .autofw(&["status", "--state-dir", &state, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = report.to_string();
    assert!(
        drift.contains("unopened-listener") && drift.contains("3000"),
        "{drift}"
    );
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 3000), Probe::Dropped);
    drop(session);
    drop(host); // the machine goes down: "the reboot"

    let fresh = Netns::new("acc-reboot");
    assert_eq!(fresh.ruleset(), "");
    let out = fresh.autofw(&["restore", "--root", &root]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        fresh.ruleset(),
        confirmed,
        "the reboot brought back other rules"
    );
}

#[test]
fn seed_host_unconfirmed_or_killed_apply_over_ssh_restores_the_old_ruleset() {
    if !require_root() {
        return;
    }
    let host = SeedHost::start("acc-undo");
    let state = host.state();
    let bin = autofw_bin();
    // Rules that others wrote (Docker, fail2ban) are part of what must come back.
    let _fail2ban = add_foreign_rules(&host.server);
    let before = host.server.ruleset();

    // Nobody confirms: the deadline rolls back, apply says so (exit 1).
    let (session, mut stdout) = host.apply_in_session("--timeout 3");
    assert_eq!(apply_exit(&mut stdout), "1");
    assert_eq!(host.server.ruleset(), before, "after an unconfirmed apply");
    drop(session);

    // The operator's SSH session dies and apply is SIGKILLed mid-window: the
    // watchdog still restores the old ruleset on time.
    let (mut session, _stdout) = host.apply_in_session("--timeout 4");
    let window = std::fs::read_to_string(Path::new(&state).join("window.json")).unwrap();
    let window: serde_json::Value = serde_json::from_str(&window).unwrap();
    let apply_pid = window["apply_pid"].as_u64().unwrap();
    assert!(apply_pid > 0, "{window}");
    // SIGKILL first, then the session: apply gets no chance to clean up.
    host.server.ok(&["kill", "-KILL", &apply_pid.to_string()]);
    session.kill().unwrap(); // the ssh client: the session is gone
    let _ = session.wait();
    assert_ne!(host.server.ruleset(), before, "the rules were not loaded");
    assert!(
        wait_until(Duration::from_secs(10), || host.server.ruleset() == before),
        "after SIGKILL the old ruleset did not come back:\n{}",
        host.server.ruleset()
    );
    // As before the apply, a closed port is refused again, not dropped.
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Refused);
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 5622), Probe::Open);
    let out = host.login(&format!("{bin} rollback --state-dir {state}"));
    assert_eq!(host.server.ruleset(), before, "{}", show(&out));
}
