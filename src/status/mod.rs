//! `autofw status`: what autofw applied, whether a rollback window is open,
//! and the drift between the live listeners and the live rules
//! (docs/status.md).
//!
//! - [`drift`]: the pure core: scan + apply record + live rules → findings;
//! - [`render`]: the report as text or JSON, pure;
//! - this file: the edges, reading the state directory, the socket tables,
//!   the live firewall (through `firewall::nft`/`iptables`) and the process
//!   table. Status only reads: it never changes the firewall or the state
//!   directory (it takes no lock, creates no file), so it is safe to run
//!   from cron or a monitoring agent, even during an apply.

pub mod drift;
pub mod render;

use std::io::Write;

use crate::cli::{SocketSource, StatusArgs};
use crate::clock;
use crate::error::{bad_input, exit, host_failure};
use crate::firewall::{exec, iptables, nft};
use crate::services::ServiceTable;
use crate::state::{AppliedRecord, Remaining, RollbackWindow, StateDir, now_secs};
use drift::{FamilyRules, LiveRules, WindowState};
use render::Report;

pub fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    let state = StateDir::new(&args.state.state_dir);
    check_readable(&state)?;
    let record = state.read_applied()?;
    let now = now_secs();
    let window = match state.read_window()? {
        Some(w) => Some(window_state(&state, &w)?),
        None => None,
    };
    let scan = crate::scan::scan_host(SocketSource::Auto, &ServiceTable::for_host())?;
    // A rolled-back apply is not expected to be loaded: no need to look.
    let live = match &record {
        Some(r) if r.rolled_back_at.is_none() => Some(read_live(r, &state)?),
        _ => None,
    };
    let assessment = drift::assess(&scan, record.as_ref(), live.as_ref(), window.as_ref());
    let report = Report::new(
        state.root().to_path_buf(),
        now,
        record.as_ref(),
        window,
        assessment,
    );
    let text = if args.json {
        render::json(&report)
    } else {
        render::text(&report)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(if report.drift {
        exit::NEGATIVE
    } else {
        exit::OK
    })
}

/// The state directory and the live firewall are root's alone: say so
/// before anything fails halfway with "permission denied".
fn check_readable(state: &StateDir) -> anyhow::Result<()> {
    let dir = state.root();
    if dir.exists() && !dir.is_dir() {
        return Err(bad_input(format!(
            "--state-dir {} is not a directory; give the directory `autofw apply` used",
            dir.display()
        )));
    }
    if !rustix::process::geteuid().is_root() {
        return Err(host_failure(format!(
            "autofw status needs root: the state directory {} is readable by root only, and \
             so are the live firewall rules; run it with sudo",
            dir.display()
        )));
    }
    Ok(())
}

/// Read what the live firewall holds of autofw's rules, and how the applied
/// rules list once loaded, for the backend the record names.
pub(crate) fn read_live(record: &AppliedRecord, state: &StateDir) -> anyhow::Result<LiveRules> {
    match record.backend.as_str() {
        "nft" => {
            exec::require_tools(&["nft"])?;
            let table = nft::live_autofw_table()?;
            // Only worth a scratch namespace when there is a table to compare.
            let expected = match &table {
                Some(_) => nft::canonical(&record.ruleset),
                None => None,
            };
            Ok(LiveRules::Nft { table, expected })
        }
        "iptables" => {
            exec::require_tools(&iptables::TOOLS)?;
            let v6 = record.ruleset_v6.as_deref().ok_or_else(|| {
                damaged(state, "names the iptables backend but has no IPv6 ruleset")
            })?;
            let expected = iptables::canonical(&record.ruleset, v6, record.ipsets.as_deref());
            let (expected_v4, expected_v6) = match expected {
                Some((v4, v6)) => (Some(v4), Some(v6)),
                None => (None, None),
            };
            Ok(LiveRules::Iptables(vec![
                FamilyRules {
                    name: "iptables".to_string(),
                    live: iptables::save_family(iptables::V4)?,
                    applied: record.ruleset.clone(),
                    expected: expected_v4,
                },
                FamilyRules {
                    name: "ip6tables".to_string(),
                    live: iptables::save_family(iptables::V6)?,
                    applied: v6.to_string(),
                    expected: expected_v6,
                },
            ]))
        }
        other => Err(damaged(
            state,
            &format!("names a backend this autofw does not know: `{other}`"),
        )),
    }
}

/// A record this autofw cannot use: like a damaged state file, a host
/// problem (exit 3), with the file named.
fn damaged(state: &StateDir, problem: &str) -> anyhow::Error {
    host_failure(format!(
        "{} {problem}; it was not written by this version of autofw, or it is damaged",
        state.applied_path().display()
    ))
}

/// The open window, with whether the processes guarding it still run,
/// on the boot clock.
fn window_state(state: &StateDir, window: &RollbackWindow) -> anyhow::Result<WindowState> {
    let (seconds_left, seconds_overdue, same_boot) = match window.remaining(&clock::now()?) {
        Remaining::Left(ms) => (ms.div_ceil(1000), 0, true),
        Remaining::Passed => {
            let late = clock::boottime_millis().saturating_sub(window.deadline_boottime_ms);
            (0, late / 1000, true)
        }
        Remaining::OtherBoot => (0, 0, false),
    };
    let watchdog_alive = same_boot && state.watchdog_alive()?;
    Ok(WindowState {
        deadline: window.deadline,
        seconds_left,
        seconds_overdue,
        same_boot,
        watchdog_pid: window.watchdog_pid,
        watchdog_alive,
        watchdog_says: (seconds_overdue > 0)
            .then(|| state.last_watchdog_line(&window.id))
            .flatten(),
        apply_pid: window.apply_pid,
        apply_alive: same_boot && runs_autofw(window.apply_pid, "apply"),
    })
}

/// Is `pid` a running (not zombie) `autofw SUBCOMMAND`? Checking the command
/// line, not just the pid, keeps a recycled pid from passing for a watchdog.
fn runs_autofw(pid: u32, subcommand: &str) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    let Ok(process) = procfs::process::Process::new(pid) else {
        return false;
    };
    let running = process
        .stat()
        .is_ok_and(|stat| !matches!(stat.state, 'Z' | 'X' | 'x'));
    running
        && process
            .cmdline()
            .is_ok_and(|args| args.iter().skip(1).any(|a| a == subcommand))
}
