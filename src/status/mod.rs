//! `autofw status`: what autofw applied, whether a rollback window is open,
//! and the drift between the live listeners and the live rules
//! (docs/status.md).
//!
//! - [`compare`]: live rules against applied ones, pure;
//! - [`drift`]: the pure core: scan + apply record + live rules → findings,
//!   worded by [`wording`];
//! - [`render`]: the report as text or JSON, pure;
//! - this file: the edges, reading the state directory, the socket tables,
//!   the live firewall (through `firewall::nft`/`iptables`) and the process
//!   table. Status only reads: it never changes the firewall or the state
//!   directory (it takes no lock, creates no file), so it is safe to run
//!   from cron or a monitoring agent, even during an apply.

pub mod compare;
pub mod drift;
pub mod metrics;
pub mod render;
pub mod timer;
pub mod wording;

use std::io::Write;

use crate::error::{bad_input, exit, host_failure};
use crate::firewall::{exec, iptables, nft};
use crate::record::{AppliedRecord, RollbackWindow, Rules};
use crate::scan::SocketSource;
use crate::state::{StateDir, now_secs};
use compare::{FamilyRules, LiveRules};
use drift::WindowState;
use render::Report;

/// What `autofw status` was asked for.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    pub format: Format,
    /// Write the report there (atomically) instead of stdout.
    pub out: Option<std::path::PathBuf>,
    pub state_dir: std::path::PathBuf,
}

/// How status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object (docs/json-schema.md).
    Json,
    /// Prometheus text exposition for node_exporter's textfile collector;
    /// exit 0 whenever it was written ([`metrics`]).
    Prometheus,
}

pub fn run(args: &StatusOptions) -> anyhow::Result<u8> {
    let state = StateDir::new(&args.state_dir);
    check_readable(&state)?;
    let record = state.read_applied()?;
    let now = now_secs();
    let window = state.read_window()?.map(|w| window_state(&w, now));
    let scan =
        crate::scan::scan_host(SocketSource::Auto, &crate::scan::host::read_service_table())?;
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
    let format = args.format;
    let text = match format {
        Format::Text => render::text(&report),
        Format::Json => render::json(&report),
        Format::Prometheus => metrics::prometheus(&report),
    };
    match &args.out {
        Some(path) => write_report(path, &text)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    // The metrics carry the drift: a timer that wrote them did its job.
    Ok(if report.drift && format != Format::Prometheus {
        exit::NEGATIVE
    } else {
        exit::OK
    })
}

/// `--out FILE`: a temp file in the same directory renamed over FILE, so a
/// collector reading the directory never sees half a report. World-readable
/// (0644): node_exporter does not run as root, and the report holds no
/// secret that `status` would not print.
fn write_report(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let fail = |e: std::io::Error| host_failure(format!("cannot write {}: {e}", path.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".autofw-status")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
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
fn read_live(record: &AppliedRecord, state: &StateDir) -> anyhow::Result<LiveRules> {
    match record
        .rules()
        .map_err(|problem| state.damaged_record(problem))?
    {
        Rules::Nft { text } => {
            exec::require_tools(&["nft"])?;
            let table = nft::live_autofw_table()?;
            // Only worth a scratch namespace when there is a table to compare.
            let expected = match &table {
                Some(_) => nft::canonical(&text),
                None => None,
            };
            Ok(LiveRules::Nft { table, expected })
        }
        Rules::Iptables { v4, v6, ipsets } => {
            exec::require_tools(&iptables::TOOLS)?;
            let expected = iptables::canonical(&v4, &v6, ipsets.as_deref());
            let (expected_v4, expected_v6) = match expected {
                Some((v4, v6)) => (Some(v4), Some(v6)),
                None => (None, None),
            };
            Ok(LiveRules::Iptables(vec![
                FamilyRules {
                    name: "iptables".to_string(),
                    live: iptables::save_family(iptables::V4)?,
                    applied: v4,
                    expected: expected_v4,
                },
                FamilyRules {
                    name: "ip6tables".to_string(),
                    live: iptables::save_family(iptables::V6)?,
                    applied: v6,
                    expected: expected_v6,
                },
            ]))
        }
    }
}

/// The open window, with whether the processes guarding it still run.
fn window_state(window: &RollbackWindow, now: u64) -> WindowState {
    WindowState {
        deadline: window.deadline,
        seconds_left: window.deadline.saturating_sub(now),
        watchdog_pid: window.watchdog_pid,
        watchdog_alive: runs_autofw(window.watchdog_pid, "watchdog"),
        apply_pid: window.apply_pid,
        apply_alive: runs_autofw(window.apply_pid, "apply"),
    }
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
