//! `autofw apply`: the one step that can lock an operator out of a remote
//! server, made safe (docs/apply.md).
//!
//! apply: build the proposal (same choices as `propose`), print it and a
//! diff against the live rules; with `--confirm`, check the lockout guard,
//! take the lock, ask, then, under the window's decision lock, save the live
//! ruleset, open a rollback window with a detached watchdog and load the
//! rules in one transaction; then wait for the operator's `yes` (here) or
//! `autofw confirm` (from a new login). Anything else, including the end of
//! input, the death of this process or of the SSH session, ends in the saved
//! ruleset being put back at the deadline.

pub(crate) mod answer;
pub(crate) mod decide;
pub(crate) mod disable;
pub(crate) mod guard;
mod load;
pub(crate) mod outcome;
pub(crate) mod plan;
pub(crate) mod restore;
pub(crate) mod summary;
pub(crate) mod survival;
pub(crate) mod undo;
mod wait;
pub(crate) mod watchdog;
pub(crate) mod window;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::blocklist::SetContents;
use crate::clock;
use crate::error::{bad_input, exit, refused};
use crate::firewall::backend::{self, exec};
use crate::firewall::other_filters;
use crate::propose::choices::PolicySource;
use crate::propose::{self, PolicyOptions, Proposal};
use crate::record::{
    AppliedRecord, AtApply, Backend, BlocklistRecord, GivenChoices, Remaining, RollbackWindow,
    Rules,
};
use crate::state::StateDir;
use answer::{Answers, is_yes};
use load::{BlocklistLoad, ToLoad, given, save_and_load};
use outcome::{Ending, describe_before};
use plan::{ApplyOutcome, Guard, Plan, Report, WindowReport};
use wait::wait_for_decision;

/// The longest window we accept: a day. Longer is a typo, not a plan.
const MAX_TIMEOUT: u64 = 86_400;
/// `--timeout`'s default (cli.rs), left out of the hints.
const DEFAULT_TIMEOUT: u64 = 60;

/// What `autofw apply` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct ApplyOptions {
    pub policy: PolicyOptions,
    /// Actually apply (after a prompt); without it, a dry run.
    pub confirm: bool,
    /// Answer the prompt with yes.
    pub yes: bool,
    /// Seconds to wait for confirmation before rolling back.
    pub timeout: u64,
    pub backend: Backend,
    /// Apply even if the lockout guard objects.
    pub force: bool,
    /// One JSON report on stdout instead of the plan (with `confirm`, needs
    /// `no_wait`).
    pub json: bool,
    /// Load, arm the watchdog and return without a prompt; nothing when the
    /// live rules already are the proposal.
    pub no_wait: bool,
    /// The connection the lockout guard checks, instead of this session.
    pub guard: Option<std::net::SocketAddr>,
    /// Persist for boot once confirmed, under `root`.
    pub persist: bool,
    /// Print the whole proposal too (not only the summary and the diff).
    pub verbose: bool,
    pub root: PathBuf,
    pub state_dir: PathBuf,
}

/// What this run does, from the flags, checked once before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No `--confirm`: print the plan, change nothing.
    DryRun,
    /// `--confirm`: load the rules with a rollback window.
    Load {
        /// Ask `Apply these rules?` first (not with `--yes` or `--no-wait`).
        ask: bool,
        /// `--no-wait`: return once loaded; else wait for the decision.
        wait: bool,
    },
}

impl Mode {
    fn of(args: &ApplyOptions) -> anyhow::Result<Mode> {
        if args.timeout == 0 || args.timeout > MAX_TIMEOUT {
            return Err(bad_input(format!(
                "--timeout {} is out of range: give the seconds to wait for confirmation, 1 to {MAX_TIMEOUT}",
                args.timeout
            )));
        }
        if args.json && args.confirm && !args.no_wait {
            return Err(bad_input(
                "--json with --confirm needs --no-wait: a JSON report cannot wait at a prompt",
            ));
        }
        Ok(match args.confirm {
            false => Mode::DryRun,
            true => Mode::Load {
                ask: !args.yes && !args.no_wait,
                wait: !args.no_wait,
            },
        })
    }
}

/// Everything apply works out before it changes anything: the proposal,
/// its rules, what loading them would change, and the lockout guard.
struct Prepared {
    proposal: Proposal,
    rules: Rules,
    /// The rules as people read them before they are loaded (not with
    /// `--json`).
    shown: Option<String>,
    at_apply: AtApply,
    /// nft: the blocklist's elements, loaded apart from the rules.
    sets: Option<SetContents>,
    /// What the record keeps of the blocklist.
    blocklist: Option<BlocklistRecord>,
    /// What autofw loaded last into the live sets ([`Backend::recorded_sets`]).
    recorded: Option<SetContents>,
    plan: Plan,
    guard: Guard,
    /// Other filters on this host that would drop what these rules open.
    other_filters: Vec<String>,
    /// The judge's verdict on them, kept for status once the rules load.
    judged: other_filters::Check,
    /// The policy file read, for the record's given choices.
    policy_source: Option<PolicySource>,
    /// The record of the last apply.
    last: Option<AppliedRecord>,
    /// What opens, what closes and why: what every apply says first.
    summary: summary::Summary,
    /// How the window can end, told with what this apply knows.
    ending: Ending,
}

impl Prepared {
    fn new(args: &ApplyOptions, state: &StateDir) -> anyhow::Result<Prepared> {
        let (scan, choices) = propose::gather::gather(&args.policy)?;
        let mut proposal = propose::build(&scan, &choices);
        let rules = Rules::render(&proposal, args.backend);
        // Rendered now: the warnings added below are not in the rules loaded.
        let shown = (!args.json).then(|| backend::for_people(&proposal, args.backend));
        let at_apply = AtApply::of(&scan, proposal.ruleset());
        let sets = (args.backend.loads_sets_apart() && proposal.blocklist().enabled)
            .then(|| SetContents::of(proposal.blocklist()));
        let blocklist = sets.as_ref().map(|sets| BlocklistRecord {
            files: choices.blocklist_paths.clone(),
            inline: choices
                .blocklist
                .iter()
                .map(|n| n.value.to_string())
                .collect(),
            skip_bad_lines: args.policy.skip_bad_lines,
            sets: sets.summaries(),
            refreshed_at: None,
        });
        // Before anything is read from the state directory: the dry run's
        // plan is read from it too (the sets autofw loaded last).
        state.check_trusted()?;
        // What autofw loaded last into the live sets: the plan's "before", and
        // what the snapshot saves for a rollback (also when this proposal has
        // no blocklist: then the kernel need not be read to save the old one).
        let recorded = args.backend.recorded_sets(state);
        let plan = Plan::of(&rules, sets.as_ref(), recorded.as_ref())?;
        // Said after the plan, and in the JSON report's warnings. Once
        // loaded, the verdict is kept for status (the same rules and filters
        // then need no judging again); a dry run writes nothing.
        let openings = crate::record::openings(proposal.ruleset());
        let judged = other_filters::check(&rules, &openings, args.confirm.then_some(state));
        let other_filters = judged.warnings();
        for warning in &other_filters {
            proposal.add_warning(warning.clone());
        }
        let mut guard = Guard::check(&proposal, args.guard);
        if let Some(client) = guard.client.filter(|_| guard.problem().is_some()) {
            let listed = match proposal.blocklist().contains(client) {
                true => guard::listing(&choices.blocklist_paths, client),
                false => Vec::new(),
            };
            guard.explain(&scan, &choices, &listed);
        }
        let last = state.read_applied().ok().flatten();
        let autofw_loaded = plan.parts.iter().any(|p| !p.before.trim().is_empty());
        // What a rollback of this apply would put back, and the command that
        // gives the same choices again: for what the operator is told.
        let ending = Ending {
            timeout: args.timeout,
            before: describe_before(last.as_ref(), autofw_loaded),
            again: command_again(args, &given(args, choices.policy_source.as_ref())),
        };
        let mut summary = summarize_apply(
            &SummaryInputs {
                last: last.as_ref(),
                // After a rollback, the rules it restored are what is live.
                restored: state.read_previous().ok().flatten(),
                autofw_loaded,
            },
            proposal.ruleset(),
            &at_apply.listening,
            &choices.table,
            &guard,
        );
        summary.removes = backend::other_loaded(args.backend).map(str::to_string);
        Ok(Prepared {
            proposal,
            rules,
            shown,
            at_apply,
            sets,
            blocklist,
            recorded,
            plan,
            guard,
            other_filters,
            judged,
            policy_source: choices.policy_source.clone(),
            last,
            summary,
            ending,
        })
    }

    fn report(&self, outcome: ApplyOutcome) -> Report {
        let mut report = Report::new(
            outcome,
            &self.plan,
            &self.rules,
            &self.proposal,
            &self.guard,
        )
        .with_other_filters(self.judged.report());
        report.summary = Some(self.summary.clone());
        report
    }

    /// For people (not with `--json`): the summary first, the whole
    /// proposal only with `--verbose`, then the diff; then the other
    /// filters' warnings.
    fn show(&self, verbose: bool) {
        if let Some(shown) = &self.shown {
            print!("{}", summary::text(&self.summary));
            if verbose {
                println!();
                print!("{shown}");
            }
            plan::print_diffs(&self.rules, &self.plan);
        }
        for warning in &self.other_filters {
            say!(
                "autofw: warning: {}",
                crate::terminal::escape_controls(warning)
            );
        }
    }
}

pub(crate) fn run(args: &ApplyOptions) -> anyhow::Result<u8> {
    let mode = Mode::of(args)?;
    exec::require_root("autofw apply")?;
    exec::require_tools(args.backend.tools())?;
    if args.confirm {
        refuse_open_window(&args.state_dir)?;
    }
    let state = StateDir::new(&args.state_dir);
    let prepared = Prepared::new(args, &state)?;
    prepared.show(args.verbose);
    let Mode::Load { ask, wait } = mode else {
        return dry_run(args, &prepared);
    };
    check_lockout(args, &prepared)?;

    state.ensure()?;
    let lock = state.lock_apply()?;
    refuse_undecided_window(args, &state)?;

    // Nothing to change: no prompt, no window (a window over the same
    // rules would only risk rolling back what is kept).
    if !prepared.plan.changed() && already_kept(args, &prepared.rules)? {
        if args.json {
            prepared.report(ApplyOutcome::Unchanged).print()?;
        } else {
            println!(
                "unchanged: nothing to change: the live rules already are this proposal; \
                 nothing was loaded and no rollback window was opened"
            );
        }
        return Ok(exit::OK);
    }

    let mut input = Answers::start();
    if ask {
        ask_to_apply(&mut input)?;
    }
    let (window, pending) = save_and_load(args, &state, &lock, prepared.to_load())?;
    prepared.judged.keep(&state);
    if !wait {
        return report_loaded(args, &window, prepared.report(ApplyOutcome::Loaded));
    }
    let terminal = input.listen_to_terminal();
    say!(
        "autofw: rules loaded. They will be rolled back in {} s (watchdog pid {}) unless confirmed.\n\
         autofw: check that you can still get in: from a NEW ssh login run `autofw confirm{}`,\n\
         autofw: {}",
        args.timeout,
        window.watchdog_pid,
        state_flag(&args.state_dir),
        if terminal {
            "or type `yes` here to keep them (anything typed before this was discarded), `no` to roll back now."
        } else {
            "this is the only way to keep them: there is no terminal here to answer on.\n\
             autofw: `no` on standard input, or `autofw rollback`, rolls back now."
        }
    );
    wait_for_decision(&state, &window, &pending.undo, &mut input, &prepared.ending)
}

/// No `--confirm`: the report or the closing line; nothing changed.
fn dry_run(args: &ApplyOptions, prepared: &Prepared) -> anyhow::Result<u8> {
    if args.json {
        prepared.report(ApplyOutcome::DryRun).print()?;
        return Ok(exit::OK);
    }
    if let Some(problem) = prepared.guard.problem() {
        say!("autofw: warning: {problem}. {}", prepared.guard.advice());
    }
    println!(
        "dry run: nothing was changed; run `{}` to apply these rules",
        prepared.ending.again
    );
    Ok(exit::OK)
}

/// The lockout guard: refuse rules that would not let this session's
/// connection in, unless `--force`.
fn check_lockout(args: &ApplyOptions, prepared: &Prepared) -> anyhow::Result<()> {
    let Some(problem) = prepared.guard.problem() else {
        return Ok(());
    };
    if !args.force {
        if args.json {
            prepared.report(ApplyOutcome::Refused).print()?;
        }
        return Err(refused(format!(
            "{problem}; nothing was changed. {}",
            prepared.guard.advice()
        )));
    }
    say!("autofw: warning: --force given: {problem}");
    Ok(())
}

/// Refuse while an earlier window is still open. We hold the apply lock,
/// so its watchdog, which would hold it too, is gone: that window can no
/// longer be confirmed.
fn refuse_undecided_window(args: &ApplyOptions, state: &StateDir) -> anyhow::Result<()> {
    let Some(window) = state.read_window()? else {
        return Ok(());
    };
    let restarted = window.remaining(&clock::now()?) == Remaining::OtherBoot;
    Err(refused(format!(
        "an earlier apply (pid {}) left a rollback window that was never decided, and its \
         watchdog is gone{}: those rules can no longer be confirmed. Run `autofw rollback{}` \
         to put back the rules saved before that apply and close it, then apply again; \
         nothing was changed",
        window.apply_pid,
        if restarted {
            " (the machine restarted since)"
        } else {
            ""
        },
        state_flag(&args.state_dir)
    )))
}

/// `Apply these rules? [y/N]` on standard input; anything but yes refuses.
fn ask_to_apply(input: &mut Answers) -> anyhow::Result<()> {
    say_part!("Apply these rules? [y/N] ");
    let _ = std::io::stderr().flush();
    match input.ask_stdin() {
        Some(answer) if is_yes(&answer) => Ok(()),
        Some(_) => Err(refused("the operator said no; nothing was changed")),
        None => Err(refused("no answer (end of input); nothing was changed")),
    }
}

impl Prepared {
    fn to_load(&self) -> ToLoad<'_> {
        ToLoad {
            rules: &self.rules,
            proposal: &self.proposal,
            at_apply: self.at_apply.clone(),
            blocklist: BlocklistLoad {
                sets: self.sets.as_ref(),
                recorded: self.recorded.as_ref(),
                record: self.blocklist.clone(),
            },
            policy_source: self.policy_source.as_ref(),
            last: self.last.as_ref(),
        }
    }
}

/// `--state-dir X` for the hints we print, when it is not the default.
fn state_flag(state_dir: &Path) -> String {
    if state_dir == Path::new(crate::state::DEFAULT_DIR) {
        String::new()
    } else {
        format!(" --state-dir {}", state_dir.display())
    }
}

/// `--no-wait`, with the live rules equal to the proposal: is there nothing
/// left to do? Yes, unless `--persist` asks for boot files that do not hold
/// these very rules.
fn already_kept(args: &ApplyOptions, rules: &Rules) -> anyhow::Result<bool> {
    if !args.persist {
        return Ok(true);
    }
    Ok(crate::persist::persisted(&args.root)
        .ok()
        .flatten()
        .is_some_and(|persisted| &persisted == rules))
}

/// `--no-wait`: the rules are loaded and the watchdog armed; say how to keep
/// them, and return without waiting.
fn report_loaded(
    args: &ApplyOptions,
    window: &RollbackWindow,
    mut report: Report,
) -> anyhow::Result<u8> {
    if args.json {
        report.window = Some(WindowReport {
            deadline: window.deadline,
            watchdog_pid: window.watchdog_pid,
            state_dir: std::path::absolute(&args.state_dir)
                .unwrap_or_else(|_| args.state_dir.clone())
                .display()
                .to_string(),
        });
        report.print()?;
    } else {
        println!(
            "loaded: the rules are rolled back in {} s (watchdog pid {}) unless \
             `autofw confirm{}` runs from a NEW ssh login before then",
            args.timeout,
            window.watchdog_pid,
            state_flag(&args.state_dir)
        );
    }
    Ok(exit::OK)
}

/// `--confirm` while a rollback window is open and guarded: refused before
/// anything is worked out or printed (the plan would be against rules that
/// may be rolled back in a moment). A window whose watchdog is gone is
/// left to the check under the apply lock, which says so.
fn refuse_open_window(state_dir: &Path) -> anyhow::Result<()> {
    let state = StateDir::new(state_dir);
    if !state.root().is_dir() {
        return Ok(());
    }
    state.check_trusted()?;
    let Some(window) = state.read_window()? else {
        return Ok(());
    };
    if !state.watchdog_alive()? {
        return Ok(());
    }
    Err(refused(format!(
        "a rollback window is open: the rules loaded by apply pid {} are rolled back at {} \
         unless confirmed. End it first with `autofw confirm{}` (from a new login) or \
         `autofw rollback{}`, then apply again; nothing was changed",
        window.apply_pid,
        crate::human::utc(window.deadline),
        state_flag(state_dir),
        state_flag(state_dir)
    )))
}

/// `autofw apply --confirm` with every flag this apply was given but
/// `--yes`, `--force`, `--json` and `--no-wait`: what the hints print, so
/// that following one does not close what a flag opened.
fn command_again(args: &ApplyOptions, given: &GivenChoices) -> String {
    let mut words = vec!["autofw apply --confirm".to_string()];
    if args.backend != Backend::default() {
        words.push(format!("--backend {}", args.backend));
    }
    words.extend(given.flags());
    if args.timeout != DEFAULT_TIMEOUT {
        words.push(format!("--timeout {}", args.timeout));
    }
    if args.persist {
        words.push("--persist".to_string());
    }
    if args.root != Path::new("/") {
        words.push(format!(
            "--root {}",
            crate::record::shell_word(&args.root.to_string_lossy())
        ));
    }
    if let Some(guard) = args.guard {
        words.push(format!("--guard {guard}"));
    }
    words.push(state_flag(&args.state_dir).trim().to_string());
    words.retain(|w| !w.is_empty());
    words.join(" ")
}

/// What the summary is made from, besides the proposal.
struct SummaryInputs<'a> {
    last: Option<&'a AppliedRecord>,
    /// `previous.json`: the rules a rollback of the last apply restored.
    restored: Option<AppliedRecord>,
    /// autofw's rules are loaded now (the plan's "before" is not empty).
    autofw_loaded: bool,
}

/// The summary every apply starts with ([`summary`]): against the record
/// of the rules loaded now (the last apply's; after a rollback, those it
/// restored), and the SSH session the guard checked.
fn summarize_apply(
    inputs: &SummaryInputs<'_>,
    ruleset: &crate::propose::Ruleset,
    listening: &[crate::record::ListeningPort],
    table: &crate::services::ServiceTable,
    guard: &Guard,
) -> summary::Summary {
    let live_record = match inputs.last {
        _ if !inputs.autofw_loaded => None,
        Some(last) if last.rolled_back_at().is_some() => inputs.restored.as_ref(),
        last => last,
    };
    let before = live_record.map(|record| summary::Before {
        opened: &record.opened,
        allow_flags: &record.given.allow,
        listening: &record.listening,
    });
    let session = match (guard.verdict, guard.client, guard.port) {
        (plan::GuardVerdict::NoSession, _, _) | (_, None, _) | (_, _, None) => None,
        (verdict, Some(client), Some(port)) => Some(summary::Session {
            client,
            port,
            admitted: verdict == plan::GuardVerdict::Admitted,
        }),
    };
    summary::summarize(&summary::Facts {
        before,
        ruleset,
        listening,
        table,
        session,
    })
}
