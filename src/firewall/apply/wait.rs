//! After the load: wait until the window is decided, by whoever decides
//! first (the operator on the terminal, `autofw confirm` or `rollback` from
//! another login, Ctrl-C, the deadline).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::answer::{Answers, Channel, Polled, is_no, is_yes, prompt_keep};
use std::path::{Path, PathBuf};

use super::outcome::{Ending, expired_text, kept_text, report_dead, report_ended};
use super::undo::Undo;
use super::window::{self, Confirmed, Deciding};
use crate::clock;
use crate::error::exit;
use crate::record::{Life, Remaining, RollbackWindow, Why};
use crate::state::StateDir;

const POLL: Duration = Duration::from_millis(100);

/// Wait until the window is decided, by whoever decides first.
pub(super) fn wait_for_decision(
    state: &StateDir,
    window: &RollbackWindow,
    undo: &Undo,
    input: &mut Answers,
    ending: &Ending,
) -> anyhow::Result<u8> {
    let roll_back =
        |why| window::roll_back(&Deciding::take(state)?, state, undo, why, Some(&window.id));
    let decided_elsewhere = || decided_elsewhere(state, ending);
    let interrupted = catch_interrupt();
    let terminal = input.has_terminal();
    if terminal {
        prompt_keep();
    }
    let mut said_stdin_cannot_keep = false;
    loop {
        match state.read_window() {
            Ok(Some(open)) if open.id == window.id => {}
            Ok(_) => return decided_elsewhere(),
            // Unreadable (a failing disk): the deadline below still holds.
            Err(_) => {}
        }
        if interrupted.load(Ordering::Relaxed) {
            say!("\nautofw: interrupted: rolling back now");
            return match roll_back(Why::Interrupted)? {
                Some(done) => Ok(report_ended(ending, &done)),
                None => decided_elsewhere(),
            };
        }
        if !matches!(window.remaining(&clock::now()?), Remaining::Left(_)) {
            // The watchdog is most likely rolling back at this very moment,
            // under the decision lock: wait for it without saying so, then
            // say what happened.
            say!();
            let rolled = Deciding::take_quietly(state)
                .and_then(|deciding| {
                    window::roll_back(&deciding, state, undo, Why::Expired, Some(&window.id))
                })
                .map_err(|e| {
                    e.context(
                        "the deadline passed but putting back the old rules failed; the \
                         watchdog keeps retrying (`autofw status` shows where it stands, \
                         `autofw rollback` tries now)",
                    )
                })?;
            match rolled {
                Some(done) => return Ok(report_ended(ending, &done)),
                None => return decided_elsewhere(),
            }
        }
        match input.poll(POLL) {
            Polled::Line(answer, Channel::Stdin) if is_yes(&answer) => {
                if !said_stdin_cannot_keep {
                    say!(
                        "\nautofw: a `yes` on standard input does not keep the rules (it may \
                         have been typed before they were loaded): {}",
                        if terminal {
                            "answer on the terminal, or run `autofw confirm` from a new login"
                        } else {
                            "run `autofw confirm` from a new login"
                        }
                    );
                    said_stdin_cannot_keep = true;
                }
            }
            Polled::Line(answer, Channel::Terminal) if is_yes(&answer) => {
                match window::confirm(state) {
                    Ok(Confirmed::Kept { persisted }) => {
                        return Ok(report_kept(persisted.as_deref(), ending));
                    }
                    Ok(Confirmed::Already { .. }) => return decided_elsewhere(),
                    Ok(Confirmed::TooLate(done)) => return Ok(report_ended(ending, &done)),
                    Ok(Confirmed::Dead { reasons, rollback }) => {
                        return report_dead(&reasons, rollback);
                    }
                    // Confirmed, but persisting failed: say so (exit 3).
                    Err(err) if state.read_applied()?.is_some_and(|r| r.confirmed()) => {
                        return Err(err);
                    }
                    Err(_) => return decided_elsewhere(),
                }
            }
            Polled::Line(answer, _) if is_no(&answer) => {
                return match roll_back(Why::OperatorSaidNo)? {
                    Some(done) => Ok(report_ended(ending, &done)),
                    None => decided_elsewhere(),
                };
            }
            Polled::Line(_, Channel::Terminal) => prompt_keep(),
            Polled::Line(_, Channel::Stdin) => {}
            Polled::Eof => say!(
                "\nautofw: end of input is not a confirmation; the window stays open for \
                 `autofw confirm` from another session until the deadline"
            ),
            Polled::Nothing => {}
        }
    }
}

/// Ctrl-C while apply waits for the decision: a flag the wait loop reads,
/// so the rules are rolled back now (as `no` would) instead of apply dying
/// and leaving them to the watchdog's deadline.
fn catch_interrupt() -> &'static AtomicBool {
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_sigint(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::Relaxed);
    }
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    &INTERRUPTED
}

/// Someone else (`autofw confirm`, `autofw rollback`, the watchdog)
/// decided: report what they decided.
fn decided_elsewhere(state: &StateDir, ending: &Ending) -> anyhow::Result<u8> {
    match state.read_applied()?.map(|r| r.life) {
        Some(Life::Confirmed(kept)) => {
            say!();
            let root = kept.persisted.then(|| PathBuf::from("/"));
            Ok(report_kept(root.as_deref(), ending))
        }
        Some(Life::RolledBack(rolled)) if rolled.why == Why::Expired => {
            say_part!("\n{}", expired_text(ending, Some(rolled.at), ""));
            Ok(exit::NEGATIVE)
        }
        Some(Life::RolledBack(rolled)) => {
            say!(
                "\nautofw: rolled back at {} ({}): the ruleset saved before this apply was \
                 restored\nautofw: live now: {}",
                crate::human::utc(rolled.at),
                why_words(rolled.why),
                ending.before
            );
            Ok(exit::NEGATIVE)
        }
        // The window's file is gone but nothing was recorded (removed by
        // hand, or the record replaced): say only what is known.
        _ => {
            say!(
                "\nautofw: the rollback window was closed, but no decision was recorded; \
                 `autofw status` shows what is loaded, `autofw rollback` puts back the ruleset \
                 saved before this apply"
            );
            Ok(exit::NEGATIVE)
        }
    }
}

/// Why a rollback decided elsewhere happened, in a few words.
fn why_words(why: Why) -> &'static str {
    match why {
        Why::Expired => "no confirmation before the deadline",
        Why::OperatorSaidNo => "the operator said no",
        Why::Interrupted => "interrupted",
        Why::RollbackCommand => "`autofw rollback` from another login",
        Why::DidNotSurvive => "the window did not survive",
        Why::LoadFailed => "the blocklist could not be loaded",
    }
}

/// Kept: said as `confirm` says it, with what a window without
/// `--persist` leaves to do.
fn report_kept(persisted: Option<&Path>, ending: &Ending) -> u8 {
    println!("confirmed: the new rules are kept");
    let again = ending.again.replacen("--confirm", "--confirm --persist", 1);
    print!("{}", kept_text(persisted, &again));
    exit::OK
}
