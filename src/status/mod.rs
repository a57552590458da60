//! `autofw status`: what autofw applied, whether a rollback window is open,
//! and the drift between the live listeners and the live rules
//! (docs/status.md).
//!
//! - `firewall::backend::compare` (shared with confirm): live rules against applied ones, pure;
//! - [`drift`]: the pure core: scan + apply record + live rules → findings,
//!   worded by [`wording`];
//! - [`render`]: the report as text or JSON, pure;
//! - this file: the edges, reading the state directory, the socket tables,
//!   the live firewall (through `firewall::backend::nft`/`iptables`) and the process
//!   table. Status only reads: it never changes the firewall, and of the
//!   state directory it writes only two caches, the other filters' verdict
//!   and the applied rules' listing (atomically; never the directory
//!   itself). It
//!   waits for no lock (it only tries the watchdog's to see whether it is
//!   held), so it is safe to run from cron or a monitoring agent, even
//!   during an apply.

pub(crate) mod blocklist;
pub(crate) mod drift;
pub(crate) mod metrics;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod timer;
pub(crate) mod wording;

use std::io::Write;

use crate::blocklist::netlink;
use crate::clock;
use crate::error::{bad_input, exit, host_failure};
use crate::firewall::backend::compare::LiveRules;
use crate::firewall::backend::live_rules;
use crate::firewall::other_filters;
use crate::propose::gather::read_recorded_blocklist;
use crate::record::{AppliedRecord, Backend};
use crate::record::{Remaining, RollbackWindow};
use crate::scan::SocketSource;
use crate::state::{StateDir, now_secs};
use blocklist::BlocklistCheck;
use drift::WindowState;
use render::Report;

/// What `autofw status` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct StatusOptions {
    pub format: OutputFormat,
    /// Write the report there (atomically) instead of stdout.
    pub out: Option<std::path::PathBuf>,
    pub state_dir: std::path::PathBuf,
}

/// How status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// For people.
    Text,
    /// One JSON object (docs/json-schema.md).
    Json,
    /// Prometheus text exposition for node_exporter's textfile collector;
    /// exit 0 whenever it was written ([`metrics`]).
    Prometheus,
}

pub(crate) fn run(args: &StatusOptions) -> anyhow::Result<u8> {
    let state = StateDir::new(&args.state_dir);
    check_readable(&state)?;
    state.check_trusted()?;
    let record = state.read_applied()?;
    let now = now_secs();
    let window = match state.read_window()? {
        Some(w) => Some(window_state(&state, &w)?),
        None => None,
    };
    let scan = crate::scan::scan_host(
        SocketSource::Auto,
        crate::scan::OwnerSource::Auto,
        &crate::scan::host::read_service_table(),
    )?;
    // A rolled-back apply is not expected to be loaded: no need to look.
    let live = match &record {
        Some(r) if r.rolled_back_at().is_none() => Some(live_rules(r, Some(&state))?),
        _ => None,
    };
    // After a rollback: the rules it restored, if autofw recorded them.
    let previous = match &record {
        Some(r) if r.rolled_back_at().is_some() => state.read_previous()?,
        _ => None,
    };
    let previous_live = match &previous {
        Some(p) => Some(live_rules(p, Some(&state))?),
        None => None,
    };
    let disabled = crate::firewall::apply::disable::read(&state)?;
    let around = drift::Around {
        disabled_at: disabled.map(|d| d.at),
        restored: previous.as_ref().zip(previous_live.as_ref()),
        // Against the rules that should be live: after a rollback, those
        // it restored (which may well be of the other backend).
        other_backend: match &record {
            Some(r) if r.rolled_back_at().is_some() => previous.as_ref(),
            r => r.as_ref(),
        }
        .and_then(|r| crate::firewall::backend::other_loaded(r.backend())),
        // No record: are autofw's rules loaded all the same (either backend)?
        unrecorded_rules: record.is_none()
            && Backend::ALL
                .into_iter()
                .any(|b| crate::firewall::backend::other_loaded(b).is_some()),
    };
    let mut assessment = drift::assess_host(
        &scan,
        record.as_ref(),
        live.as_ref(),
        window.as_ref(),
        &around,
    );
    if let Some(check) = match (&record, &live) {
        (Some(r), Some(live)) => read_blocklist(r, live)?,
        _ => None,
    } {
        // Among the findings about the rules as a whole (with_foreign sorts).
        assessment.findings.extend(blocklist::findings(&check));
    }
    if let Some(finding) = record
        .as_ref()
        .and_then(policy_check)
        .and_then(|check| policy::finding(&check))
    {
        assessment.findings.push(finding);
    }
    // The other filters on the host, judged with autofw's rules as loaded.
    // The verdict is cached in the state directory: a status with nothing
    // changed (filters, rules, probes) judges nothing again.
    let check = match (&record, &live) {
        (Some(record), Some(_)) => {
            let check = other_filters::check(&record.rules, &record.openings, Some(&state));
            check.keep(&state);
            check
        }
        _ => other_filters::Check::legacy_only(other_filters::legacy_summary()),
    };
    let judged = (record.is_some() && live.is_some()).then(|| check.report());
    // A check that could not be made is said, or "no drift" would also
    // cover filters that were never judged (propose and apply say it too).
    for note in &check.notes {
        say!("autofw: note: {}", crate::terminal::escape_controls(note));
    }
    let assessment = drift::with_foreign(assessment, &check.drops, &check.legacy);
    let mut report = Report::new(
        state.root().to_path_buf(),
        now,
        record.as_ref(),
        window,
        assessment,
    );
    report.other_filters = judged;
    let format = args.format;
    let text = match format {
        OutputFormat::Text => render::text(&report),
        OutputFormat::Json => render::json(&report),
        OutputFormat::Prometheus => metrics::prometheus(&report),
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
    Ok(if report.drift && format != OutputFormat::Prometheus {
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

/// The blocklist sets by count and digest: as recorded, as live (read from
/// the kernel: exact, about 0.6 s at a million in 64 hash sets, see
/// docs/status.md), and as
/// the files say now. `None` without a blocklist, with the iptables
/// backend, or when the live rules (already read) have no autofw table.
fn read_blocklist(
    record: &AppliedRecord,
    live: &LiveRules,
) -> anyhow::Result<Option<BlocklistCheck>> {
    let Some(recorded) = &record.blocklist else {
        return Ok(None);
    };
    if !live.has_nft_table() {
        return Ok(None);
    }
    let live = netlink::live_sets()?.map(|sets| sets.summaries());
    let files = read_recorded_blocklist(&recorded.files, &recorded.inline, recorded.skip_bad_lines)
        .map(|sets| sets.summaries())
        .map_err(|e| format!("{e:#}"));
    Ok(Some(BlocklistCheck {
        recorded: recorded.sets.clone(),
        live,
        files,
    }))
}

/// The policy file the last apply read (or looked for), then and now.
/// `None` for a rolled-back apply (its rules are not expected live) and for
/// one that read no policy file.
fn policy_check(record: &AppliedRecord) -> Option<policy::PolicyCheck> {
    if record.rolled_back_at().is_some() {
        return None;
    }
    let given = &record.given;
    let path = given.policy.clone()?;
    // Read as propose read it (its digest is of that text: a UTF-8 byte
    // order mark dropped).
    let now = match crate::input::read_text_if_exists(&path, crate::input::Kind::Policy) {
        Ok(text) => Ok(text.map(|t| crate::propose::policy_edit::text_digest(t.as_bytes()))),
        Err(e) => Err(format!("{e:#}")),
    };
    Some(policy::PolicyCheck {
        path,
        then: given.policy_digest.clone(),
        now,
    })
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
