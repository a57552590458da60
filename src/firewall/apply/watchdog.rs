//! The detached rollback watchdog: a second `autofw` process (`autofw
//! watchdog`, hidden) that rolls the rules back at the deadline unless the
//! window was closed first, and that does not depend on `apply` staying
//! alive.
//!
//! How it is detached (docs/apply.md says why):
//! - it runs in a session of its own (`setsid`), with no controlling
//!   terminal, so the SSH session's hangup never reaches it, and SIGKILL of
//!   `apply` only orphans it;
//! - where systemd runs, it is started through `systemd-run --scope`, which
//!   moves it out of the login session's cgroup, so logind's
//!   `KillUserProcesses=yes` cannot kill it with the session either (the
//!   scope execs in place: same network and mount namespaces as `apply`);
//! - it inherits `apply`'s lock descriptor, so no second apply starts while
//!   its window is open, even after `apply` itself died;
//! - it holds `watchdog.lock` while it runs, so `confirm` and `status` tell
//!   it is alive by trying that lock (a pid can be reused);
//! - it counts down on `CLOCK_BOOTTIME` (crate::clock: NTP never steps it)
//!   and checks `window.json` every 100 ms;
//! - it reads and checks everything a rollback needs (the snapshot, the
//!   saved blocklist elements, the apply record, the decision lock file)
//!   when it starts, and does not arm if any is damaged: at the deadline it
//!   restores from memory first and
//!   records in the state directory after, retrying with backoff, and
//!   saying why in its log, until the old rules are back (or someone else
//!   decided), so a read-only or full state directory delays only the
//!   bookkeeping;
//! - it says "armed" on a pipe before `apply` loads anything: no rules are
//!   ever loaded without a live watchdog.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::undo::Undo;
use super::window::{self, Deciding};
use crate::clock;
use crate::error::{exit, host_failure};
use crate::record::{Remaining, Why};
use crate::state::{FileLock, StateDir};

const POLL: Duration = Duration::from_millis(100);
const ARM_TIMEOUT: Duration = Duration::from_secs(15);
/// Retries after a failed rollback start this far apart and double up to
/// [`MAX_BACKOFF`]: fast enough for a busy xtables lock, patient with a
/// broken disk.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Start the watchdog for the window in `state` and wait until it is armed.
/// Returns its pid.
pub(crate) fn spawn(state: &StateDir, lock: &FileLock) -> anyhow::Result<u32> {
    let exe = std::env::current_exe().map_err(|e| {
        host_failure(format!(
            "cannot find the autofw binary to start the watchdog: {e}"
        ))
    })?;
    let args = [
        "watchdog".to_string(),
        "--state-dir".to_string(),
        std::path::absolute(state.root())
            .unwrap_or_else(|_| state.root().to_path_buf())
            .to_string_lossy()
            .into_owned(),
    ];
    if systemd_runs() && crate::firewall::backend::exec::tool_exists("systemd-run") {
        let unit = format!("autofw-watchdog-{}", std::process::id());
        let mut cmd = Command::new("systemd-run");
        cmd.args(["--scope", "--quiet", "--collect", "--unit", &unit, "--"])
            .arg(&exe)
            .args(&args);
        if let Ok(pid) = start(cmd, lock) {
            return Ok(pid);
        }
        // No usable systemd (no D-Bus, a container): the setsid watchdog
        // alone still survives the session's hangup and apply's death.
    }
    let mut cmd = Command::new(&exe);
    cmd.args(&args);
    start(cmd, lock)
}

/// Is systemd the init system (sd_booted)?
fn systemd_runs() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

fn start(mut cmd: Command, lock: &FileLock) -> anyhow::Result<u32> {
    let lock_fd = lock.file().as_raw_fd();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls: setsid and
    // fcntl. Clearing FD_CLOEXEC on the lock descriptor in the child only
    // lets the watchdog inherit (and so keep holding) the apply lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid()?;
            let fd = std::os::fd::BorrowedFd::borrow_raw(lock_fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| host_failure(format!("cannot start the rollback watchdog: {e}")))?;
    let stdout = child.stdout.take().expect("stdout was piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(ARM_TIMEOUT).unwrap_or_default();
    match line
        .trim()
        .strip_prefix("armed ")
        .and_then(|p| p.parse().ok())
    {
        Some(pid) => Ok(pid),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(host_failure(
                "the rollback watchdog did not start; nothing was changed",
            ))
        }
    }
}

/// `autofw watchdog`: wait for the deadline of the open window, then roll
/// back unless someone decided first.
pub(crate) fn run(state_dir: &std::path::Path) -> anyhow::Result<u8> {
    let state = StateDir::new(state_dir);
    // No terminal to be hung up on, but be explicit: only SIGKILL (or an
    // orderly SIGTERM from an admin) stops a watchdog.
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    state.check_trusted()?;
    // Everything the rollback needs, read now, while the directory works.
    let window = state
        .read_window()?
        .ok_or_else(|| host_failure("watchdog: no rollback window is open"))?;
    let undo = Undo::read_for_rollback(&state)?;
    let decision_lock = state.open_window_lock()?;
    let _alive = state.lock_watchdog()?;
    // Lines go to the state directory's log; once something went wrong they
    // go wherever they can be read (status quotes the latest), so the whole
    // story of a troubled rollback is told, and a quiet one leaves no trace
    // outside the state directory.
    let troubled = std::cell::Cell::new(false);
    let alarm = |line: &str| {
        troubled.set(true);
        state.alarm_watchdog(&window.id, line);
    };
    let log = |line: &str| match troubled.get() {
        true => state.alarm_watchdog(&window.id, line),
        false => state.log_watchdog(line),
    };
    let left = match window.remaining(&clock::now()?) {
        Remaining::Left(ms) => ms,
        _ => 0,
    };
    log(&format!(
        "armed: pid {}, window {}, rollback in {left} ms",
        std::process::id(),
        window.id,
    ));
    println!("armed {}", std::process::id());
    let _ = std::io::stdout().flush();
    detach_stdio();

    loop {
        match state.read_window() {
            Ok(Some(w)) if w.id == window.id => {}
            Ok(_) => {
                log(&format!("window {} closed by someone else", window.id));
                return Ok(exit::OK);
            }
            Err(e) => alarm(&format!("cannot read the window: {e:#}")),
        }
        match clock::now().map(|now| window.remaining(&now)) {
            Ok(Remaining::Left(ms)) => {
                std::thread::sleep(POLL.min(Duration::from_millis(ms)));
            }
            // Passed, or a boot id that cannot be read: roll back now.
            _ => break,
        }
    }
    // Restore first, from memory; retry until the old rules are back: a
    // rollback that fails (the xtables lock, a busy nft, a broken disk)
    // must not leave a lockout in place.
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    let done = loop {
        let decided = Deciding::on_file(&decision_lock).and_then(|deciding| {
            window::roll_back(&deciding, &state, &undo, Why::Expired, Some(&window.id))
        });
        match decided {
            Ok(Some(done)) => break done,
            Ok(None) => {
                log(&format!(
                    "window {} was decided by someone else at the deadline",
                    window.id
                ));
                return Ok(exit::OK);
            }
            Err(e) => {
                // The error says where the firewall stands (the apply's
                // rules still loaded, or the old table back without its
                // blocklist elements).
                alarm(&format!(
                    "DEADLINE PASSED, NOT ROLLED BACK YET: rollback attempt {attempt} failed: \
                     {e:#}; retrying in {} s",
                    backoff.as_secs()
                ));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
        }
    };
    log(&format!(
        "deadline passed: rolled back window {} (ruleset identical to the saved one: {})",
        window.id,
        match done.exact {
            Some(true) => "yes",
            Some(false) => "no, something else changed it during the window",
            None => "cannot tell without nft",
        }
    ));
    // Then the bookkeeping, for as long as it takes: until it is recorded,
    // the window looks open, and confirm refuses it (its rules are gone).
    let mut unrecorded = done.unrecorded.clone();
    let mut backoff = FIRST_BACKOFF;
    while let Some(why) = unrecorded {
        alarm(&format!(
            "the old rules are back, but the rollback cannot be recorded in {}: {why}; \
             retrying in {} s",
            state.root().display(),
            backoff.as_secs()
        ));
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
        let recorded = Deciding::on_file(&decision_lock).and_then(|deciding| {
            window::record_if_open(&deciding, &state, &window.id, done.record.as_ref())
        });
        unrecorded = recorded.err().map(|e| format!("{e:#}"));
    }
    log(&format!("window {} closed", window.id));
    Ok(exit::OK)
}

/// Point stdout and stderr at /dev/null once "armed" is said: `apply` may
/// be gone, and a write to its closed pipe must not kill the watchdog.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
}
