//! The rollback window: after `apply` loads new rules, exactly one of three
//! parties decides their fate, whichever comes first: the operator (`yes` at
//! the prompt, or `autofw confirm` from a new login), an explicit
//! `autofw rollback`, or the deadline (the watchdog, or `apply` itself if it
//! is still alive). Each decision runs under the state directory's
//! `window.lock` and ends by removing `window.json`, so a second party finds
//! the window closed and does nothing.

use std::path::PathBuf;

use super::Snapshot;
use crate::error::refused;
use crate::state::{StateDir, now_secs, read_json};

/// What a rollback found and did.
#[derive(Debug)]
pub struct RolledBack {
    /// Whether `nft -s list ruleset` now equals the one saved before the
    /// apply (`None`: nft is not installed, so it cannot be compared).
    pub exact: Option<bool>,
}

/// The outcome of `confirm`.
#[derive(Debug)]
pub enum Confirmed {
    /// Kept; persisted under this root if `--persist` asked for it.
    Kept { persisted: Option<PathBuf> },
    /// The deadline had already passed: it was rolled back instead.
    TooLate(RolledBack),
}

/// Keep the rules of the open window; persist them if apply was asked to.
/// Persisting happens here and only here, after the decision: an
/// unconfirmed ruleset never reaches the boot files.
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
    if now_secs() >= window.deadline {
        return Ok(Confirmed::TooLate(roll_back_locked(state)?));
    }
    let mut record = state
        .read_applied()?
        .ok_or_else(|| refused("the apply record is missing; run `autofw rollback`"))?;
    record.confirmed = true;
    state.write_applied(&record)?;
    state.remove_window()?;
    let mut persisted = None;
    if let Some(root) = &window.persist_root {
        let rules = record
            .rules()
            .map_err(|problem| state.damaged_record(problem))?;
        crate::persist::persist(root, &rules).map_err(|e| {
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

/// Roll back now (`autofw rollback`, or `no` at the prompt), window or not.
pub fn roll_back(state: &StateDir) -> anyhow::Result<RolledBack> {
    require_state_dir(state, "roll back")?;
    let _lock = state.lock_window()?;
    roll_back_locked(state)
}

/// Roll back if the window `id` is still open (the deadline passed).
/// `None` when someone else already decided.
pub fn roll_back_if_open(state: &StateDir, id: &str) -> anyhow::Result<Option<RolledBack>> {
    let _lock = state.lock_window()?;
    match state.read_window()? {
        Some(window) if window.id == id => roll_back_locked(state).map(Some),
        _ => Ok(None),
    }
}

/// A state directory that does not exist means no apply ever ran with it:
/// say that, rather than fail to open a lock file in it.
fn require_state_dir(state: &StateDir, what: &str) -> anyhow::Result<()> {
    if state.root().is_dir() {
        return Ok(());
    }
    Err(refused(format!(
        "nothing to {what}: no apply has run with the state directory {} (it does not exist); \
         pass the --state-dir that apply used",
        state.root().display()
    )))
}

fn roll_back_locked(state: &StateDir) -> anyhow::Result<RolledBack> {
    let snapshot: Snapshot = read_json(&state.snapshot_path())?.ok_or_else(|| {
        refused(format!(
            "nothing to roll back: no apply has saved a ruleset in {}",
            state.root().display()
        ))
    })?;
    snapshot.restore()?;
    if let Some(mut record) = state.read_applied()? {
        record.confirmed = false;
        record.rolled_back_at = Some(now_secs());
        state.write_applied(&record)?;
    }
    state.remove_window()?;
    Ok(RolledBack {
        exact: snapshot.matches_live(),
    })
}
