//! The lockout guard where a person is: over a real SSH session (a real
//! sshd in the server namespace, the client logging in from its own).
//! `blocklist refresh` refuses a list that holds the session's address and
//! the login still works afterwards; `--force` loads it. apply's refusal
//! names what drops the session where it was given (a `--source`, a
//! `--block`, a blocklist entry: flag, policy file and line, blocklist
//! file and line) and fixes; each fix, made as the refusal says, passes
//! the guard. And every command that takes `--state-dir` refuses one that
//! is a symlink, another user's or writable by others, writing nothing
//! through it; rollback and refresh make a 0755 one root-only.

use crate::support::*;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// `autofw ARGS` run on the server over a new SSH login from the client.
fn over_ssh(host: &Host, args: &str) -> Output {
    host.ssh()
        .command(&host.client, &format!("{} {args}", autofw_bin()))
        .output()
        .unwrap()
}

/// A new SSH login from the client gets in and runs a command.
fn login_works(host: &Host) -> bool {
    host.ssh()
        .command(&host.client, "echo in")
        .output()
        .is_ok_and(|out| out.status.success() && text(&out.stdout).trim() == "in")
}

/// Every file of a directory with its content (by name, sorted): what
/// "nothing was written there" is checked against.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let data = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), data)
        })
        .collect();
    files.sort();
    files
}

/// Apply `policy` (with its blocklist files) from a saved scan, outside
/// any SSH session, and confirm it.
fn apply_policy(host: &Host, policy: &Path) {
    let out = host.apply(&["--policy", policy.to_str().unwrap(), "--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = host.confirm();
    assert!(out.status.success(), "{}", show(&out));
}

/// Issue 21, point 1: adding the SSH client's address to the recorded
/// blocklist file and running `autofw blocklist refresh` from that session
/// exited 0 and cut it off. Now: refused (exit 4) naming the file and
/// line, the sets unchanged, and a new login still gets in; `--force`
/// loads it (and the address is then dropped).
#[test]
fn a_refresh_listing_this_session_is_refused_over_ssh() {
    if !require_root() {
        return;
    }
    let host = Host::new("grf");
    let dir = host.dir.path();
    let list = dir.join("drop.txt");
    std::fs::write(&list, "# bad actors\n198.51.100.7\n").unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[blocklist]\nfiles = [\"drop.txt\"]\n").unwrap();
    apply_policy(&host, &policy);
    assert!(login_works(&host));
    let ruleset = host.server.ruleset();
    let state = host.state();
    let recorded = contents(Path::new(&state));

    // The client's network, added on line 3.
    std::fs::write(&list, "# bad actors\n198.51.100.7\n192.0.2.0/24 ; oops\n").unwrap();
    let root = dir.join("root");
    let refresh = format!(
        "blocklist refresh --state-dir {state} --root {}",
        root.display()
    );
    let out = over_ssh(&host, &refresh);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let said = text(&out.stderr);
    for part in [
        "refusing to lock you out: this session is SSH from 192.0.2.2 to 192.0.2.1 port 5622",
        "lists it at line 3 (`192.0.2.0/24`)",
        &format!("remove line 3 of {}", list.display()),
        "nothing was changed",
        "--force",
    ] {
        assert!(said.contains(part), "{part:?} not in {}", show(&out));
    }
    assert_eq!(host.server.ruleset(), ruleset, "the sets changed");
    assert_eq!(contents(Path::new(&state)), recorded, "the record changed");
    assert!(login_works(&host), "a new login is locked out");

    // The same without SSH_CONNECTION (as under sudo): sshd's socket.
    let out = host
        .ssh()
        .command(
            &host.client,
            &format!("env -u SSH_CONNECTION {} {refresh}", autofw_bin()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("the connection of sshd (pid"),
        "{}",
        show(&out)
    );
    assert_eq!(host.server.ruleset(), ruleset, "the sets changed");

    // The operator fixes the file as told: the refresh goes through.
    std::fs::write(&list, "# bad actors\n198.51.100.7\n203.0.113.0/24\n").unwrap();
    let out = over_ssh(&host, &refresh);
    assert!(out.status.success(), "{}", show(&out));
    assert!(login_works(&host));

    // --force: the list is loaded although it cuts this session off. It
    // runs detached (the session it runs in dies with the refresh), with
    // the session's SSH_CONNECTION, after the login has returned.
    std::fs::write(&list, "# bad actors\n198.51.100.7\n192.0.2.0/24\n").unwrap();
    let log = dir.join("forced.log");
    let rc = dir.join("forced.rc");
    let out = host
        .ssh()
        .command(
            &host.client,
            &format!(
                "setsid sh -c 'sleep 1; {} {refresh} --force >{log} 2>&1; echo $? >{rc}' \
                 </dev/null >/dev/null 2>&1 &",
                autofw_bin(),
                log = log.display(),
                rc = rc.display()
            ),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        wait_until(Duration::from_secs(15), || std::fs::read_to_string(&rc)
            .is_ok_and(|t| t.ends_with('\n'))),
        "the forced refresh did not finish"
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(std::fs::read_to_string(&rc).unwrap().trim(), "0", "{said}");
    assert!(
        said.contains("--force given: refusing to lock you out"),
        "{said}"
    );
    assert_eq!(probe_tcp(&host.client, SERVER_V4, 5622), Probe::Dropped);
    // IPv6 is not listed: the operator still has that way in.
    assert_eq!(probe_tcp(&host.client, SERVER_V6, 5622), Probe::Open);
}

/// The lockout guard's verdict and causes for these choices, from the
/// JSON dry run over SSH (the guard checks the session it runs in).
fn verdict(host: &Host, args: &[String]) -> Value {
    let out = over_ssh(
        host,
        &format!(
            "apply --json --from {} --state-dir {} {}",
            host.scan(),
            host.state(),
            args.join(" ")
        ),
    );
    let report: Value = serde_json::from_str(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(&out)));
    report["lockout"].clone()
}

/// Make the fix the refusal suggests, as an operator would read it: in
/// the flags, the policy file or a blocklist file.
fn make_fix(fix: &str, args: &mut Vec<String>) {
    let quoted = |s: &str| s.split('`').nth(1).unwrap().to_string();
    let file_line = |place: &str| {
        let (file, line) = place.rsplit_once(':').unwrap();
        (PathBuf::from(file), line.parse::<usize>().unwrap())
    };
    let edit_line = |file: &Path, line: usize, edit: &dyn Fn(&str) -> String| {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 == line {
                    edit(l)
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(file, lines.join("\n") + "\n").unwrap();
    };
    if let Some(rest) = fix.strip_prefix("give ") {
        // `--source SPEC=NETS` instead of the flag for the same SPEC.
        let new = quoted(rest);
        let value = new.split_once(' ').unwrap().1.to_string();
        let spec = format!("{}=", value.split('=').next().unwrap());
        let i = args.iter().position(|a| a.starts_with(&spec)).unwrap();
        args[i] = value;
    } else if let Some(rest) = fix.strip_prefix("drop ") {
        let flag = quoted(rest);
        let (name, value) = flag.split_once(' ').unwrap();
        let i = args
            .windows(2)
            .position(|w| w[0] == name && w[1] == value)
            .unwrap();
        args.drain(i..i + 2);
    } else if let Some(rest) = fix.strip_prefix("add `") {
        let flag = rest.trim_end_matches('`');
        args.extend(flag.split(' ').map(str::to_string));
    } else if let Some(rest) = fix.strip_prefix("remove line ") {
        let (line, file) = rest.split_once(" of ").unwrap();
        let line: usize = line.parse().unwrap();
        edit_line(Path::new(file), line, &|_| String::new());
    } else if let Some(rest) = fix.strip_prefix("remove \"") {
        // remove "V" from `KEY` at FILE:LINE
        let (value, rest) = rest.split_once('"').unwrap();
        let (file, line) = file_line(rest.rsplit_once(" at ").unwrap().1);
        let value = format!("\"{value}\"");
        edit_line(&file, line, &|l: &str| {
            l.replace(&format!("{value},"), "").replace(&value, "")
        });
    } else if let Some(rest) = fix.strip_prefix("add \"") {
        // add "V" to `[service.X] sources` at FILE:LINE
        let (value, rest) = rest.split_once('"').unwrap();
        let (file, line) = file_line(rest.rsplit_once(" at ").unwrap().1);
        edit_line(&file, line, &|l: &str| format!("\"{value}\", {}", l.trim()));
    } else {
        panic!("a fix the test cannot make: {fix}");
    }
}

/// Each cause is refused over SSH, named where it was given, and its
/// fixes, made as said, let the session in.
fn assert_advice_works(host: &Host, mut args: Vec<String>, expected: &[&str]) {
    let lockout = verdict(host, &args);
    assert_eq!(lockout["verdict"], "locked-out", "{args:?}: {lockout}");
    assert_eq!(lockout["source"], "SSH_CONNECTION", "{lockout}");
    assert_eq!(lockout["fixed"], true, "{lockout}");
    let causes = lockout["causes"].as_array().unwrap();
    let said: Vec<String> = causes
        .iter()
        .map(|c| format!("{} => {}", c["cause"], c["fix"]))
        .collect();
    for part in expected {
        assert!(
            said.iter().any(|s| s.contains(part)),
            "{part:?} not in {said:#?}"
        );
    }
    for cause in causes {
        make_fix(cause["fix"].as_str().unwrap(), &mut args);
    }
    let lockout = verdict(host, &args);
    assert_eq!(
        lockout["verdict"], "admitted",
        "after the fixes {args:?}: {lockout}"
    );
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Issue 19, point 6: "Open that port (for instance --allow 22/tcp)" was
/// the advice for every refusal, and with `--allow` added a `--source`,
/// `--block` or blocklist still refused. Now each is named where it was
/// given, with a fix that works (checked by making it).
#[test]
fn the_guards_refusal_names_the_cause_and_a_fix_that_works_over_ssh() {
    if !require_root() {
        return;
    }
    let host = Host::new("gadv");
    let before = host.server.ruleset();

    // The human refusal: exit 4, the cause and the fix, nothing changed.
    let out = over_ssh(
        &host,
        &format!(
            "apply --confirm --yes --from {} --state-dir {} --allow 5622/tcp \
             --source ssh=198.51.100.0/24",
            host.scan(),
            host.state()
        ),
    );
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let said = text(&out.stderr);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    for part in [
        "refusing to lock you out: this session is SSH from 192.0.2.2 to 192.0.2.1 port 5622",
        "Because `--source ssh=198.51.100.0/24` admits only 198.51.100.0/24 to tcp/5622",
        "To get in: give `--source ssh=198.51.100.0/24,192.0.2.2` instead; or pass --force",
    ] {
        assert!(said.contains(part), "{part:?} not in {said}");
    }
    assert!(!said.contains("Open that port"), "{said}");
    assert_eq!(host.server.ruleset(), before);

    // Flags, one cause each: `--allow` given too, which used to be the advice.
    assert_advice_works(
        &host,
        owned(&["--allow", "5622/tcp", "--source", "ssh=198.51.100.0/24"]),
        &["give `--source ssh=198.51.100.0/24,192.0.2.2` instead"],
    );
    assert_advice_works(
        &host,
        owned(&["--allow", "5622/tcp", "--block", "ssh"]),
        &["`--block ssh` keeps tcp/5622 closed\" => \"drop `--block ssh`"],
    );
    assert_advice_works(
        &host,
        owned(&["--blocklist", "192.0.2.0/24"]),
        &["`--blocklist 192.0.2.0/24` lists 192.0.2.2\" => \"drop `--blocklist 192.0.2.0/24`"],
    );

    // A policy file: its block, its sources, its addresses and a line of
    // its blocklist file, all at once; each named by file and line.
    let dir = host.dir.path();
    let list = dir.join("drop.txt");
    std::fs::write(
        &list,
        "198.51.100.7\n# the office, by mistake\n192.0.2.0/24\n",
    )
    .unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "block = [\n  \"ssh\",\n]\n\n[blocklist]\nfiles = [\"drop.txt\"]\naddresses = [\n  \
         \"198.51.100.9\",\n  \"192.0.2.2\",\n]\n\n[service.ssh]\nsources = [\n  \
         \"198.51.100.0/24\",\n]\n",
    )
    .unwrap();
    let p = policy.display();
    assert_advice_works(
        &host,
        owned(&["--policy", &p.to_string()]),
        &[
            &format!("remove \\\"192.0.2.2\\\" from `[blocklist] addresses` at {p}:9"),
            &format!("remove line 3 of {}", list.display()),
            &format!("remove \\\"ssh\\\" from `block` at {p}:2"),
            &format!("add \\\"192.0.2.2\\\" to `[service.ssh] sources` at {p}:14"),
        ],
    );
    // The session's port is one nothing opens: `--allow` by port.
    std::fs::write(&policy, "").unwrap();
    write_scan(&dir.join("scan.json"), &[("http", "nginx", 80)]);
    assert_advice_works(
        &host,
        owned(&["--policy", &p.to_string()]),
        &[
            "nothing the scan found listens on tcp/5622",
            "add `--allow 5622/tcp`",
        ],
    );
    assert_eq!(host.server.ruleset(), before);
}

/// Issue 21, point 3: `blocklist refresh` used (and wrote through) a
/// state directory that is a symlink, another user's or writable by
/// others. Every command that takes `--state-dir` now refuses them (exit
/// 4), writing nothing; one that is a regular file is bad input (exit 2);
/// rollback and refresh make a 0755 one 0700, as docs/apply.md says.
#[test]
fn every_command_refuses_an_untrusted_state_dir() {
    if !require_root() {
        return;
    }
    let host = Host::new("gsd");
    let dir = host.dir.path();
    std::fs::write(dir.join("drop.txt"), "198.51.100.7\n").unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[blocklist]\nfiles = [\"drop.txt\"]\n").unwrap();
    apply_policy(&host, &policy);
    // A new entry: a refresh that got through would change the sets and
    // the record.
    std::fs::write(dir.join("drop.txt"), "198.51.100.7\n198.51.100.8\n").unwrap();
    let real = PathBuf::from(host.state());
    let recorded = contents(&real);
    let ruleset = host.server.ruleset();
    let (scan, policy, root) = (
        host.scan(),
        policy.display().to_string(),
        dir.join("root").display().to_string(),
    );
    // refresh first: it is the one that wrote through a link.
    let commands: Vec<Vec<&str>> = vec![
        vec!["blocklist", "refresh", "--root", &root],
        vec!["apply", "--from", &scan, "--policy", &policy],
        vec![
            "apply",
            "--confirm",
            "--no-wait",
            "--from",
            &scan,
            "--policy",
            &policy,
        ],
        vec!["confirm"],
        vec!["rollback"],
        vec!["status"],
        vec!["watchdog"],
    ];
    let run = |command: &[&str], state: &Path| {
        let mut args = command.to_vec();
        args.extend(["--state-dir", state.to_str().unwrap()]);
        host.server.autofw(&args)
    };
    let set_mode =
        |mode: u32| std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode)).unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for (case, why) in [
        ("symlink", "it is a symlink"),
        ("0777", "writable by its group and by others"),
        ("nobody", "owned by uid 65534"),
    ] {
        let state = match case {
            "symlink" => link.clone(),
            "0777" => {
                set_mode(0o777);
                real.clone()
            }
            _ => {
                set_mode(0o700);
                std::os::unix::fs::chown(&real, Some(65534), None).unwrap();
                real.clone()
            }
        };
        for command in &commands {
            let out = run(command, &state);
            assert_eq!(
                out.status.code(),
                Some(4),
                "{case} {command:?}: {}",
                show(&out)
            );
            assert!(
                text(&out.stderr).contains(why),
                "{case} {command:?}: {}",
                show(&out)
            );
            assert_eq!(contents(&real), recorded, "{case} {command:?} wrote there");
            assert_eq!(host.server.ruleset(), ruleset, "{case} {command:?}");
        }
    }
    std::os::unix::fs::chown(&real, Some(0), None).unwrap();

    // A regular file: bad input.
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    for command in &commands {
        let out = run(command, &file);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {}", show(&out));
        assert!(
            text(&out.stderr).contains("is not a directory"),
            "{}",
            show(&out)
        );
    }
    assert_eq!(host.server.ruleset(), ruleset);

    // 0755: used, and made root-only.
    let mode = || std::fs::metadata(&real).unwrap().mode() & 0o7777;
    set_mode(0o755);
    let out = run(&["blocklist", "refresh", "--root", &root], &real);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(mode(), 0o700, "refresh left it {:o}", mode());
    set_mode(0o755);
    let out = run(&["rollback"], &real);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(mode(), 0o700, "rollback left it {:o}", mode());
}
