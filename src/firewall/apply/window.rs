//! The rollback window: after `apply` loads new rules, exactly one of three
//! parties decides their fate, whichever comes first: the operator (`yes` at
//! the prompt, or `autofw confirm` from a new login), an explicit
//! `autofw rollback`, or the deadline (the watchdog, or `apply` itself if it
//! is still alive). Each decision runs under the state directory's
//! `window.lock` and ends by removing `window.json`, so a second party finds
//! the window closed and does nothing.

use std::path::PathBuf;

use std::fs::File;

use super::survival::{self, RulesNow, WindowFacts};
use crate::blocklist::SetContents;
use crate::clock;
use crate::error::refused;
use crate::firewall::Snapshot;
use crate::firewall::backend::compare::{RulesState, compare_rules};
use crate::propose::render_nft::element_batches;
use crate::record::{AppliedRecord, Remaining};
use crate::state::{HeldLock, StateDir, now_secs, read_json};

/// What a rollback found and did.
#[derive(Debug)]
pub struct RolledBack {
    /// Whether `nft -t -s list ruleset` now equals the one saved before the
    /// apply (`None`: nft is not installed, so it cannot be compared).
    pub exact: Option<bool>,
    /// The old rules are back, but the state directory could not record it
    /// (read-only, full): why. Its records still show the window open.
    pub unrecorded: Option<String>,
}

/// The outcome of `confirm`.
#[derive(Debug)]
pub enum Confirmed {
    /// Kept; persisted under this root if `--persist` asked for it.
    Kept { persisted: Option<PathBuf> },
    /// The deadline had already passed: it was rolled back instead.
    TooLate(RolledBack),
    /// The window did not survive (a restart, a dead watchdog, rules not
    /// loaded): not confirmed, nothing persisted; rolled back instead (or
    /// the rollback failed, with why).
    Dead {
        reasons: Vec<&'static str>,
        rollback: Result<RolledBack, String>,
    },
}

/// Keep the rules of the open window; persist them if apply was asked to.
/// Persisting happens here and only here, after the decision, and only
/// for a window that survived with its rules loaded: an unconfirmed or
/// untested ruleset never reaches the boot files.
pub fn confirm(state: &StateDir) -> anyhow::Result<Confirmed> {
    require_state_dir(state, "confirm")?;
    let _lock = state.lock_window()?;
    let Some(window) = state.read_window()? else {
        return Err(match state.read_applied()? {
            Some(record) if record.rolled_back_at.is_some() => refused(format!(
                "nothing to confirm: the rules applied at {} were already rolled back; run `autofw apply --confirm` again",
                crate::human::utc(record.applied_at)
            )),
            Some(record) if record.confirmed => {
                refused("nothing to confirm: the last apply is already confirmed")
            }
            _ => refused(format!(
                "nothing to confirm: no rollback window is open in {}",
                state.root().display()
            )),
        });
    };
    let snapshot = saved_snapshot(state)?;
    let remaining = window.remaining(&clock::now()?);
    if remaining == Remaining::Passed {
        return Ok(Confirmed::TooLate(roll_back_locked(state, &snapshot)?));
    }
    let mut record = state
        .read_applied()?
        .ok_or_else(|| refused("the apply record is missing; run `autofw rollback`"))?;
    let facts = WindowFacts {
        same_boot: remaining != Remaining::OtherBoot,
        watchdog_alive: state.watchdog_alive()?,
        rules: rules_now(state, &record)?,
    };
    let reasons = survival::why_not_confirmable(&facts);
    if !reasons.is_empty() {
        let rollback = roll_back_locked(state, &snapshot).map_err(|e| format!("{e:#}"));
        return Ok(Confirmed::Dead { reasons, rollback });
    }
    record.confirmed = true;
    state.write_applied(&record)?;
    state.remove_window()?;
    let mut persisted = None;
    if let Some(root) = &window.persist_root {
        let rules = record
            .rules()
            .map_err(|problem| state.damaged_record(problem))?;
        let batches = match std::fs::read_to_string(state.applied_sets_path()) {
            Ok(text) if record.blocklist.is_some() => {
                let origin = state.applied_sets_path().display().to_string();
                let sets = SetContents::parse_text(&text, &origin)
                    .map_err(|problem| state.damaged_record(&problem))?;
                element_batches(&sets)
            }
            _ => Vec::new(),
        };
        crate::persist::persist(root, &rules, &batches).map_err(|e| {
            e.context(format!(
                "the rules are confirmed and stay loaded, but persisting them under {} failed; \
                 fix that and run `autofw apply --confirm --persist` again",
                root.display()
            ))
        })?;
        record.persisted = true;
        state.write_applied(&record)?;
        persisted = Some(root.clone());
    }
    Ok(Confirmed::Kept { persisted })
}

/// Are the rules of the last apply what is loaded now? Read the way
/// `status` reads them.
fn rules_now(state: &StateDir, record: &AppliedRecord) -> anyhow::Result<RulesNow> {
    let live = crate::firewall::read_live(record, state)?;
    Ok(match compare_rules(&live) {
        RulesState::Live | RulesState::Unverified { .. } => RulesNow::AsApplied,
        RulesState::Missing | RulesState::RolledBack { .. } => RulesNow::Missing,
        RulesState::Changed { .. } => RulesNow::Different,
    })
}

/// Roll back now (`autofw rollback`), window or not, from the saved snapshot.
pub fn roll_back(state: &StateDir) -> anyhow::Result<RolledBack> {
    require_state_dir(state, "roll back")?;
    let _lock = state.lock_window()?;
    let snapshot = saved_snapshot(state)?;
    roll_back_locked(state, &snapshot)
}

/// Roll back now to `snapshot` (`no` at apply's prompt), window or not.
pub fn roll_back_to(state: &StateDir, snapshot: &Snapshot) -> anyhow::Result<RolledBack> {
    let _lock = state.lock_window()?;
    roll_back_locked(state, snapshot)
}

/// Roll back to `snapshot` if the window `id` is still open (the deadline
/// passed). `None` when someone else already decided.
pub fn roll_back_if_open(
    state: &StateDir,
    id: &str,
    snapshot: &Snapshot,
) -> anyhow::Result<Option<RolledBack>> {
    let _lock = state.lock_window()?;
    if_open(state, id, snapshot)
}

/// The same, for the watchdog: with the decision lock file it opened when
/// it started, so the decision needs nothing opened in the state directory.
pub fn roll_back_if_open_with(
    lock: &File,
    state: &StateDir,
    id: &str,
    snapshot: &Snapshot,
) -> anyhow::Result<Option<RolledBack>> {
    let _lock = HeldLock::take(lock)?;
    if_open(state, id, snapshot)
}

/// After a rollback that could not be recorded: record it now, if the
/// window `id` is still open. `Ok(true)` once the window is closed (by this
/// or by someone else).
pub fn record_rollback_if_open(lock: &File, state: &StateDir, id: &str) -> anyhow::Result<bool> {
    let _lock = HeldLock::take(lock)?;
    match state.read_window()? {
        Some(window) if window.id == id => record_rollback(state).map(|()| true),
        _ => Ok(true),
    }
}

fn if_open(state: &StateDir, id: &str, snapshot: &Snapshot) -> anyhow::Result<Option<RolledBack>> {
    match state.read_window() {
        Ok(Some(window)) if window.id == id => roll_back_locked(state, snapshot).map(Some),
        Ok(_) => Ok(None),
        // The window cannot be read (a failing disk): the deadline passed
        // and nobody closed it as far as anyone can tell, so restore.
        Err(_) => roll_back_locked(state, snapshot).map(Some),
    }
}

/// A state directory that does not exist means no apply ever ran with it:
/// say that, rather than fail to open a lock file in it.
fn require_state_dir(state: &StateDir, what: &str) -> anyhow::Result<()> {
    state.check_trusted()?;
    if state.root().is_dir() {
        return Ok(());
    }
    Err(refused(format!(
        "nothing to {what}: no apply has run with the state directory {} (it does not exist); \
         pass the --state-dir that apply used",
        state.root().display()
    )))
}

/// The snapshot the last apply saved.
pub fn saved_snapshot(state: &StateDir) -> anyhow::Result<Snapshot> {
    read_json(&state.snapshot_path())?.ok_or_else(|| {
        refused(format!(
            "nothing to roll back: no apply has saved a ruleset in {}",
            state.root().display()
        ))
    })
}

/// Restore first, record after: the old rules come back even when the
/// state directory cannot be written.
fn roll_back_locked(state: &StateDir, snapshot: &Snapshot) -> anyhow::Result<RolledBack> {
    snapshot.restore()?;
    let exact = snapshot.matches_live();
    let unrecorded = record_rollback(state).err().map(|e| format!("{e:#}"));
    Ok(RolledBack { exact, unrecorded })
}

/// Mark the apply rolled back and close the window.
fn record_rollback(state: &StateDir) -> anyhow::Result<()> {
    if let Some(mut record) = state.read_applied()? {
        record.confirmed = false;
        record.rolled_back_at = Some(now_secs());
        state.write_applied(&record)?;
    }
    state.remove_window()
}
