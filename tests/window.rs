//! The rollback window at its edges (issue 10): a window that did not
//! survive (killed watchdog, restart), a decision racing the load, a state
//! directory that turns read-only, typed-ahead input, a stepped clock, an
//! untrusted state directory. Each test runs the real binary in namespaces
//! it creates, and checks that the host ends in the old ruleset or the
//! confirmed one, exactly, with boot files only for a confirmed ruleset.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `apply --confirm --yes --from scan --state-dir state` + extra in the
/// server namespace, in the background with stdin held open and no
/// controlling terminal (a session of its own), with extra environment.
fn spawn_apply(host: &Host, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = with_env(host.apply_command(extra), env).command();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    no_terminal(&mut cmd);
    cmd.spawn().unwrap()
}

/// [`spawn_apply`], returning once its rules are loaded.
fn apply_loaded(host: &Host, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let apply = spawn_apply(host, extra, env);
    wait_for_applied_rules(&host.server, &host.state(), Duration::from_secs(10));
    apply
}

fn with_env(mut autofw: Autofw, env: &[(&str, &str)]) -> Autofw {
    for (key, value) in env {
        autofw = autofw.env(key, value);
    }
    autofw
}

/// Run without a controlling terminal, whatever the test runner has.
fn no_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// autofw in the server namespace with extra environment.
fn autofw_env(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = with_env(Autofw::new(args).inside(&host.server), env).command();
    no_terminal(&mut cmd);
    cmd.output().unwrap()
}

fn window_json(state: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(Path::new(state).join("window.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The pid of the open window's watchdog.
fn watchdog_pid(state: &str) -> u32 {
    let window = window_json(state).expect("an open window");
    window["watchdog_pid"].as_u64().unwrap() as u32
}

fn applied_json(state: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(state).join("applied.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Kills a helper process this test started outside any namespace it owns.
struct KillOnDrop(u32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(self.0);
    }
}

fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid this test read from its own state files.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// Nothing at all under the persist root: no boot files.
fn assert_no_boot_files(root: &Path) {
    let found: Vec<PathBuf> = walk(root);
    assert!(found.is_empty(), "boot files were written: {found:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Point 1: apply `--persist --timeout 600`, then apply and its watchdog
/// are killed and the host "reboots" (ruleset flushed, a new boot id through
/// the test hook). status says the rules are not loaded; confirm refuses,
/// writes no boot files, and says where the firewall stands.
#[test]
fn a_window_killed_by_a_restart_cannot_be_confirmed() {
    if !require_root() {
        return;
    }
    let host = Host::new("reboot");
    let before = host.server.ruleset();
    let root = host.dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let boot_id = host.dir.path().join("boot_id");
    std::fs::write(
        &boot_id,
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap(),
    )
    .unwrap();
    let hook = [("AUTOFW_TEST_BOOT_ID_FILE", boot_id.to_str().unwrap())];
    let state = host.state();
    let mut apply = apply_loaded(
        &host,
        &[
            "--timeout",
            "600",
            "--persist",
            "--root",
            root.to_str().unwrap(),
        ],
        &hook,
    );
    let watchdog = watchdog_pid(&state);
    // The OOM killer, then the provider's reboot button.
    apply.kill().unwrap();
    apply.wait().unwrap();
    kill(watchdog);
    host.server.ok(&["nft", "flush", "ruleset"]);
    std::fs::write(&boot_id, "0badb007-0000-4000-8000-000000000000\n").unwrap();

    let status = autofw_env(&host, &["status", "--state-dir", &state], &hook);
    let said = text(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert!(said.contains("are not loaded"), "{}", show(&status));
    assert!(said.contains("restarted"), "{}", show(&status));
    assert!(!said.contains("`autofw confirm`"), "{}", show(&status));

    let confirm = autofw_env(&host, &["confirm", "--state-dir", &state], &hook);
    let said = text(&confirm.stderr);
    assert_eq!(confirm.status.code(), Some(4), "{}", show(&confirm));
    for words in [
        "NOT confirmed",
        "the machine restarted",
        "watchdog is gone",
        "not loaded now",
        "nothing was saved for boot",
        "as it was before `autofw apply`",
    ] {
        assert!(
            said.contains(words),
            "missing {words:?}:\n{}",
            show(&confirm)
        );
    }
    assert_no_boot_files(&root);
    assert_eq!(host.server.ruleset(), before);
    assert!(
        window_json(&state).is_none(),
        "the dead window is still open"
    );
    let life = &applied_json(&state)["life"];
    assert_eq!(life["state"], "rolled-back", "{life}");
    assert_eq!(life["why"], "did-not-survive", "{life}");
    // A second confirm has nothing to confirm.
    let again = autofw_env(&host, &["confirm", "--state-dir", &state], &hook);
    assert_eq!(again.status.code(), Some(4), "{}", show(&again));
    assert_no_boot_files(&root);
}

/// Point 1, same boot: the watchdog alone is killed (apply still runs and
/// the rules are loaded). Told by its lock, confirm refuses and rolls back.
#[test]
fn a_window_whose_watchdog_died_cannot_be_confirmed() {
    if !require_root() {
        return;
    }
    let host = Host::new("wdkill");
    let before = host.server.ruleset();
    let state = host.state();
    let apply = apply_loaded(&host, &["--timeout", "600"], &[]);
    let watchdog = watchdog_pid(&state);
    kill(watchdog);
    std::thread::sleep(Duration::from_millis(300));
    let confirm = host.confirm();
    assert_eq!(confirm.status.code(), Some(4), "{}", show(&confirm));
    assert!(
        text(&confirm.stderr).contains("watchdog is gone"),
        "{}",
        show(&confirm)
    );
    assert_eq!(host.server.ruleset(), before);
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stderr).contains("rolled back"), "{}", show(&out));
}

/// An `nft` on PATH that takes `seconds` over every `-f` (a load), then runs
/// the real one, or fails when `fail` is set.
fn slow_nft(dir: &Path, seconds: u32, fail: bool) -> String {
    let real = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nft is installed");
    let bin = dir.join("slow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let end = if fail {
        "echo 'nft: slow and broken on purpose' >&2; exit 1"
    } else {
        "true"
    };
    std::fs::write(
        bin.join("nft"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do if [ \"$a\" = -f ]; then sleep {seconds}; {end}; fi; done\nexec {real} \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("nft"), std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn wait_for_window(state: &str, apply: &mut Option<Child>) {
    if !wait_until(Duration::from_secs(30), || window_json(state).is_some()) {
        let _ = apply.as_mut().unwrap().kill();
        panic!(
            "apply did not open its window:\n{}",
            show(&finish(apply.take().unwrap()))
        );
    }
}

/// Point 2: `autofw rollback` between the window opening and the (slow)
/// load finishing waits for the load, then rolls it back: no rules are left
/// loaded without a watchdog.
#[test]
fn rollback_racing_a_slow_load_waits_for_it() {
    if !require_root() {
        return;
    }
    let host = Host::new("race");
    let before = host.server.ruleset();
    let state = host.state();
    let path = slow_nft(host.dir.path(), 3, false);
    let mut apply = Some(spawn_apply(&host, &["--timeout", "60"], &[("PATH", &path)]));
    wait_for_window(&state, &mut apply);
    let apply = apply.unwrap();
    let rollback = host.server.autofw(&["rollback", "--state-dir", &state]);
    assert!(rollback.status.success(), "{}", show(&rollback));
    assert!(
        text(&rollback.stderr).contains("waiting: an apply is loading its rules"),
        "{}",
        show(&rollback)
    );
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // Give a watchdog that might have been left behind time to show itself.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        host.server.ruleset(),
        before,
        "rules left loaded after a rollback in the gap:\n{}",
        show(&out)
    );
    assert!(window_json(&state).is_none());
}

/// Point 2: `autofw confirm --persist` racing a load that fails: confirm
/// waits for the load, finds no window, and persists nothing.
#[test]
fn confirm_racing_a_failing_load_persists_nothing() {
    if !require_root() {
        return;
    }
    let host = Host::new("racep");
    let before = host.server.ruleset();
    let state = host.state();
    let root = host.dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let path = slow_nft(host.dir.path(), 3, true);
    let mut apply = Some(spawn_apply(
        &host,
        &[
            "--timeout",
            "60",
            "--persist",
            "--root",
            root.to_str().unwrap(),
        ],
        &[("PATH", &path)],
    ));
    wait_for_window(&state, &mut apply);
    let apply = apply.unwrap();
    let confirm = host.confirm();
    assert_eq!(confirm.status.code(), Some(4), "{}", show(&confirm));
    assert!(
        text(&confirm.stderr).contains("nothing to confirm"),
        "{}",
        show(&confirm)
    );
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_no_boot_files(&root);
    assert_eq!(host.server.ruleset(), before);
}

/// Point 4: the state directory is a tmpfs that turns read-only during the
/// window (in a private mount namespace, which dies with the processes in
/// it). The old rules still come back at the deadline; apply and status say
/// that the records could not follow; once it is writable again the
/// watchdog records the rollback and exits.
#[test]
fn rollback_restores_when_the_state_dir_turns_read_only() {
    if !require_root() {
        return;
    }
    let host = Host::new("rostate");
    let before = host.server.ruleset();
    let state = host.state();
    std::fs::create_dir(&state).unwrap();
    let netns = format!("--net=/run/netns/{}", host.server.name());
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"mount -t tmpfs -o mode=0700 autofw-test "$0" || exit 1
           # Keeps the mount namespace (and so the tmpfs) readable after the
           # watchdog exits; killed by pid below.
           sleep 600 </dev/null >/dev/null 2>&1 &
           echo $! > "$0.keeper"
           exec nsenter "$@""#,
        &state,
        &netns,
        autofw_bin(),
        "apply",
        "--confirm",
        "--yes",
        "--timeout",
        "4",
        "--from",
        &host.scan(),
        "--state-dir",
        &state,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    no_terminal(&mut cmd);
    let apply = cmd.spawn().unwrap();
    // unshare, sh and nsenter exec: this pid is apply's, in the new mount
    // namespace, where /proc/PID/root shows the tmpfs.
    let apply_pid = apply.id();
    let keeper_file = format!("{state}.keeper");
    assert!(wait_until(Duration::from_secs(5), || Path::new(
        &keeper_file
    )
    .exists()));
    let keeper: u32 = std::fs::read_to_string(&keeper_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _keeper = KillOnDrop(keeper);
    let seen = |pid: u32| format!("/proc/{pid}/root{state}");
    assert!(
        wait_until(Duration::from_secs(10), || window_json(&seen(apply_pid))
            .is_some()
            && host.server.ruleset().contains("table inet autofw")),
        "apply did not load its rules"
    );
    let window = window_json(&seen(apply_pid)).unwrap();
    let watchdog = window["watchdog_pid"].as_u64().unwrap() as u32;
    let id = window["id"].as_str().unwrap().to_string();
    let mnt = format!("--mount=/proc/{watchdog}/ns/mnt");
    let _fallback_log = RemoveOnDrop(format!("/run/autofw/watchdog-{id}.log"));
    run_ok(Command::new("nsenter").args([&mnt, "mount", "-o", "remount,ro", &state]));

    assert!(
        wait_until(Duration::from_secs(15), || host.server.ruleset() == before),
        "not rolled back with a read-only state directory:\n{}",
        host.server.ruleset()
    );
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("the old rules ARE back"),
        "{}",
        show(&out)
    );

    // Past the deadline, still open, the watchdog retrying: status says so.
    std::thread::sleep(Duration::from_secs(6));
    let status = Command::new("nsenter")
        .args([&mnt, &netns, autofw_bin(), "status", "--state-dir", &state])
        .output()
        .unwrap();
    let said = text(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert!(said.contains("is retrying"), "{}", show(&status));
    assert!(said.contains("Read-only file system"), "{}", show(&status));

    run_ok(Command::new("nsenter").args([&mnt, "mount", "-o", "remount,rw", &state]));
    assert!(
        wait_until(Duration::from_secs(40), || !Path::new(&seen(keeper))
            .join("window.json")
            .exists()),
        "the watchdog did not record the rollback once it could"
    );
    let record = applied_json(&seen(keeper));
    assert_eq!(record["life"]["state"], "rolled-back", "{record}");
    assert_eq!(record["life"]["why"], "expired", "{record}");
    assert_eq!(host.server.ruleset(), before);
}

/// The watchdog's fallback log in /run, removed even when the test fails.
struct RemoveOnDrop(String);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Point 3: `yes` typed on the terminal before the rules were loaded does
/// not keep them (it is discarded); `yes` typed after the load does.
#[test]
fn typed_ahead_yes_on_a_terminal_does_not_keep_the_rules() {
    if !require_root() {
        return;
    }
    let host = Host::new("pty");
    let state = host.state();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pty_run.py");
    let (scan, bin) = (host.scan(), autofw_bin());
    let mut cmd = host.server.command("python3");
    cmd.args([
        driver.to_str().unwrap(),
        "y\\nyes\\n",
        bin,
        "apply",
        "--confirm",
        "--timeout",
        "30",
        "--from",
        &scan,
        "--state-dir",
        &state,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    no_terminal(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let copy = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            copy.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_for_applied_rules(&host.server, &state, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1500));
    let shown = || screen.lock().unwrap().clone();
    assert!(
        window_json(&state).is_some(),
        "the typed-ahead yes kept the rules:\n{}",
        shown()
    );
    assert_eq!(applied_json(&state)["life"]["state"], "loaded");
    assert!(
        shown().contains("anything typed before this was discarded"),
        "{}",
        shown()
    );
    // Now the operator answers, after seeing the rules loaded.
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"yes\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || shown().contains("exit=0")),
        "a yes typed after the load did not keep the rules:\n{}",
        shown()
    );
    let _ = child.wait();
    assert_eq!(applied_json(&state)["life"]["state"], "confirmed");
    assert!(host.server.ruleset().contains("table inet autofw"));
}

/// Point 3: without a terminal, `yes` on standard input (`yes |`) does not
/// keep the rules; `autofw confirm` from a new login does.
#[test]
fn yes_on_standard_input_does_not_keep_the_rules() {
    if !require_root() {
        return;
    }
    let host = Host::new("pipeyes");
    let state = host.state();
    let mut apply = spawn_apply(&host, &["--timeout", "30"], &[]);
    std::io::Write::write_all(apply.stdin.as_mut().unwrap(), b"yes\nyes\nyes\n").unwrap();
    wait_for_applied_rules(&host.server, &state, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(window_json(&state).is_some(), "a piped yes kept the rules");
    let out = host.confirm_and_finish(apply);
    let said = text(&out.stderr);
    assert!(said.contains("no terminal here to answer on"), "{said}");
    assert!(said.contains("does not keep the rules"), "{said}");
}

/// libfaketime, from Debian's `faketime` package.
fn libfaketime() -> String {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is installed (apt-get install faketime)")
        .to_string_lossy()
        .into_owned()
}

/// Point 5: the wall clock steps (a first NTP sync), seen through
/// libfaketime, which fakes the wall clock only (`DONT_FAKE_MONOTONIC=1`:
/// an NTP step never moves `CLOCK_BOOTTIME` either). A step forward does
/// not end the window early, a step back does not stretch it, and confirm
/// with the clock two hours ahead still keeps the rules.
#[test]
fn a_stepped_wall_clock_neither_ends_nor_stretches_the_window() {
    if !require_root() {
        return;
    }
    let host = Host::new("clock");
    let state = host.state();
    let lib = libfaketime();
    let offset = host.dir.path().join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let stepping = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap()),
        ("FAKETIME_NO_CACHE", "1"),
        ("DONT_FAKE_MONOTONIC", "1"),
    ];
    let apply = apply_loaded(&host, &["--timeout", "30"], &stepping);
    // NTP steps apply's clock (and its watchdog's) two hours forward.
    std::fs::write(&offset, "+2h\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        window_json(&state).is_some() && host.server.ruleset().contains("table inet autofw"),
        "a clock stepped forward ended the window early"
    );

    // status with its clock an hour behind still sees at most 30 s left.
    let behind = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME", "-1h"),
        ("DONT_FAKE_MONOTONIC", "1"),
    ];
    let status = autofw_env(&host, &["status", "--json", "--state-dir", &state], &behind);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    // The control: status really ran on the faked clock (else every check
    // here would pass on the real one and prove nothing).
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let checked_at = report["checked_at"].as_u64().unwrap();
    assert!(
        (checked_at + 3600).abs_diff(real_now) < 60,
        "libfaketime did not move status's clock: checked_at {checked_at}, now {real_now}"
    );
    let left = report["window"]["seconds_left"].as_u64().unwrap();
    assert!((20..=30).contains(&left), "{}", report["window"]);

    // confirm with its clock two hours ahead is not "too late".
    let ahead = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME", "+2h"),
        ("DONT_FAKE_MONOTONIC", "1"),
    ];
    let confirm = autofw_env(&host, &["confirm", "--state-dir", &state], &ahead);
    assert!(confirm.status.success(), "{}", show(&confirm));
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(host.server.ruleset().contains("table inet autofw"));
}

/// Point 11: a state directory that is a symlink, not root's, or writable
/// by others is refused before anything changes; so is a file in it that
/// is a symlink (opened with O_NOFOLLOW).
#[test]
fn an_untrusted_state_dir_is_refused() {
    if !require_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new("trust");
    let before = host.server.ruleset();
    let scan = host.scan();
    let apply_with = |state: &Path| {
        host.server.autofw(&[
            "apply",
            "--confirm",
            "--yes",
            "--timeout",
            "30",
            "--from",
            &scan,
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    let real = host.dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = host.dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let shared = host.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let nobodys = host.dir.path().join("nobodys");
    std::fs::create_dir(&nobodys).unwrap();
    std::os::unix::fs::chown(&nobodys, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&nobodys, std::fs::Permissions::from_mode(0o700)).unwrap();

    for (dir, why) in [
        (&link, "it is a symlink"),
        (&shared, "writable by its group and by others"),
        (&nobodys, "owned by uid 65534"),
    ] {
        let out = apply_with(dir);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{}: {}",
            dir.display(),
            show(&out)
        );
        let said = text(&out.stderr);
        assert!(said.contains(why), "{}", show(&out));
        assert!(said.contains("nothing was changed"), "{}", show(&out));
        assert_eq!(host.server.ruleset(), before);
        for command in ["confirm", "rollback", "status"] {
            let out = host
                .server
                .autofw(&[command, "--state-dir", dir.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(4), "{command}: {}", show(&out));
        }
    }
    assert_eq!(
        std::fs::read_dir(&real).unwrap().count(),
        0,
        "wrote through the link"
    );

    // A trusted directory whose snapshot was swapped for a link.
    let state = host.state();
    let apply = host.apply_in_background(&["--timeout", "30"]);
    host.confirm_and_finish(apply);
    let applied = host.server.ruleset();
    let snapshot = Path::new(&state).join("snapshot.json");
    let elsewhere = host.dir.path().join("elsewhere.json");
    std::fs::rename(&snapshot, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &snapshot).unwrap();
    let out = host.server.autofw(&["rollback", "--state-dir", &state]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(text(&out.stderr).contains("is a symlink"), "{}", show(&out));
    assert_eq!(host.server.ruleset(), applied);
}

// ---------------------------------------------------------------------
// Issue 21, point 2: a rollback restores from what it holds. Every saved
// file it needs is read and checked before anything is loaded; the
// watchdog reads them when its window opens, so a file damaged during the
// window cannot stop it.

/// A namespace whose autofw rules and blocklist (list A) were confirmed,
/// next to another tool's table with a set of its own: `first` is that
/// firewall, which every rollback below must give back exactly.
struct Saved {
    ns: Netns,
    dir: tempfile::TempDir,
    first: Firewall,
}

/// The whole firewall: the ruleset without counters or elements, and every
/// element of every set (of any table), sorted: hash sets list their
/// elements in an order of their own, which a restore need not keep.
#[derive(Debug, PartialEq, Eq)]
struct Firewall {
    ruleset: String,
    elements: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

fn firewall(ns: &Netns) -> Firewall {
    let json: serde_json::Value =
        serde_json::from_str(&ns.ok(&["nft", "-j", "list", "ruleset"])).unwrap();
    let mut elements = std::collections::BTreeMap::new();
    for set in json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("set"))
    {
        let name = format!("{} {} {}", set["family"], set["table"], set["name"]);
        let elems: std::collections::BTreeSet<String> = set["elem"]
            .as_array()
            .into_iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        elements.insert(name, elems);
    }
    Firewall {
        ruleset: ns.ok(&["nft", "-t", "-s", "list", "ruleset"]),
        elements,
    }
}

/// A blocklist in a downloaded list's format: `v4` single addresses of
/// 10.0.0.0/8 and some of 2001:db8:ff00::/40 (list data only: no traffic
/// goes there), spread over every hash set, and two networks.
fn blocklist_text(seed: u32, v4: u32) -> String {
    let mut text = String::from("; a test list\n203.0.113.0/25\n2001:db8:ee00::/48\n");
    for i in 0..v4 {
        let n = seed * 1_000_003 + i * 3;
        text.push_str(&format!(
            "10.{}.{}.{}\n",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        ));
    }
    for i in 0..(v4 / 5) {
        text.push_str(&format!("2001:db8:ff00::{:x}:{:x}\n", seed, i * 3));
    }
    text
}

impl Saved {
    fn new(tag: &str) -> Saved {
        let ns = Netns::new(tag);
        let dir = tempfile::tempdir().unwrap();
        write_scan(&dir.path().join("scan.json"), &[("ssh", "sshd", 22)]);
        std::fs::write(
            dir.path().join("policy.toml"),
            "[blocklist]\nfiles = [\"list.txt\"]\n",
        )
        .unwrap();
        ns.sh_ok(
            "nft -f - <<'E'\ntable ip other {\n set banned { type ipv4_addr; elements = { 192.0.2.5, 192.0.2.6 } }\n chain input { type filter hook input priority -10; ip saddr @banned drop; }\n}\nE",
        );
        let saved = Saved {
            ns,
            dir,
            first: Firewall {
                ruleset: String::new(),
                elements: Default::default(),
            },
        };
        let out = saved.apply(1, 600);
        assert!(out.status.success(), "{}", show(&out));
        let out = saved.autofw(&["confirm"]);
        assert!(out.status.success(), "{}", show(&out));
        saved.wait_for_no_watchdog();
        let first = firewall(&saved.ns);
        assert!(
            first.elements.values().map(|e| e.len()).sum::<usize>() > 600,
            "{first:?}"
        );
        Saved { first, ..saved }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn state(&self) -> String {
        self.path("state")
    }

    fn autofw(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        let state = self.state();
        all.extend(["--state-dir", &state]);
        self.ns.autofw(&all)
    }

    /// `apply --no-wait` of the blocklist numbered `seed`, its window open
    /// for `timeout` seconds.
    fn apply(&self, seed: u32, timeout: u32) -> Output {
        std::fs::write(self.path("list.txt"), blocklist_text(seed, 700)).unwrap();
        let (scan, policy, timeout) = (
            self.path("scan.json"),
            self.path("policy.toml"),
            timeout.to_string(),
        );
        self.autofw(&[
            "apply",
            "--confirm",
            "--yes",
            "--no-wait",
            "--timeout",
            &timeout,
            "--from",
            &scan,
            "--policy",
            &policy,
        ])
    }

    /// The watchdog of the last window has exited (and released the lock).
    fn wait_for_no_watchdog(&self) {
        let lock = Path::new(&self.state()).join("watchdog.lock");
        assert!(
            wait_until(Duration::from_secs(10), || {
                let out = Command::new("flock")
                    .args(["-n", "-s"])
                    .arg(&lock)
                    .arg("true")
                    .output()
                    .unwrap();
                out.status.success()
            }),
            "the watchdog did not exit"
        );
    }
}

/// How a saved file is damaged, and the file.
const DAMAGES: [(&str, &str); 5] = [
    ("snapshot-sets.txt", "emptied"),
    ("snapshot-sets.txt", "cut in half"),
    ("snapshot-sets.txt", "garbled"),
    ("snapshot-sets.txt", "missing"),
    ("applied.json", "garbled"),
];

fn damage(path: &Path, how: &str) {
    let bytes = std::fs::read(path).unwrap();
    match how {
        "emptied" => std::fs::write(path, b"").unwrap(),
        "cut in half" => std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap(),
        "garbled" => {
            let mut garbled = bytes.clone();
            for b in garbled.iter_mut().skip(bytes.len() / 3).step_by(7) {
                *b = b'#';
            }
            garbled.splice(0..0, b"\x00garbage{".iter().copied());
            std::fs::write(path, garbled).unwrap();
        }
        "missing" => std::fs::remove_file(path).unwrap(),
        other => panic!("{other}"),
    }
}

/// `autofw rollback` with each saved file damaged: exit 3 naming the file,
/// the firewall exactly as it was (not half restored); with the file
/// whole again, the rollback puts back the first firewall exactly, every
/// set element included, and only then says "identical".
#[test]
fn rollback_with_a_damaged_saved_file_changes_nothing() {
    if !require_root() {
        return;
    }
    let saved = Saved::new("rbdamaged");
    for (file, how) in DAMAGES {
        let out = saved.apply(2, 600);
        assert!(out.status.success(), "{}", show(&out));
        let during = firewall(&saved.ns);
        assert_ne!(during, saved.first);
        // The plain-text copy for the operator is the ruleset before.
        assert_eq!(
            std::fs::read_to_string(Path::new(&saved.state()).join("before-apply.nft")).unwrap(),
            saved.first.ruleset
        );
        let path = Path::new(&saved.state()).join(file);
        let whole = std::fs::read(&path).unwrap();
        damage(&path, how);

        let out = saved.autofw(&["rollback"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{file} {how}: {}", show(&out));
        assert!(
            err.contains(&path.display().to_string()) && err.contains("nothing was changed"),
            "{file} {how}: {err}"
        );
        assert!(
            firewall(&saved.ns) == during,
            "{file} {how}: the firewall changed"
        );

        std::fs::write(&path, &whole).unwrap();
        let out = saved.autofw(&["rollback"]);
        assert!(out.status.success(), "{file} {how}: {}", show(&out));
        assert!(
            text(&out.stdout).contains("(identical to the saved one)"),
            "{file} {how}: {}",
            show(&out)
        );
        assert!(
            firewall(&saved.ns) == saved.first,
            "{file} {how}: not the first firewall"
        );
        let record = applied_json(&saved.state());
        assert_eq!(record["life"]["why"], "rollback-command", "{record}");
        saved.wait_for_no_watchdog();
    }
}

/// The watchdog with each saved file damaged during its window: it read
/// them when the window opened, so at the deadline it puts back the first
/// firewall exactly, every set element included, and records it.
#[test]
fn the_watchdog_restores_from_memory_whatever_happens_to_the_saved_files() {
    if !require_root() {
        return;
    }
    let saved = Saved::new("wddamaged");
    for (file, how) in DAMAGES {
        let out = saved.apply(3, 2);
        assert!(out.status.success(), "{}", show(&out));
        assert_ne!(firewall(&saved.ns), saved.first);
        damage(&Path::new(&saved.state()).join(file), how);
        let window = Path::new(&saved.state()).join("window.json");
        assert!(
            wait_until(Duration::from_secs(15), || !window.exists()),
            "{file} {how}: the watchdog did not close the window; its log:\n{}",
            std::fs::read_to_string(Path::new(&saved.state()).join("watchdog.log"))
                .unwrap_or_default()
        );
        assert!(
            firewall(&saved.ns) == saved.first,
            "{file} {how}: not the first firewall"
        );
        let log = std::fs::read_to_string(Path::new(&saved.state()).join("watchdog.log")).unwrap();
        let last = log.lines().rev().nth(1).unwrap_or_default();
        assert!(
            last.contains("ruleset identical to the saved one: yes"),
            "{file} {how}: {log}"
        );
        let record = applied_json(&saved.state());
        assert_eq!(record["life"]["why"], "expired", "{file} {how}: {record}");
        saved.wait_for_no_watchdog();
    }
}

/// Ctrl-C while apply waits for the decision rolls back now, as `no`
/// would, and the record says why.
#[test]
fn ctrl_c_at_the_prompt_rolls_back_now() {
    if !require_root() {
        return;
    }
    let host = Host::new("ctrlc");
    let before = host.server.ruleset();
    let apply = apply_loaded(&host, &["--timeout", "600"], &[]);
    // SAFETY: kill(2) of the apply this test started.
    unsafe { libc::kill(apply.id() as i32, libc::SIGINT) };
    let out = apply.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("interrupted: rolling back now"),
        "{}",
        show(&out)
    );
    assert_eq!(host.server.ruleset(), before);
    let state = host.state();
    assert!(window_json(&state).is_none());
    assert_eq!(applied_json(&state)["life"]["why"], "interrupted");
}
