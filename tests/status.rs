//! `autofw status` end to end, in namespaces the tests create: a server with
//! real listeners and a client linked to it. The rules are applied from the
//! server's live scan, as an operator would (`apply --confirm --yes`, then
//! `autofw confirm`), then the host drifts: a new listener, a dead one, a
//! rollback, a flushed or hand-edited table. Status must see each, exit 1,
//! say the same in `--json`, and change nothing.

use crate::support::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, SystemTime};

/// A server namespace with ssh (a real sshd on 5622: a stand-in could not
/// prove its name) and a real nginx on http (80) listening publicly, a
/// client linked to it, and a temporary state directory.
struct Server {
    /// The daemons first, so that they stop before their namespace goes
    /// (fields drop in order).
    nginx: Daemon,
    _sshd: Ssh,
    ns: Netns,
    client: Netns,
    dir: tempfile::TempDir,
}

impl Server {
    fn new(tag: &str) -> Server {
        let ns = Netns::new(&format!("{tag}-s"));
        let client = Netns::new(&format!("{tag}-c"));
        link(&ns, &client);
        let sshd = Ssh::start(&ns);
        let nginx = start_nginx(&ns, &["0.0.0.0:80", "[::]:80"]);
        assert!(
            wait_until(Duration::from_secs(5), || {
                ns.ok(&["ss", "-Htln"]).contains("[::]:5622")
            }),
            "sshd did not start"
        );
        Server {
            ns,
            client,
            dir: tempfile::tempdir().unwrap(),
            nginx,
            _sshd: sshd,
        }
    }

    fn state(&self) -> String {
        self.dir.path().join("state").to_string_lossy().into_owned()
    }

    /// Start `apply --confirm --yes` from the live scan; return once its
    /// rules are loaded (the window stays open: stdin is at its end).
    fn start_apply(&self, extra: &[&str]) -> Child {
        let state = self.state();
        let child = Autofw::new(&[
            "apply",
            "--confirm",
            "--yes",
            "--timeout",
            "60",
            "--state-dir",
            &state,
        ])
        .args(extra)
        .inside(&self.ns)
        .spawn(Stdio::null());
        wait_for_applied_rules(&self.ns, &state, Duration::from_secs(15));
        child
    }

    /// Apply from the live scan and confirm, as an operator would.
    fn apply_confirmed(&self, extra: &[&str]) {
        apply_confirmed(&self.ns, &self.state(), extra, &[]);
    }

    fn status(&self) -> Output {
        self.ns.autofw(&["status", "--state-dir", &self.state()])
    }

    /// `status --json`: exit code and the parsed document.
    fn status_json(&self) -> (Option<i32>, Value) {
        let out = self
            .ns
            .autofw(&["status", "--json", "--state-dir", &self.state()]);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", show(&out)));
        (out.status.code(), value)
    }
}

/// `kind port` of each finding, for assertions that read like the report.
fn findings(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["port"].as_u64() {
            Some(port) => format!("{} {port}", f["kind"].as_str().unwrap()),
            None => f["kind"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// Every file of the state directory with its bytes and mtime: status must
/// leave it exactly as it found it. A directory that cannot be read fails
/// the test: two empty lists would compare equal and prove nothing.
fn state_files(dir: &str) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the state directory {dir}: {e}"));
    // status's two caches aside (docs/status.md: the other filters' verdict
    // and the applied rules' listing), which it may write.
    let caches = ["other-filters.json", "applied-listing.json"];
    let mut files: Vec<_> = entries
        .filter(|e| {
            e.as_ref()
                .map_or(true, |e| !caches.iter().any(|c| e.file_name() == *c))
        })
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, bytes, mtime)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn status_before_any_apply_says_so_and_needs_root() {
    if !require_root() {
        return;
    }
    let server = Server::new("st-none");
    let out = server.status();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("applied:         nothing"), "{stdout}");
    assert!(stdout.contains("nothing-applied"), "{stdout}");
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1));
    assert_eq!(report["drift"], true);
    assert_eq!(report["applied"], Value::Null);
    assert_eq!(findings(&report), ["nothing-applied"]);
    // Status only reads: no state directory was made, no rule loaded.
    assert!(!Path::new(&server.state()).exists(), "status wrote state");
    assert_eq!(server.ns.ruleset(), "");

    // As a user who cannot read the state directory: a clear message, exit 3.
    server.apply_confirmed(&[]);
    let out = Autofw::new(&["status", "--state-dir", &server.state()])
        .inside(&server.ns)
        .through(AS_NOBODY)
        .output();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("autofw status needs root: the state directory"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_new_public_listener_is_drift_until_the_rules_open_it() {
    if !require_root() {
        return;
    }
    let mut server = Server::new("st-new");
    server.apply_confirmed(&[]);
    let rules = server.ns.ruleset();
    let files = state_files(&server.state());

    let out = server.status();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("; confirmed; not persisted"), "{stdout}");
    assert!(
        stdout.contains("opened:          80/tcp http, 5622/tcp ssh"),
        "{stdout}"
    );
    assert!(stdout.contains("rollback window: none open"), "{stdout}");
    assert!(
        stdout.contains("live rules:      loaded, exactly as applied"),
        "{stdout}"
    );
    assert!(stdout.contains("no drift"), "{stdout}");
    let (code, report) = server.status_json();
    assert_eq!(code, Some(0));
    assert_eq!(report["drift"], false);
    assert_eq!(report["applied"]["confirmed"], true);
    assert_eq!(report["applied"]["backend"], "nft");
    assert_eq!(report["rules"]["state"], "live");
    assert_eq!(findings(&report), Vec::<String>::new());

    // A service started after the apply: the firewall drops it, and status says so.
    server
        .ns
        .listen(Some("stray"), &["tcp:0.0.0.0:8080", "tcp:[::]:8080"]);
    assert_eq!(probe_tcp(&server.client, SERVER_V4, 8080), Probe::Dropped);
    let out = server.status();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("unopened-listener 8080/tcp"), "{stdout}");
    assert!(stdout.contains("silently does not work"), "{stdout}");
    assert!(
        stdout.contains("`autofw allow 8080/tcp`, then `autofw apply --confirm`"),
        "{stdout}"
    );
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1));
    assert_eq!(report["drift"], true);
    assert_eq!(findings(&report), ["unopened-listener 8080"]);
    let finding = &report["findings"][0];
    assert_eq!(finding["proto"], "tcp");
    assert!(
        finding["owner"]
            .as_str()
            .unwrap()
            .starts_with("stray, pid "),
        "{finding}"
    );
    assert_eq!(finding["addresses"], serde_json::json!(["0.0.0.0", "::"]));

    // Status changed neither the firewall nor the state directory.
    assert_eq!(server.ns.ruleset(), rules);
    assert_eq!(state_files(&server.state()), files);

    // Applying again from the live scan opens it: no drift any more.
    server.apply_confirmed(&[]);
    assert_eq!(probe_tcp(&server.client, SERVER_V4, 8080), Probe::Open);
    let out = server.status();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn a_listener_that_died_leaves_a_stale_hole() {
    if !require_root() {
        return;
    }
    let mut server = Server::new("st-stale");
    server.apply_confirmed(&[]);
    server.nginx.stop();
    // The hole is real: the port is accepted, and now refused by the kernel
    // (nothing listens) rather than dropped.
    assert_eq!(probe_tcp(&server.client, SERVER_V4, 80), Probe::Refused);
    let out = server.status();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("stale-hole 80/tcp"),
        "{}",
        show(&out)
    );
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1));
    assert_eq!(findings(&report), ["stale-hole 80"]);
    assert_eq!(report["findings"][0]["service"], "http");
}

#[test]
fn rolled_back_or_flushed_rules_are_not_live() {
    if !require_root() {
        return;
    }
    let server = Server::new("st-gone");
    server.apply_confirmed(&[]);
    let out = server
        .ns
        .autofw(&["rollback", "--state-dir", &server.state()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = server.status();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stdout).contains("not-live"), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("were rolled back at"),
        "{}",
        show(&out)
    );
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1));
    assert_eq!(report["rules"]["state"], "rolled-back");
    assert_eq!(findings(&report), ["not-live"]);

    // Applied again, then the table is flushed away (as `nft flush ruleset` would).
    server.apply_confirmed(&[]);
    assert_eq!(server.status().status.code(), Some(0));
    server.ns.ok(&["nft", "delete", "table", "inet", "autofw"]);
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1));
    assert_eq!(report["rules"]["state"], "missing");
    assert_eq!(findings(&report), ["not-live"]);
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("table inet autofw is gone"), "{message}");
}

#[test]
fn a_hand_edit_is_reported_but_rate_meters_filling_up_are_not() {
    if !require_root() {
        return;
    }
    let server = Server::new("st-edit");
    // ssh rate-limited per source: every connection adds an element to a
    // dynamic set, which is the rules working, not drift.
    let policy = server.dir.path().join("policy.toml");
    std::fs::write(&policy, "[service.ssh]\nlimit = true\n").unwrap();
    server.apply_confirmed(&["--policy", policy.to_str().unwrap()]);
    for addr in [SERVER_V4, SERVER_V6] {
        assert_eq!(probe_tcp(&server.client, addr, 5622), Probe::Open, "{addr}");
    }
    let meters = server.ns.ok(&["nft", "list", "table", "inet", "autofw"]);
    assert!(
        meters.contains("192.0.2.2"),
        "the meter did not fill:\n{meters}"
    );
    let out = server.status();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    server.ns.ok(&[
        "nft", "add", "rule", "inet", "autofw", "input", "tcp", "dport", "9999", "accept",
    ]);
    let out = server.status();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("live rules:      loaded, but changed"),
        "{stdout}"
    );
    assert!(stdout.contains("+\t\ttcp dport 9999 accept"), "{stdout}");
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1));
    assert_eq!(report["rules"]["state"], "changed");
    assert_eq!(findings(&report), ["changed"]);
    let diff = report["findings"][0]["diff"].as_str().unwrap();
    assert!(diff.contains("+\t\ttcp dport 9999 accept"), "{diff}");
}

#[test]
fn an_open_window_is_shown_and_an_unguarded_one_reported() {
    if !require_root() {
        return;
    }
    let server = Server::new("st-win");
    let apply = server.start_apply(&[]);
    let (code, report) = server.status_json();
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["applied"]["confirmed"], false);
    let window = &report["window"];
    assert_eq!(window["watchdog_alive"], true, "{window}");
    assert_eq!(window["apply_alive"], true, "{window}");
    let left = window["seconds_left"].as_u64().unwrap();
    // The deadline is rounded up to whole seconds, so up to 61.
    assert!((50..=61).contains(&left), "{window}");
    assert!(
        text(&server.status().stdout).contains(" s left); watchdog pid "),
        "{}",
        show(&server.status())
    );

    // Both guards die (SIGKILL, by pid): nothing will roll back any more.
    let watchdog_pid = window["watchdog_pid"].as_u64().unwrap() as i32;
    let mut apply = apply;
    apply.kill().unwrap();
    apply.wait().unwrap();
    unsafe { libc::kill(watchdog_pid, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !Path::new(&format!(
        "/proc/{watchdog_pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!(
            "/proc/{watchdog_pid}/stat"
        ))
        .is_ok_and(|s| s.contains(") Z"))));
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(findings(&report), ["unguarded-window"]);
    assert_eq!(report["window"]["watchdog_alive"], false);
    // Such a window can no longer be confirmed (issue 10): confirm refuses
    // it and puts the old rules back, which ends the window finding.
    let out = server
        .ns
        .autofw(&["confirm", "--state-dir", &server.state()]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["window"], serde_json::Value::Null, "{report:#}");
    assert_eq!(report["rules"]["state"], "rolled-back", "{report:#}");
}

#[test]
fn ports_opened_ahead_and_risky_services() {
    if !require_root() {
        return;
    }
    let server = Server::new("st-risky");
    // redis beyond loopback: apply keeps it closed on purpose.
    let _redis = start_redis(&server.ns, &["0.0.0.0"]);
    // 5432 opened ahead of its service: nothing listens there yet.
    server.apply_confirmed(&["--allow", "5432/tcp"]);
    let (code, report) = server.status_json();
    assert_eq!(code, Some(0), "{report:#}");
    let closed = report["applied"]["closed"].as_array().unwrap();
    assert!(
        closed
            .iter()
            .any(|c| c["port"] == 6379 && c["service"] == "redis"),
        "{report:#}"
    );
    // Then a database binds the opened port: exposed (a real PostgreSQL,
    // as user postgres).
    let _postgres = start_postgres(&server.ns, &["0.0.0.0"]);
    assert_eq!(probe_tcp(&server.client, SERVER_V4, 5432), Probe::Open);
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(findings(&report), ["risky-exposed 5432"]);
    let out = server.status();
    assert!(
        text(&out.stdout).contains("a database, cache or admin service exposed"),
        "{}",
        show(&out)
    );
}

#[test]
fn iptables_backend_drift() {
    if !require_root() {
        return;
    }
    let server = Server::new("st-ipt");
    server.apply_confirmed(&["--backend", "iptables"]);
    let (code, report) = server.status_json();
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["applied"]["backend"], "iptables");
    assert_eq!(report["rules"]["state"], "live");

    // The listing of the applied rules is kept: a status with nothing
    // changed lists nothing again. With an `unshare` that fails first in
    // PATH (no scratch namespace can be made) the rules still read as live,
    // not as "unverified".
    assert!(
        Path::new(&server.state())
            .join("applied-listing.json")
            .exists()
    );
    let shims = tempfile::tempdir().unwrap();
    let unshare = shims.path().join("unshare");
    std::fs::write(&unshare, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&unshare, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shims.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = server
        .ns
        .command("env")
        .args([&format!("PATH={path}"), autofw_bin(), "status", "--json"])
        .args(["--state-dir", &server.state()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", show(&out)));
    assert_eq!(report["rules"]["state"], "live", "{report:#}");

    server.ns.ok(&[
        "iptables",
        "-A",
        "AUTOFW-INPUT",
        "-p",
        "tcp",
        "--dport",
        "9999",
        "-j",
        "ACCEPT",
    ]);
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(findings(&report), ["changed"]);
    let diff = report["findings"][0]["diff"].as_str().unwrap();
    assert!(
        diff.contains("+-A AUTOFW-INPUT -p tcp -m tcp --dport 9999 -j ACCEPT"),
        "{diff}"
    );

    for tool in ["iptables", "ip6tables"] {
        server.ns.ok(&[tool, "-D", "INPUT", "-j", "AUTOFW-INPUT"]);
        server.ns.ok(&[tool, "-F", "AUTOFW-INPUT"]);
        server.ns.ok(&[tool, "-X", "AUTOFW-INPUT"]);
    }
    let (code, report) = server.status_json();
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["rules"]["state"], "missing");
    let message = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("the AUTOFW-INPUT chains are gone"),
        "{message}"
    );
}

#[test]
fn help_documents_the_exit_status() {
    let out = Autofw::new(&["status", "--help"]).output();
    assert!(out.status.success(), "{}", show(&out));
    let help = text(&out.stdout);
    assert!(
        help.contains("Exit status 0: no drift; 1: drift found"),
        "{help}"
    );
    assert!(
        help.contains("/usr/share/doc/autofw/json-schema.md"),
        "{help}"
    );
}
