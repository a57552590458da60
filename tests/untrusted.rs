//! Text from the host reaches the terminal escaped: a process that calls
//! itself with escape sequences (`prctl(PR_SET_NAME)`, as any process can)
//! must not rewrite the operator's screen through `scan`, `propose` or
//! `status`, in a namespace the test creates.

use crate::support::*;
use std::process::Stdio;
use std::time::Duration;

/// Clear the screen, retitle the window, ring the bell: 12 bytes, within
/// the kernel's 15 for a process name.
const EVIL: &str = "\x1b[2J\x1b]0;x\x07ev";
/// How autofw shows it.
const SHOWN: &str = "\\x1b[2J\\x1b]0;x\\x07ev";

/// Bytes a terminal acts on: C0 controls but newline and tab, DEL, and the
/// C1 controls (UTF-8 `\u{80}`..`\u{9f}`).
fn assert_no_controls(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "{what} has control characters {bad:?}:\n{text}"
    );
}

#[test]
fn an_escape_laden_process_name_is_shown_escaped() {
    if !require_root() {
        return;
    }
    let mut ns = Netns::new("esc");
    let _ssh = Ssh::start(&ns);
    // A public listener (opened, named in the rules' comments) and a risky
    // one (mysql by its port: left closed, said on stderr).
    ns.listen(Some(EVIL), &["tcp:0.0.0.0:8080", "tcp:0.0.0.0:3306"]);

    let scan = ns.autofw(&["scan"]);
    assert!(scan.status.success(), "{}", show(&scan));
    assert_no_controls("scan's table", &scan.stdout);
    assert!(text(&scan.stdout).contains(SHOWN), "{}", show(&scan));

    let propose = ns.autofw(&["propose"]);
    assert!(propose.status.success(), "{}", show(&propose));
    assert_no_controls("propose's rules", &propose.stdout);
    assert_no_controls("propose's messages", &propose.stderr);
    assert!(text(&propose.stdout).contains(SHOWN), "{}", show(&propose));
    assert!(
        text(&propose.stderr).contains(&format!("left closed: mysql 3306/tcp ({SHOWN}, pid")),
        "{}",
        show(&propose)
    );

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let apply = Autofw::new(&[
        "apply",
        "--confirm",
        "--yes",
        "--timeout",
        "60",
        "--state-dir",
        &state,
    ])
    .inside(&ns)
    .spawn(Stdio::null());
    wait_for_applied_rules(&ns, &state, Duration::from_secs(15));
    let confirm = ns.autofw(&["confirm", "--state-dir", &state]);
    assert!(confirm.status.success(), "{}", show(&confirm));
    let out = apply.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_no_controls("apply's output", &out.stdout);
    assert_no_controls("apply's messages", &out.stderr);

    // A new listener by the same name: status reports it by name.
    ns.listen(Some(EVIL), &["tcp:0.0.0.0:9090"]);
    let status = ns.autofw(&["status", "--state-dir", &state]);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert_no_controls("status", &status.stdout);
    let report = text(&status.stdout);
    assert!(report.contains("unopened-listener 9090/tcp"), "{report}");
    assert!(report.contains(&format!("({SHOWN}, pid")), "{report}");
}
