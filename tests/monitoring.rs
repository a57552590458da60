//! What an operator's tools read: `status --format prometheus` (checked by
//! Prometheus's own `promtool check metrics`), `autofw log` on captured
//! kernel log lines, and the generated man pages and completions.

use crate::support::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `promtool check metrics` on `text`: Prometheus's own linter for the
/// exposition format (Debian package `prometheus`, installed by ./test.sh).
fn promtool_check(text: &str) -> Output {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package (./test.sh does)"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The value of one sample line `name{labels} value`.
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_string)
    })
}

#[test]
fn prometheus_metrics_parse_carry_the_drift_and_exit_0() {
    if !require_root() {
        return;
    }
    let host = Host::new("prom");
    let apply = host.apply_in_background(&["--timeout", "60"]);
    let state = host.state();

    // In the window: the window is open.
    let out = host
        .server
        .autofw(&["status", "--format", "prometheus", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let metrics = text(&out.stdout);
    assert_eq!(
        sample(&metrics, "autofw_rollback_window_open").as_deref(),
        Some("1"),
        "{metrics}"
    );

    host.confirm_and_finish(apply);

    // The stray listener on 8080 is not in the rules: drift. Text status
    // says so with exit 1; the metrics say it with exit 0.
    let plain = host.server.autofw(&["status", "--state-dir", &state]);
    assert_eq!(plain.status.code(), Some(1), "{}", show(&plain));
    let out = host
        .server
        .autofw(&["status", "--format", "prometheus", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let metrics = text(&out.stdout);
    let check = promtool_check(&metrics);
    assert!(
        check.status.success(),
        "promtool: {}\n{metrics}",
        show(&check)
    );
    for (series, value) in [
        ("autofw_drift", "1"),
        ("autofw_drift_findings{kind=\"unopened-listener\"}", "1"),
        ("autofw_drift_findings{kind=\"stale-hole\"}", "0"),
        ("autofw_drift_findings{kind=\"not-live\"}", "0"),
        ("autofw_ports{state=\"open\"}", "2"),
        ("autofw_applied", "1"),
        ("autofw_rules_loaded", "1"),
        ("autofw_rollback_window_open", "0"),
    ] {
        assert_eq!(
            sample(&metrics, series).as_deref(),
            Some(value),
            "{series} in\n{metrics}"
        );
    }
    let age: u64 = sample(&metrics, "autofw_seconds_since_last_apply")
        .unwrap()
        .parse()
        .unwrap();
    assert!(age < 120, "{metrics}");

    // --out: the textfile collector's file, written whole, readable by
    // node_exporter, no temp file left beside it.
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("autofw.prom");
    let out = host.server.autofw(&[
        "status",
        "--format",
        "prometheus",
        "--out",
        prom.to_str().unwrap(),
        "--state-dir",
        &state,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&prom).unwrap();
    assert!(promtool_check(&written).status.success(), "{written}");
    assert_eq!(sample(&written, "autofw_drift").as_deref(), Some("1"));
    assert_eq!(
        std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The rules flushed (a reboot without persist): not live, in the metrics.
    let flushed = host.server.run(&["nft", "flush", "ruleset"]);
    assert!(flushed.status.success());
    let out = host
        .server
        .autofw(&["status", "--format", "prometheus", "--state-dir", &state]);
    let metrics = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        sample(&metrics, "autofw_rules_loaded").as_deref(),
        Some("0"),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "autofw_drift_findings{kind=\"not-live\"}").as_deref(),
        Some("1"),
        "{metrics}"
    );
}

#[test]
fn prometheus_with_nothing_applied_still_parses() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("promnone");
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    let out = ns.autofw(&[
        "status",
        "--format",
        "prometheus",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let metrics = text(&out.stdout);
    assert!(promtool_check(&metrics).status.success(), "{metrics}");
    assert_eq!(
        sample(&metrics, "autofw_drift_findings{kind=\"nothing-applied\"}").as_deref(),
        Some("1")
    );
    assert!(
        !metrics.contains("autofw_seconds_since_last_apply"),
        "{metrics}"
    );
}

#[test]
fn json_and_another_format_conflict() {
    let out = Autofw::new(&["status", "--json", "--format", "prometheus"]).output();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("--json"), "{}", show(&out));
}

#[test]
fn log_summarises_captured_kernel_lines_in_every_format() {
    let mut texts = Vec::new();
    for file in ["journal.txt", "dmesg.txt", "kmsg.txt"] {
        let path = fixture("kernel-log").join(file);
        let out = Autofw::new(&["log", "--file", path.to_str().unwrap()]).output();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let report = text(&out.stdout);
        // The same lines, read alike whatever tool saved them.
        texts.push(report.replace(path.to_str().unwrap(), "FILE"));
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[0], texts[2]);
    let report = &texts[0];
    assert!(
        report.starts_with("10 drops logged by autofw's rules in FILE"),
        "{report}"
    );
    let ports: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("dropped on"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    // mysql first (4 drops, 1 source), then 8443 (3 drops from 3 sources).
    assert!(ports[0].starts_with("3306/tcp mysql"), "{report}");
    assert!(ports[0].ends_with("4        1"), "{report}");
    assert!(ports[1].starts_with("8443/tcp"), "{report}");
    assert!(ports[1].ends_with("3        3"), "{report}");
    assert!(report.contains("\n2001:db8:bad::66 "), "{report}");
    assert!(
        report.contains("1 line(s) with the \"autofw drop:\" prefix could not be read"),
        "{report}"
    );

    let path = fixture("kernel-log/journal.txt");
    let out = Autofw::new(&[
        "log",
        "--json",
        "--top",
        "1",
        "--file",
        path.to_str().unwrap(),
    ])
    .output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["drops"], 10);
    assert_eq!(json["unreadable"], 1);
    assert_eq!(json["ports"].as_array().unwrap().len(), 1);
    assert_eq!(json["ports"][0]["port"], 3306);
    assert_eq!(json["sources"][0]["address"], "203.0.113.50");
    assert_eq!(json["sources"][0]["drops"], 5);
    assert_eq!(
        json["sources"][0]["targets"],
        serde_json::json!(["3306/tcp", "8443/tcp"])
    );
}

#[test]
fn log_of_a_missing_file_says_so() {
    let out = Autofw::new(&["log", "--file", "/nonexistent/kern.log"]).output();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).starts_with("autofw: cannot read kernel log /nonexistent/kern.log"),
        "{}",
        show(&out)
    );
}

#[test]
fn log_reads_this_hosts_kernel_log() {
    if !require_root() {
        return;
    }
    // journalctl -k where journald runs, else /dev/kmsg: read-only either way.
    let out = Autofw::new(&["log"]).output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report = text(&out.stdout);
    assert!(
        report.contains("logged by autofw's rules in the kernel"),
        "{report}"
    );
}

#[test]
fn completions_for_each_shell() {
    for (shell, expect) in [
        ("bash", "complete -F _autofw"),
        ("zsh", "#compdef autofw"),
        ("fish", "complete -c autofw"),
    ] {
        let out = Autofw::new(&["completions", shell]).output();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let script = text(&out.stdout);
        assert!(script.contains(expect), "{shell}: {script}");
        // Internal commands are not offered.
        assert!(!script.contains("subcmd__watchdog"), "{shell}");
        assert!(!script.contains("-a \"watchdog\""), "{shell}");
        assert!(!script.contains("'watchdog:"), "{shell}");
        assert!(
            script.contains("prometheus"),
            "{shell} does not complete --format values"
        );
    }
    let out = Autofw::new(&["completions", "tcsh"]).output();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn man_pages_one_per_command_with_the_sections_a_sysadmin_expects() {
    let dir = tempfile::tempdir().unwrap();
    let out = Autofw::new(&["generate", "man", dir.path().to_str().unwrap()]).output();
    assert!(out.status.success(), "{}", show(&out));
    let help = text(&Autofw::new(&["--help"]).output().stdout);
    for command in [
        "scan", "propose", "apply", "confirm", "rollback", "status", "log", "allow", "block",
        "limit", "source", "forget",
    ] {
        assert!(help.contains(&format!("  {command} ")), "{help}");
        let page = dir.path().join(format!("autofw-{command}.8"));
        let roff = std::fs::read_to_string(&page)
            .unwrap_or_else(|e| panic!("no man page for {command}: {e}"));
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "EXAMPLES",
        ] {
            assert!(
                roff.contains(&format!(".SH \"{section}\""))
                    || roff.contains(&format!(".SH {section}")),
                "{command}: no {section}"
            );
        }
        // man renders it without a warning.
        let man = Command::new("man")
            .args(["--warnings", "-l", "-E", "UTF-8"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        assert!(
            man.status.success() && man.stderr.is_empty(),
            "{command}: {}",
            show(&man)
        );
        assert!(text(&man.stdout).contains(&format!("autofw {command}")));
    }
    assert!(
        !dir.path().join("autofw-watchdog.8").exists(),
        "a page for an internal command"
    );
    let apply = std::fs::read_to_string(dir.path().join("autofw-apply.8")).unwrap();
    assert!(apply.contains("/etc/autofw/rules.nft"), "apply's FILES");
    assert!(Path::new(&dir.path().join("autofw.8")).exists());
}

#[test]
fn completions_into_a_closed_pipe_is_not_a_crash() {
    // `autofw completions zsh | head` where the reader is gone before the
    // first write: the pipe's read end is closed before autofw starts, so
    // every write fails with EPIPE (no race with a reader that might still
    // take a script that fits the pipe buffer). Exit 0, no panic.
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    let out = Command::new(autofw_bin())
        .args(["completions", "zsh"])
        .stdout(Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(!text(&out.stderr).contains("panicked"), "{}", show(&out));
}
