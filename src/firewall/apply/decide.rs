//! `autofw confirm` and `autofw rollback`: the operator decides the open
//! rollback window from a new login (docs/apply.md); [`super::window`] holds
//! the decision itself.

use std::path::Path;
use std::time::Duration;

use super::outcome::{
    apply_again, describe_before, exactness, kept_text, report_dead, warn_unrecorded,
};
use super::undo::Undo;
use super::window::{self, Confirmed, Deciding};
use crate::error::{exit, host_failure};
use crate::firewall::backend::exec;
use crate::record::Why;
use crate::state::StateDir;

/// `autofw confirm`: keep the rules of the open window.
pub(crate) fn confirm(state_dir: &Path) -> anyhow::Result<u8> {
    exec::require_root("autofw confirm")?;
    let state = StateDir::new(state_dir);
    state.check_trusted()?;
    state.tighten();
    match window::confirm(&state)? {
        Confirmed::Already { at, persisted } => {
            println!(
                "already confirmed at {}: the rules of the last apply stay loaded; nothing to do",
                crate::human::utc(at)
            );
            if !persisted {
                print!("{}", kept_text(None, &persist_hint(&state)));
            }
            Ok(exit::OK)
        }
        Confirmed::Kept { persisted } => {
            println!("confirmed: the rules loaded by the last apply are kept");
            print!("{}", kept_text(persisted.as_deref(), &persist_hint(&state)));
            // Give the watchdog its moment to see the closed window and exit
            // (and release the apply lock), so a next apply is not refused.
            let start = std::time::Instant::now();
            while state.watchdog_alive().unwrap_or(false)
                && start.elapsed() < Duration::from_secs(2)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(exit::OK)
        }
        Confirmed::TooLate(done) => {
            say!(
                "autofw: too late: the deadline had passed, so the rules were rolled back{}",
                exactness(&done)
            );
            warn_unrecorded(&done);
            Ok(exit::NEGATIVE)
        }
        Confirmed::Dead { reasons, rollback } => report_dead(&reasons, rollback),
    }
}

/// `autofw apply --confirm --persist` with the last apply's choices.
fn persist_hint(state: &StateDir) -> String {
    let record = state.read_applied().ok().flatten();
    apply_again(record.as_ref(), state.root(), true)
}

/// `autofw rollback`: put back the ruleset saved before the last apply.
/// Everything the restore needs is read and checked first: a damaged saved
/// file stops it before anything changes (exit 3, naming the file).
pub(crate) fn rollback(state_dir: &Path) -> anyhow::Result<u8> {
    exec::require_root("autofw rollback")?;
    let state = StateDir::new(state_dir);
    window::require_state_dir(&state, "roll back")?;
    state.tighten();
    let deciding = Deciding::take(&state)?;
    let undo = Undo::read_for_rollback(&state)?;
    exec::require_tools(undo.snapshot.backend.tools())?;
    let done = window::roll_back(&deciding, &state, &undo, Why::RollbackCommand, None)?
        .ok_or_else(|| host_failure("nothing was rolled back"))?;
    println!(
        "rolled back: the ruleset saved before the last apply is restored{}",
        exactness(&done)
    );
    // What that is: the rules recorded as live when that apply took its
    // snapshot (previous.json), or none of autofw's.
    let previous = state.read_previous().ok().flatten();
    println!(
        "live now: {}",
        describe_before(previous.as_ref(), undo.snapshot.held_autofw())
    );
    warn_unrecorded(&done);
    if done.record.as_ref().is_some_and(|r| r.persisted()) {
        println!(
            "note: the persisted boot ruleset is unchanged; run `autofw unpersist` so it is not loaded at boot"
        );
    }
    Ok(exit::OK)
}
