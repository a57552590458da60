//! Day two (issue 19): living with the firewall after the first apply.
//! Each test drives the real binary in namespaces it creates: a server
//! with a real sshd and nginx ([`Host`]), a client that probes it, and,
//! where a person would be on one, a real SSH session from the client.

use crate::support::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

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
    // What is left is the empty base chains this test's iptables created.
    assert!(!host.server.ruleset().contains("AUTOFW") && before.is_empty());
    // Status reports a disabled host as such, and nothing else about rules.
    let status = status_json(&host);
    assert_eq!(status["live"]["state"], "disabled", "{status:#}");
    assert!(
        kinds(&status).contains(&"disabled".to_string()),
        "{status:#}"
    );
    assert!(
        !kinds(&status).contains(&"not-live".to_string()),
        "{status:#}"
    );

    // A later apply brings the rules back.
    let apply = host.apply_in_background(&["--timeout", "30", "--root", r]);
    host.confirm_and_finish(apply);
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8080), Probe::Dropped);
    assert!(host.server.ruleset().contains("tcp dport 443 accept"));
    let status = status_json(&host);
    assert_eq!(status["live"]["state"], "confirmed", "{status:#}");
    assert!(
        !kinds(&status).contains(&"disabled".to_string()),
        "{status:#}"
    );
}

/// What a command running in the background shows (stdout and stderr, as
/// a terminal would), copied as it comes.
struct Screen {
    child: std::process::Child,
    shown: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Screen {
    fn start(mut cmd: std::process::Command) -> Screen {
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for mut pipe in [out, err] {
            let copy = shown.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    copy.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Screen { child, shown }
    }
    fn text(&self) -> String {
        self.shown.lock().unwrap().clone()
    }
    fn wait_for(&self, what: &str, seconds: u64) {
        assert!(
            wait_until(Duration::from_secs(seconds), || self.text().contains(what)),
            "never showed {what:?}:\n{}",
            self.text()
        );
    }
    fn type_in(&mut self, bytes: &[u8]) {
        self.child.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        self.child.stdin.as_mut().unwrap().flush().unwrap();
    }
    /// Wait for the end; its exit code.
    fn end(&mut self, seconds: u64) -> Option<i32> {
        let ended = wait_until(Duration::from_secs(seconds), || {
            self.child.try_wait().ok().flatten().is_some()
        });
        if !ended {
            let _ = self.child.kill();
        }
        let status = self.child.wait().unwrap();
        // Let the copying threads catch up.
        std::thread::sleep(Duration::from_millis(200));
        assert!(ended, "did not end:\n{}", self.text());
        status.code()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn applied_json(state: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(Path::new(state).join("applied.json")).unwrap())
        .unwrap()
}

/// `autofw apply --confirm` + extra, typed by an operator over a real SSH
/// login with a terminal, answered `y` at `Apply these rules?`; returns
/// once the rules are loaded and `Keep these rules?` is asked.
fn apply_over_ssh(host: &Host, extra: &str) -> Screen {
    let remote = format!(
        "{} apply --confirm --from {} --state-dir {} {extra}",
        autofw_bin(),
        host.scan(),
        host.state()
    );
    let mut screen = Screen::start(host.ssh().command_on_terminal(&host.client, &remote));
    screen.wait_for("Apply these rules? [y/N]", 30);
    screen.type_in(b"y\n");
    screen.wait_for("Keep these rules? [yes/no]", 30);
    screen
}

/// Point 5: Ctrl-C at "Keep these rules?" over SSH rolls back at once, and
/// says so; the record says why.
#[test]
fn ctrl_c_at_keep_these_rules_over_ssh_rolls_back_at_once() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2ctrlc");
    let before = host.server.ruleset();
    let mut screen = apply_over_ssh(&host, "--timeout 600");
    assert!(host.server.ruleset().contains("table inet autofw"));
    let pressed = std::time::Instant::now();
    screen.type_in(b"\x03");
    let code = screen.end(20);
    let said = screen.text();
    assert!(pressed.elapsed() < Duration::from_secs(10), "{said}");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("interrupted: rolling back now"), "{said}");
    assert!(said.contains("rolled back"), "{said}");
    assert_eq!(host.server.ruleset(), before);
    assert!(!Path::new(&host.state()).join("window.json").exists());
    assert_eq!(applied_json(&host.state())["life"]["why"], "interrupted");
}

/// Point 5: a window that expires at the prompt says why (no confirmation
/// within N s), when, what is live now and the next step, and nothing
/// about the watchdog's lock.
#[test]
fn an_expired_window_says_why_when_what_is_live_and_what_next() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2expire");
    let before = host.server.ruleset();
    let mut screen = apply_over_ssh(&host, "--timeout 3 --allow 8443/tcp");
    let code = screen.end(30);
    let said = screen.text();
    assert_eq!(code, Some(1), "{said}");
    for expected in [
        "no confirmation within 3 s",
        "rolled back at ",
        "live now: ",
        "next: ",
        "--allow 8443/tcp",
    ] {
        assert!(said.contains(expected), "{expected:?}:\n{said}");
    }
    assert!(!said.contains("is held"), "{said}");
    assert!(!said.contains("window.lock"), "{said}");
    assert_eq!(host.server.ruleset(), before);
    assert_eq!(applied_json(&host.state())["life"]["why"], "expired");
}

/// Point 5: `confirm` of a window already confirmed exits 0 (a retried
/// script), and a confirm without `--persist` says the rules last until
/// reboot and how to keep them.
#[test]
fn confirm_twice_exits_0_and_without_persist_says_until_reboot() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2confirm");
    let apply = host.apply_in_background(&["--timeout", "30"]);
    let first = host.confirm();
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let said = text(&first.stdout);
    assert!(said.contains("until the next reboot"), "{said}");
    assert!(said.contains("--persist"), "{said}");
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let second = host.confirm();
    assert_eq!(second.status.code(), Some(0), "{}", show(&second));
    assert!(
        text(&second.stdout).contains("already confirmed"),
        "{}",
        show(&second)
    );
    assert!(host.server.ruleset().contains("table inet autofw"));
}

fn status_json(host: &Host) -> serde_json::Value {
    let out = autofw_in(host, &["status", "--json", "--state-dir", &host.state()]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
}

fn status_text(host: &Host) -> String {
    text(&autofw_in(host, &["status", "--state-dir", &host.state()]).stdout)
}

fn kinds(status: &serde_json::Value) -> Vec<String> {
    status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Point 3, the repro: apply; confirm; apply --allow 9999/tcp;
/// rollback; status. The confirmed rules of the first apply are loaded
/// exactly: status says so (restored by the rollback, from that apply),
/// not "not-live".
#[test]
fn status_after_a_rollback_names_the_confirmed_rules_it_restored() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2restored");
    let apply = host.apply_in_background(&["--timeout", "30"]);
    host.confirm_and_finish(apply);
    let first = applied_json(&host.state())["applied_at"].clone();
    let confirmed = host.server.ruleset();
    let apply = host.apply_in_background(&["--timeout", "30", "--allow", "9999/tcp"]);
    let out = autofw_in(&host, &["rollback", "--state-dir", &host.state()]);
    assert!(out.status.success(), "{}", show(&out));
    // The rollback says what is live now: the first apply's rules.
    assert!(
        text(&out.stdout).contains("live now: the rules of the apply at "),
        "{}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains(", confirmed at "),
        "{}",
        show(&out)
    );
    let _ = finish(apply);
    assert_eq!(host.server.ruleset(), confirmed);

    let status = status_json(&host);
    assert!(
        !kinds(&status).contains(&"not-live".to_string()),
        "{status:#}"
    );
    assert_eq!(status["live"]["state"], "restored", "{status:#}");
    assert_eq!(status["live"]["applied_at"], first, "{status:#}");
    let said = status_text(&host);
    assert!(said.contains("live:"), "{said}");
    assert!(said.contains("restored by the rollback"), "{said}");
    assert!(!said.contains("not-live"), "{said}");
}

/// Point 3: autofw's own rules of the other backend are drift; an apply
/// with the other backend removes them in the same step, and a rollback
/// puts both back.
#[test]
fn switching_backend_removes_the_other_backends_rules_and_rollback_restores_both() {
    if !require_root() {
        return;
    }
    let mut host = Host::new("d2switch");
    host.server
        .listen(Some("alt-https"), &["tcp:0.0.0.0:8443", "tcp:[::]:8443"]);
    let apply = host.apply_in_background(&["--timeout", "30"]);
    host.confirm_and_finish(apply);
    let nft_only = host.server.ruleset();
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8443), Probe::Dropped);

    // With the other backend: the nft table goes in the same step.
    let apply = host.apply_in_background(&[
        "--timeout",
        "30",
        "--backend",
        "iptables",
        "--allow",
        "8443/tcp",
    ]);
    assert!(
        !host.server.ruleset().contains("table inet autofw"),
        "the nft rules stayed beside the iptables ones"
    );
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8443), Probe::Open);
    // Rolled back: both as they were.
    let out = autofw_in(&host, &["rollback", "--state-dir", &host.state()]);
    assert!(out.status.success(), "{}", show(&out));
    let _ = finish(apply);
    assert_eq!(host.server.ruleset(), nft_only);
    assert!(!iptables_save(&host.server).contains("AUTOFW"));
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 8443), Probe::Dropped);

    // Left over by hand (or an older autofw): drift, named.
    let apply = host.apply_in_background(&["--timeout", "30", "--backend", "iptables"]);
    host.confirm_and_finish(apply);
    host.server.ok(&[
        "nft",
        "add table inet autofw; add chain inet autofw input { type filter hook input priority 0; policy drop; }",
    ]);
    let status = status_json(&host);
    assert!(
        kinds(&status).contains(&"other-backend".to_string()),
        "{status:#}"
    );
}

fn dry_run(host: &Host, extra: &[&str]) -> Output {
    let out = Autofw::new(&[
        "apply",
        "--from",
        &host.scan(),
        "--state-dir",
        &host.state(),
    ])
    .args(extra)
    .inside(&host.server)
    .output();
    assert!(out.status.success(), "{}", show(&out));
    out
}

/// Point 2: nothing closes in silence. A stopped daemon and a one-off
/// `--allow` not given again are said first, with why, before the diff;
/// the whole proposal only with `--verbose`; the hint repeats the flags.
#[test]
fn apply_starts_with_what_opens_and_closes_and_why() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2summary");
    let apply = host.apply_in_background(&["--timeout", "30", "--allow", "8443/tcp"]);
    host.confirm_and_finish(apply);
    // nginx stopped: the saved scan no longer has it.
    write_scan(
        &Path::new(&host.dir.path()).join("scan.json"),
        &[("ssh", "sshd", 5622)],
    );
    let out = dry_run(&host, &["--allow", "https", "--backend", "iptables"]);
    let said = text(&out.stdout);
    assert!(
        said.starts_with("summary: 2 ports open, 2 ports close\n"),
        "{said}"
    );
    let closes_http = said
        .find("  CLOSES:       80/tcp http: nothing listens on it now")
        .expect(&said);
    let closes_8443 = said
        .find("  CLOSES:       8443/tcp https-alt: opened by `--allow 8443/tcp` at the last apply")
        .expect(&said);
    assert!(
        said.contains("  opens:        443/tcp https: allowed by --allow https"),
        "{said}"
    );
    assert!(said.contains("  stays open:   5622/tcp ssh"), "{said}");
    assert!(
        said.contains("  removes:      autofw's nft rules (table inet autofw)"),
        "{said}"
    );
    let diff = said.find("--- live").expect(&said);
    assert!(closes_http < diff && closes_8443 < diff, "{said}");
    assert!(
        !said.contains("# autofw proposal"),
        "the whole proposal without --verbose:\n{said}"
    );
    assert!(
        said.contains("--confirm --allow https --backend iptables")
            || said.contains("--confirm --backend iptables --allow https"),
        "the hint drops the flags given:\n{said}"
    );
    let verbose = text(&dry_run(&host, &["--verbose"]).stdout);
    assert!(verbose.contains("# autofw proposal"), "{verbose}");

    // --json carries the same summary.
    let report = json_of(&dry_run(&host, &["--json"]));
    let closes: Vec<u64> = report["summary"]["closes"]
        .as_array()
        .expect("a summary in the JSON report")
        .iter()
        .map(|l| l["port"].as_u64().unwrap())
        .collect();
    assert_eq!(closes, [80, 8443], "{report:#}");
}

/// Point 2: an apply with nothing to change says so and opens no window;
/// a second `apply --confirm` during an open window refuses before
/// printing a plan.
#[test]
fn nothing_to_change_opens_no_window_and_a_second_apply_refuses_first() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2nochange");
    let apply = host.apply_in_background(&["--timeout", "30"]);
    // A second apply while that window is open: refused, no plan.
    let second = host.apply(&[]);
    assert_eq!(second.status.code(), Some(4), "{}", show(&second));
    assert_eq!(text(&second.stdout), "", "{}", show(&second));
    assert!(text(&second.stderr).contains("window"), "{}", show(&second));
    // disable refuses too while the window is open: it would pull the
    // rules from under the window's decision.
    let root = tempfile::tempdir().unwrap();
    let disable = autofw_in(
        &host,
        &[
            "disable",
            "--state-dir",
            &host.state(),
            "--root",
            root.path().to_str().unwrap(),
        ],
    );
    assert_eq!(disable.status.code(), Some(4), "{}", show(&disable));
    assert!(
        text(&disable.stderr).contains("a rollback window is open"),
        "{}",
        show(&disable)
    );
    assert!(host.server.ruleset().contains("table inet autofw"));
    host.confirm_and_finish(apply);

    let state = Path::new(&host.state()).to_path_buf();
    let out = Autofw::new(&[
        "apply",
        "--confirm",
        "--from",
        &host.scan(),
        "--state-dir",
        &host.state(),
    ])
    .inside(&host.server)
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let said = text(&out.stdout);
    assert!(said.contains("nothing to change"), "{said}");
    assert!(said.contains("no rollback window"), "{said}");
    assert!(
        !text(&out.stderr).contains("Apply these rules?"),
        "{}",
        show(&out)
    );
    assert!(!state.join("window.json").exists());
    assert_eq!(applied_json(&host.state())["life"]["state"], "confirmed");
}

/// Nothing is loaded that status does not report: autofw's nft table is
/// there exactly when status names live nft rules, its iptables chains
/// exactly when it names live iptables rules.
fn loaded_as_status_says(host: &Host, status: &serde_json::Value, step: &str) {
    let live_state = status["live"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rules_live = matches!(live_state.as_str(), "confirmed" | "in-window" | "restored");
    let backend = match live_state.as_str() {
        // After a rollback, the restored rules are the previous apply's.
        "restored" => "nft",
        _ => status["applied"]["backend"].as_str().unwrap_or_default(),
    };
    let nft = host.server.ruleset().contains("table inet autofw");
    let iptables = iptables_save(&host.server).contains("AUTOFW-INPUT");
    assert_eq!(
        nft,
        rules_live && backend == "nft",
        "{step}: nft\n{status:#}"
    );
    assert_eq!(
        iptables,
        rules_live && backend == "iptables",
        "{step}: iptables\n{status:#}"
    );
    assert!(
        !kinds(status).contains(&"other-backend".to_string()),
        "{step}\n{status:#}"
    );
}

/// The acceptance: an operator's week on a namespace host, each
/// step's output saying what happened and why, status right after each.
#[test]
fn an_operators_week() {
    if !require_root() {
        return;
    }
    let host = Host::new("d2week");
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap().to_string();
    let policy = root.path().join("etc/autofw/policy.toml");
    let state = host.state();
    let status = |step: &str, expected: &str| {
        let s = status_json(&host);
        assert_eq!(s["live"]["state"], expected, "{step}\n{s:#}");
        loaded_as_status_says(&host, &s, step);
        s
    };
    let confirmed_apply = |extra: &[&str]| -> String {
        let mut args = vec!["--timeout", "30", "--root", &r];
        args.extend_from_slice(extra);
        let apply = host.apply_in_background(&args);
        text(&host.confirm_and_finish(apply).stdout)
    };

    // Monday: allow https through the policy, apply, confirm.
    let out = autofw_in(
        &host,
        &["allow", "https", "--policy", policy.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("autofw apply --confirm"),
        "{}",
        show(&out)
    );
    let said = confirmed_apply(&[]);
    assert!(
        said.contains("opens:        443/tcp https: allowed by"),
        "{said}"
    );
    assert!(
        said.contains("not persisted: they last until the next reboot"),
        "{said}"
    );
    status("monday", "confirmed");

    // Tuesday: a one-off --allow; the policy's 443 stays open.
    let said = confirmed_apply(&["--allow", "9100/tcp"]);
    assert!(said.contains("opens:        9100/tcp"), "{said}");
    assert!(said.contains("443/tcp https"), "{said}");
    assert!(!said.contains("CLOSES"), "{said}");
    status("tuesday", "confirmed");

    // Wednesday: nginx stopped; the next apply says why 80 and 9100 close.
    write_scan(&host.dir.path().join("scan.json"), &[("ssh", "sshd", 5622)]);
    let said = confirmed_apply(&[]);
    assert!(
        said.contains("CLOSES:       80/tcp http: nothing listens on it now"),
        "{said}"
    );
    assert!(
        said.contains("9100/tcp")
            && said.contains("opened by `--allow 9100/tcp` at the last apply"),
        "{said}"
    );
    status("wednesday", "confirmed");

    // Thursday: an apply with nothing to change opens no window.
    let out = Autofw::new(&[
        "apply",
        "--confirm",
        "--from",
        &host.scan(),
        "--state-dir",
        &state,
        "--root",
        &r,
    ])
    .inside(&host.server)
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("nothing to change"),
        "{}",
        show(&out)
    );
    assert!(!Path::new(&state).join("window.json").exists());
    status("thursday", "confirmed");

    // Friday: an apply rolled back; status names the rules it restored.
    let apply = host.apply_in_background(&["--timeout", "30", "--root", &r, "--allow", "9999/tcp"]);
    let out = autofw_in(&host, &["rollback", "--state-dir", &state]);
    assert!(out.status.success(), "{}", show(&out));
    let out = finish(apply);
    assert!(text(&out.stderr).contains("rolled back"), "{}", show(&out));
    let s = status("friday", "restored");
    assert!(!kinds(&s).contains(&"not-live".to_string()), "{s:#}");

    // Saturday: confirm twice (a retried script).
    let apply = host.apply_in_background(&["--timeout", "30", "--root", &r, "--allow", "9999/tcp"]);
    host.confirm_and_finish(apply);
    let again = host.confirm();
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(
        text(&again.stdout).contains("already confirmed"),
        "{}",
        show(&again)
    );
    status("saturday", "confirmed");

    // Sunday: a switch to iptables removes the nft table in the same step.
    let said = confirmed_apply(&["--backend", "iptables"]);
    assert!(said.contains("removes:      autofw's nft rules"), "{said}");
    let s = status("sunday", "confirmed");
    assert_eq!(s["applied"]["backend"], "iptables");

    // Monday again: disable; nothing of autofw is loaded, status says so.
    let out = autofw_in(&host, &["disable", "--state-dir", &state, "--root", &r]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("UNFILTERED now"),
        "{}",
        show(&out)
    );
    status("disabled", "disabled");

    // A lockout refused over SSH: nothing changes, status unchanged.
    let remote = format!(
        "{} apply --confirm --yes --block ssh --from {} --state-dir {state} --root {r}",
        autofw_bin(),
        host.scan()
    );
    let out = host.ssh().command(&host.client, &remote).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("refusing to lock you out"),
        "{}",
        show(&out)
    );
    status("lockout refused", "disabled");

    // The drop log, as its own help says.
    let out = autofw_in(&host, &["log", "--since", "-24h"]);
    assert!(out.status.success(), "{}", show(&out));

    // An expired window over SSH: said, and the host stays disabled.
    let mut screen = apply_over_ssh(&host, &format!("--timeout 3 --root {r}"));
    assert_eq!(screen.end(30), Some(1), "{}", screen.text());
    let said = screen.text();
    assert!(said.contains("no confirmation within 3 s"), "{said}");
    assert!(said.contains("live now: "), "{said}");
    assert!(!said.contains("is held"), "{said}");
    status("expired", "disabled");
}
