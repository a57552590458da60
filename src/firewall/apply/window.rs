//! The rollback window: after `apply` loads new rules, exactly one of three
//! parties decides their fate, whichever comes first: the operator (`yes` at
//! the prompt, or `autofw confirm` from a new login), an explicit
//! `autofw rollback`, or the deadline (the watchdog, or `apply` itself if it
//! is still alive). Each decision runs under the state directory's
//! `window.lock` and ends by removing `window.json`, so a second party finds
//! the window closed and does nothing.

use std::fs::File;
use std::path::PathBuf;

use super::survival::{self, RulesNow, WindowFacts};
use super::undo::Undo;
use crate::blocklist::SetContents;
use crate::clock;
use crate::error::{host_failure, refused};
use crate::firewall::backend::compare::{RulesState, compare_rules};
use crate::propose::render_nft::element_batches;
use crate::record::{AppliedRecord, Life, Refusal, Remaining, Why};
use crate::state::{FileLock, HeldLock, StateDir, now_secs};

/// What a rollback found and did.
#[derive(Debug)]
pub(crate) struct RolledBack {
    /// Whether the live firewall now equals the one saved before the apply:
    /// `nft -t -s list ruleset` byte for byte, and each blocklist set by
    /// count and digest (`None`: nft is not installed, so it cannot be
    /// compared).
    pub exact: Option<bool>,
    /// The old rules are back, but the state directory could not record it
    /// (read-only, full): why. Its records still show what they showed.
    pub unrecorded: Option<String>,
    /// A rollback window was open: its watchdog keeps trying to record the
    /// rollback (`unrecorded`).
    pub window_open: bool,
    /// The apply record as the rollback left it (what is written, or is
    /// still to be written when `unrecorded`).
    pub record: Option<AppliedRecord>,
}

/// The outcome of `confirm`.
#[derive(Debug)]
pub(crate) enum Confirmed {
    /// No window is open, and the last apply was confirmed already (at
    /// `at`, persisted or not): nothing to do.
    Already { at: u64, persisted: bool },
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

/// Proof that the caller holds the decision lock (`window.lock`): a
/// decision is only ever made under it.
pub(crate) struct Deciding<'a> {
    _lock: Lock<'a>,
}

enum Lock<'a> {
    /// Taken now, by path.
    Taken { _lock: FileLock },
    /// Taken on a lock file opened earlier (the watchdog's).
    OnFile { _lock: HeldLock<'a> },
    /// Held already by the caller (apply, from the save through the load).
    Held { _lock: &'a FileLock },
}

impl Deciding<'static> {
    /// Take the decision lock, waiting for it.
    pub(crate) fn take(state: &StateDir) -> anyhow::Result<Deciding<'static>> {
        Ok(Deciding {
            _lock: Lock::Taken {
                _lock: state.lock_window()?,
            },
        })
    }

    /// The same, without saying that it waits (apply at its deadline).
    pub(crate) fn take_quietly(state: &StateDir) -> anyhow::Result<Deciding<'static>> {
        Ok(Deciding {
            _lock: Lock::Taken {
                _lock: state.lock_window_quietly()?,
            },
        })
    }
}

impl<'a> Deciding<'a> {
    /// Take it on the lock file the watchdog opened when it started, so a
    /// decision needs nothing opened in the state directory.
    pub(crate) fn on_file(file: &'a File) -> anyhow::Result<Deciding<'a>> {
        Ok(Deciding {
            _lock: Lock::OnFile {
                _lock: HeldLock::take(file)?,
            },
        })
    }

    /// The lock the caller took and still holds.
    pub(crate) fn held(lock: &'a FileLock) -> Deciding<'a> {
        Deciding {
            _lock: Lock::Held { _lock: lock },
        }
    }
}

/// Keep the rules of the open window; persist them if apply was asked to.
/// Persisting happens here and only here, after the decision, and only
/// for a window that survived with its rules loaded: an unconfirmed or
/// untested ruleset never reaches the boot files.
pub(crate) fn confirm(state: &StateDir) -> anyhow::Result<Confirmed> {
    require_state_dir(state, "confirm")?;
    let deciding = Deciding::take(state)?;
    let Some(window) = state.read_window()? else {
        // Kept already: a retried `confirm` (a script, a second login)
        // asked for what is so. Not an error.
        if let Some(Life::Confirmed(kept)) = state.read_applied()?.map(|r| r.life) {
            return Ok(Confirmed::Already {
                at: kept.at,
                persisted: kept.persisted,
            });
        }
        return Err(match state.read_applied()? {
            Some(record) if record.rolled_back_at().is_some() => refused(format!(
                "nothing to confirm: the rules applied at {} were already rolled back; run `autofw apply --confirm` again",
                crate::human::utc(record.applied_at)
            )),
            _ => refused(format!(
                "nothing to confirm: no rollback window is open in {}",
                state.root().display()
            )),
        });
    };
    let remaining = window.remaining(&clock::now()?);
    if remaining == Remaining::Passed {
        let undo = Undo::read_for_rollback(state)?;
        return match roll_back(&deciding, state, &undo, Why::Expired, Some(&window.id))? {
            Some(done) => Ok(Confirmed::TooLate(done)),
            None => Err(refused(
                "nothing to confirm: the last apply is already confirmed",
            )),
        };
    }
    let mut record = state
        .read_applied()?
        .ok_or_else(|| refused("the apply record is missing; run `autofw rollback`"))?;
    let facts = WindowFacts {
        same_boot: remaining != Remaining::OtherBoot,
        watchdog_alive: state.watchdog_alive()?,
        rules: rules_now(&record, state)?,
    };
    let reasons = survival::why_not_confirmable(&facts);
    if !reasons.is_empty() {
        let rollback = Undo::read_for_rollback(state)
            .and_then(|undo| {
                roll_back(
                    &deciding,
                    state,
                    &undo,
                    Why::DidNotSurvive,
                    Some(&window.id),
                )
            })
            .map_err(|e| format!("{e:#}"))
            .and_then(|done| done.ok_or_else(|| "the last apply is already confirmed".into()));
        return Ok(Confirmed::Dead { reasons, rollback });
    }
    record.life = match record.life.clone().confirm(now_secs()) {
        Ok(life) => life,
        // Rolled back (or kept) already, and only the window's file was
        // left behind: it is over.
        Err(_) => {
            state.remove_window()?;
            return Err(refused(format!(
                "nothing to confirm: the rules applied at {} were already {}",
                crate::human::utc(record.applied_at),
                if record.confirmed() {
                    "confirmed"
                } else {
                    "rolled back; run `autofw apply --confirm` again"
                }
            )));
        }
    };
    state.write_applied(&record)?;
    state.remove_window()?;
    // Kept: autofw filters again (`autofw disable` is over).
    super::disable::clear(state)?;
    let mut persisted = None;
    if let Some(root) = &window.persist_root {
        let batches = match record.blocklist {
            Some(_) => element_batches(&applied_sets(state)?),
            None => Vec::new(),
        };
        crate::persist::persist(root, &record.rules, &batches).map_err(|e| {
            e.context(format!(
                "the rules are confirmed and stay loaded, but persisting them under {} failed; \
                 fix that and run `autofw apply --confirm --persist` again",
                root.display()
            ))
        })?;
        if let Ok(life) = record.life.clone().persist() {
            record.life = life;
        }
        state.write_applied(&record)?;
        persisted = Some(root.clone());
    }
    Ok(Confirmed::Kept { persisted })
}

/// `applied-sets.txt`: the blocklist elements the last apply or refresh
/// loaded, for the boot files.
fn applied_sets(state: &StateDir) -> anyhow::Result<SetContents> {
    let path = state.applied_sets_path();
    let damaged = |why: String| {
        host_failure(format!(
            "the rules are confirmed and stay loaded, but the blocklist elements they loaded \
             ({}) {why}, so nothing was persisted; run `autofw apply --confirm --persist` again",
            path.display()
        ))
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| damaged(format!("cannot be read: {e}")))?;
    SetContents::parse_text(&text, &path.display().to_string())
        .map_err(|e| damaged(format!("are damaged: {e}")))
}

/// Are the rules of the last apply what is loaded now? Read the way
/// `status` reads them, with the listing it keeps in `state` (once a status
/// or a confirm listed these rules, none needs a scratch namespace again).
fn rules_now(record: &AppliedRecord, state: &StateDir) -> anyhow::Result<RulesNow> {
    let live = crate::firewall::backend::live_rules(record, Some(state))?;
    Ok(match compare_rules(&live) {
        RulesState::Live | RulesState::Unverified { .. } => RulesNow::AsApplied,
        RulesState::Missing | RulesState::RolledBack { .. } => RulesNow::Missing,
        RulesState::Changed { .. } => RulesNow::Different,
    })
}

/// The one way rules are rolled back, whoever decides it (the deadline, in
/// the watchdog or in apply; `no` or Ctrl-C at apply's prompt; `autofw
/// rollback`; a `confirm` that found the window dead or too late; a
/// blocklist the kernel refused): under the decision lock, with everything
/// the restore needs already read and checked (`undo`).
///
/// With `window`, only while that window is still open: `None` when
/// someone else decided first, or when the record says its rules were
/// confirmed (the window's file was all that was left of it: it is removed,
/// the rules stay). The record's next state is worked out before anything
/// changes; then the old rules are put back, from memory; then the
/// bookkeeping is written, which may fail without undoing the restore
/// (`RolledBack::unrecorded`).
pub(crate) fn roll_back(
    _deciding: &Deciding<'_>,
    state: &StateDir,
    undo: &Undo,
    why: Why,
    window: Option<&str>,
) -> anyhow::Result<Option<RolledBack>> {
    let window_open = match (window, state.read_window()) {
        (Some(id), Ok(Some(open))) => open.id == id,
        (Some(_), Ok(None)) => false,
        (None, Ok(open)) => open.is_some(),
        // The window cannot be read (a failing disk): the deadline passed
        // and nobody closed it as far as anyone can tell, so restore.
        (_, Err(_)) => true,
    };
    if window.is_some() && !window_open {
        return Ok(None);
    }
    // The latest record: the state directory's, else the one held.
    let current = match state.read_applied() {
        Ok(Some(record)) => Some(record),
        _ => undo.record.clone(),
    };
    let next = match current {
        None => None,
        Some(mut record) => match record.life.clone().roll_back(now_secs(), why) {
            Ok(life) => {
                record.life = life;
                Some(record)
            }
            Err(Refusal::AlreadyConfirmed) if window.is_some() => {
                let _ = state.remove_window();
                return Ok(None);
            }
            Err(_) => {
                return Err(refused(
                    "the rules of the last apply were confirmed; only `autofw rollback` puts \
                     back the ruleset saved before it",
                ));
            }
        },
    };
    undo.restore()?;
    let exact = undo.matches_live();
    let unrecorded = record(state, next.as_ref()).err().map(|e| format!("{e:#}"));
    Ok(Some(RolledBack {
        exact,
        unrecorded,
        window_open,
        record: next,
    }))
}

/// After a rollback that could not be recorded: record it now (`next`,
/// the record it left), if the window `id` is still open.
pub(crate) fn record_if_open(
    _deciding: &Deciding<'_>,
    state: &StateDir,
    id: &str,
    next: Option<&AppliedRecord>,
) -> anyhow::Result<()> {
    match state.read_window()? {
        Some(window) if window.id == id => record(state, next),
        _ => Ok(()),
    }
}

/// A state directory that does not exist means no apply ever ran with it:
/// say that, rather than fail to open a lock file in it.
pub(crate) fn require_state_dir(state: &StateDir, what: &str) -> anyhow::Result<()> {
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

/// Write the record a rollback left, and close the window.
fn record(state: &StateDir, next: Option<&AppliedRecord>) -> anyhow::Result<()> {
    if let Some(record) = next {
        state.write_applied(record)?;
    }
    state.remove_window()
}
