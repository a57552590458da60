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

pub mod answer;
pub mod decide;
pub mod disable;
pub mod guard;
pub mod outcome;
pub mod plan;
pub mod restore;
pub mod summary;
pub mod survival;
pub mod undo;
pub mod watchdog;
pub mod window;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::blocklist::SetContents;
use crate::clock;
use crate::error::{bad_input, exit, refused};
use crate::firewall::LoadFailure;
use crate::firewall::backend::{exec, iptables};
use crate::human::{fold_numbered_runs, unified_diff};
use crate::propose::choices::PolicySource;
use crate::propose::{self, PolicyOptions, Proposal};
use crate::record::{
    AppliedRecord, AtApply, Backend, BlocklistRecord, GivenChoices, Life, Loaded, Remaining,
    RollbackWindow, Rules, Why, opened_ports,
};
use crate::state::{StateDir, now_millis, now_secs, write_json, write_private};
use answer::{Answers, From, Polled, is_no, is_yes, prompt_keep};
use outcome::{Ending, describe_before, expired_text, report_dead, report_ended};
use plan::{Guard, Outcome, Plan, Report, WindowReport};
use undo::{Snapshot, Undo};
use window::{Confirmed, Deciding};

/// The longest window we accept: a day. Longer is a typo, not a plan.
const MAX_TIMEOUT: u64 = 86_400;
/// `--timeout`'s default (cli.rs), left out of the hints.
const DEFAULT_TIMEOUT: u64 = 60;
const POLL: Duration = Duration::from_millis(100);

/// What `autofw apply` was asked for.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
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

pub fn run(args: &ApplyOptions) -> anyhow::Result<u8> {
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
    exec::require_root("autofw apply")?;
    exec::require_tools(crate::firewall::tools(args.backend))?;
    if args.confirm {
        refuse_open_window(&args.state_dir)?;
    }

    let (scan, choices) = propose::gather::gather(&args.policy)?;
    let mut proposal = propose::build(&scan, &choices);
    let rules = Rules::render(&proposal, args.backend);
    let at_apply = AtApply::of(&scan, proposal.ruleset());
    // nft: the blocklist's elements are loaded apart from the rules.
    let sets = (args.backend == Backend::Nft && proposal.blocklist().enabled)
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
    let state = StateDir::new(&args.state_dir);
    // Before anything is read from it: the dry run's plan is read from it
    // too (the sets autofw loaded last).
    state.check_trusted()?;
    // What autofw loaded last into the live sets: the plan's "before", and
    // what the snapshot saves for a rollback (also when this proposal has
    // no blocklist: then the kernel need not be read to save the old one).
    let recorded = match args.backend {
        Backend::Nft => crate::firewall::recorded_sets(&state),
        Backend::Iptables => None,
    };
    let plan = Plan::of(&rules, sets.as_ref(), recorded.as_ref())?;
    // Other filters on this host that would drop what these rules open:
    // said after the plan, and in the JSON report's warnings.
    let ports =
        crate::firewall::other_filters::ports_of(&crate::record::opened_ports(proposal.ruleset()));
    let other_filters = crate::firewall::other_filters::check(&rules, &ports).warnings();
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
    // What a rollback of this apply would put back, and the command that
    // gives the same choices again: for what the operator is told at the end.
    let ending = Ending {
        timeout: args.timeout,
        before: describe_before(
            last.as_ref(),
            plan.parts.iter().any(|p| !p.before.trim().is_empty()),
        ),
        again: command_again(args, &given(args, choices.policy_source.as_ref())),
    };
    let summary = summarize_apply(
        &SummaryInputs {
            last: last.as_ref(),
            // After a rollback, the rules it restored are what is live.
            restored: state.read_previous().ok().flatten(),
            autofw_loaded: plan.parts.iter().any(|p| !p.before.trim().is_empty()),
        },
        proposal.ruleset(),
        &at_apply.listening,
        &choices.table,
        &guard,
    );
    let mut summary = summary;
    summary.removes = other_backend_rules(args.backend);
    let report = |outcome| {
        let mut report = Report::new(outcome, &plan, &rules, &proposal, &guard);
        report.summary = Some(summary.clone());
        report
    };
    if !args.json {
        print!("{}", summary::text(&summary));
        if args.verbose {
            println!();
            print_proposal(&rules);
        }
        print_diffs(&rules, &plan);
    }
    for warning in &other_filters {
        eprintln!(
            "autofw: warning: {}",
            crate::terminal::escape_controls(warning)
        );
    }
    let lockout = guard.problem();

    if !args.confirm {
        if args.json {
            report(Outcome::DryRun).print()?;
            return Ok(exit::OK);
        }
        if let Some(problem) = &lockout {
            eprintln!("autofw: warning: {problem}. {}", guard.advice());
        }
        println!(
            "dry run: nothing was changed; run `{}` to apply these rules",
            ending.again
        );
        return Ok(exit::OK);
    }
    if let Some(problem) = lockout {
        if !args.force {
            if args.json {
                report(Outcome::Refused).print()?;
            }
            return Err(refused(format!(
                "{problem}; nothing was changed. {}",
                guard.advice()
            )));
        }
        eprintln!("autofw: warning: --force given: {problem}");
    }

    state.ensure()?;
    let lock = state.lock_apply()?;
    if let Some(window) = state.read_window()? {
        // We hold the apply lock, so its watchdog, which would hold it too,
        // is gone: that window can no longer be confirmed.
        let restarted = window.remaining(&clock::now()?) == Remaining::OtherBoot;
        return Err(refused(format!(
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
        )));
    }

    // Nothing to change: no prompt, no window (a window over the same
    // rules would only risk rolling back what is kept).
    if !plan.changed() && already_kept(args, &rules)? {
        if args.json {
            report(Outcome::Unchanged).print()?;
        } else {
            println!(
                "unchanged: nothing to change: the live rules already are this proposal; \
                 nothing was loaded and no rollback window was opened"
            );
        }
        return Ok(exit::OK);
    }

    let mut input = Answers::start();
    if !args.yes && !args.no_wait {
        eprint!("Apply these rules? [y/N] ");
        let _ = std::io::stderr().flush();
        match input.ask_stdin() {
            Some(answer) if is_yes(&answer) => {}
            Some(_) => return Err(refused("the operator said no; nothing was changed")),
            None => return Err(refused("no answer (end of input); nothing was changed")),
        }
    }

    // Save, open the window, load: all under the decision lock, so that a
    // `confirm` or `rollback` run meanwhile waits for the load to finish
    // (or fail) instead of deciding a window whose rules are not loaded yet.
    let deciding = state.lock_window()?;
    let pending = Pending::save(
        &state,
        args,
        &rules,
        &proposal,
        at_apply,
        BlocklistLoad {
            sets: sets.as_ref(),
            recorded: recorded.as_ref(),
            record: blocklist,
        },
        choices.policy_source.as_ref(),
    )?;
    let window = match pending.open_window(&state, &lock) {
        Ok(window) => window,
        Err(err) => {
            pending.abandon(&state);
            return Err(err);
        }
    };
    match crate::firewall::load(
        &rules,
        sets.as_ref(),
        pending.undo.snapshot.iptables.as_ref(),
    ) {
        Ok(()) => {}
        Err(LoadFailure::Rules(err)) => {
            pending.abandon(&state);
            return Err(err.context(
                "the firewall refused the new rules; nothing was changed (the tool's own message follows)",
            ));
        }
        // The rules are in, their blocklist is not: put back what was there.
        Err(LoadFailure::Sets(err)) => {
            let decided = Deciding::held(&deciding);
            return match window::roll_back(&decided, &state, &pending.undo, Why::LoadFailed, None)
            {
                Ok(_) => {
                    pending.abandon(&state);
                    Err(err
                        .context("loading the blocklist failed; the previous rules and blocklist were put back")
                        .context("the firewall refused the new rules; nothing was changed (the tool's own message follows)"))
                }
                // The window stays open: its watchdog rolls back at the deadline.
                Err(undo_err) => Err(err.context(format!(
                    "loading the blocklist failed, and putting the previous rules back failed \
                     too ({undo_err:#}); the watchdog (pid {}) tries again at the deadline, in {} s, \
                     or run `autofw rollback`",
                    window.watchdog_pid, args.timeout
                ))),
            };
        }
    }
    if let Err(err) = remove_other_backend(&rules, &pending.undo.snapshot, last.as_ref()) {
        let decided = Deciding::held(&deciding);
        return match window::roll_back(&decided, &state, &pending.undo, Why::LoadFailed, None) {
            Ok(_) => {
                pending.abandon(&state);
                Err(err.context(
                    "removing autofw's rules of the other backend failed; the previous rules \
                     of both were put back, nothing was changed",
                ))
            }
            Err(undo_err) => Err(err.context(format!(
                "removing autofw's rules of the other backend failed, and putting the previous \
                 rules back failed too ({undo_err:#}); the watchdog (pid {}) tries again at the \
                 deadline, in {} s, or run `autofw rollback`",
                window.watchdog_pid, args.timeout
            ))),
        };
    }
    drop(deciding);
    report_accepts_before_jump(&rules);
    if args.no_wait {
        return report_loaded(args, &window, report(Outcome::Loaded));
    }
    let terminal = input.listen_to_terminal();
    eprintln!(
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
    wait_for_decision(&state, &window, &pending.undo, &mut input, &ending)
}

/// `autofw apply --confirm` with every flag this apply was given but
/// `--yes`, `--force`, `--json` and `--no-wait`: what the hints print, so
/// that following one does not close what a flag opened.
fn command_again(args: &ApplyOptions, given: &GivenChoices) -> String {
    let mut words = vec!["autofw apply --confirm".to_string()];
    if args.backend != Backend::Nft {
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

/// Every choice this apply was given, for its record.
fn given(args: &ApplyOptions, policy: Option<&PolicySource>) -> GivenChoices {
    let flags = &args.policy;
    GivenChoices {
        allow: flags.allow.clone(),
        block: flags.block.clone(),
        limit: flags.limit.clone(),
        source: flags.source.clone(),
        blocklist: flags.blocklist.clone(),
        skip_bad_lines: flags.skip_bad_lines,
        // The default looked for, when it did not exist: status then tells
        // a policy written since from none at all.
        policy: match policy {
            Some(p) => Some(p.path.clone()),
            None if flags.no_policy => None,
            None => {
                let default = propose::gather::default_policy(flags.root.as_deref());
                Some(std::path::absolute(&default).unwrap_or(default))
            }
        },
        policy_digest: policy.map(|p| p.digest.clone()),
        no_policy: flags.no_policy,
        from: flags
            .from
            .as_ref()
            .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone())),
    }
}

/// autofw's own rules of the other backend (an earlier apply with it),
/// which the snapshot saved: removed right after the new rules loaded, so
/// that they neither drop what these open nor hide from `status`; a
/// rollback puts both back.
fn remove_other_backend(
    rules: &Rules,
    snapshot: &Snapshot,
    last: Option<&AppliedRecord>,
) -> anyhow::Result<()> {
    match rules {
        Rules::Nft { .. } if snapshot.iptables.is_some() => {
            let set = match last.map(|r| &r.rules) {
                Some(Rules::Iptables { v4, v6, .. }) => Some(iptables::PoliciesSet::of(v4, v6)),
                _ => None,
            };
            iptables::remove_autofw(set.as_ref())?;
        }
        Rules::Iptables { .. } if snapshot.nft.is_some() => {
            crate::firewall::backend::nft::remove_table()?;
        }
        _ => {}
    }
    Ok(())
}

/// On iptables, other tools' INPUT rules that still accept before autofw's
/// jump (one inserted between the save and the load): said, not undone.
fn report_accepts_before_jump(rules: &Rules) {
    if let Rules::Iptables { .. } = rules {
        for warning in iptables::accepts_before_jump().unwrap_or_default() {
            eprintln!("autofw: warning: {warning}");
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

/// The blocklist side of an apply (nft): the sets to load, what autofw
/// loaded last (the live sets, for the snapshot), and what to record.
struct BlocklistLoad<'a> {
    sets: Option<&'a SetContents>,
    recorded: Option<&'a SetContents>,
    record: Option<BlocklistRecord>,
}

/// What is saved before the change, and how to undo the bookkeeping if the
/// change never happens.
struct Pending {
    /// What a rollback of this apply needs, held in memory.
    undo: Undo,
    window: RollbackWindow,
    /// Each record an apply rewrites, with its bytes before (`None`: it
    /// did not exist).
    previous: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// The records an apply rewrites before it loads anything: the applied
/// record, the snapshot, the saved ruleset and both blocklist files.
fn rewritten_records(state: &StateDir) -> [PathBuf; 6] {
    [
        state.applied_path(),
        state.previous_path(),
        state.snapshot_path(),
        state.saved_ruleset_path(),
        state.snapshot_sets_path(),
        state.applied_sets_path(),
    ]
}

impl Pending {
    /// Save the live ruleset and record what is about to be loaded.
    fn save(
        state: &StateDir,
        args: &ApplyOptions,
        rules: &Rules,
        proposal: &Proposal,
        at_apply: AtApply,
        blocklist: BlocklistLoad<'_>,
        policy_source: Option<&PolicySource>,
    ) -> anyhow::Result<Pending> {
        let BlocklistLoad {
            sets,
            recorded,
            record: blocklist,
        } = blocklist;
        let previous = rewritten_records(state)
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).ok();
                (path, bytes)
            })
            .collect();
        let (snapshot, saved_sets) = Snapshot::take(rules, &state.snapshot_sets_path(), recorded)?;
        match sets {
            Some(sets) => write_private(&state.applied_sets_path(), sets.to_text().as_bytes())?,
            None => crate::state::remove_if_exists(&state.applied_sets_path())?,
        }
        write_json(&state.snapshot_path(), &snapshot)?;
        write_private(
            &state.saved_ruleset_path(),
            snapshot
                .nft_ruleset
                .as_deref()
                .unwrap_or_default()
                .as_bytes(),
        )?;
        // The deadline is on the boot clock; the wall-clock one, rounded up,
        // is for people to read.
        let now = clock::now()?;
        let deadline = (now_millis() + args.timeout * 1000).div_ceil(1000);
        let record = AppliedRecord {
            applied_at: now_secs(),
            rules: rules.clone(),
            opened: opened_ports(proposal.ruleset()),
            closed: at_apply.closed,
            listening: at_apply.listening,
            blocklist,
            given: Some(given(args, policy_source)),
            life: Life::Loaded(Loaded { deadline }),
        };
        // The rules live now, which a rollback of this apply restores: the
        // last apply's, unless it was rolled back (then what that rollback
        // restored, already in previous.json).
        match state.read_applied() {
            Ok(Some(last)) if last.rolled_back_at().is_none() => {
                write_json(&state.previous_path(), &last)?
            }
            Ok(Some(_)) => {}
            _ => crate::state::remove_if_exists(&state.previous_path())?,
        }
        state.write_applied(&record)?;
        let window = RollbackWindow {
            deadline,
            deadline_boottime_ms: now.millis + args.timeout * 1000,
            boot_id: now.boot_id,
            watchdog_pid: 0,
            id: format!("{}-{}", now_millis(), std::process::id()),
            apply_pid: std::process::id(),
            // Absolute: `autofw confirm` may run from another directory.
            persist_root: match args.persist {
                true => Some(
                    std::path::absolute(&args.root)
                        .map_err(|e| bad_input(format!("--root {}: {e}", args.root.display())))?,
                ),
                false => None,
            },
        };
        Ok(Pending {
            undo: Undo {
                snapshot,
                sets: saved_sets,
                record: Some(record),
            },
            window,
            previous,
        })
    }

    /// Write the window and start its watchdog; returns the window with the
    /// watchdog's pid.
    fn open_window(
        &self,
        state: &StateDir,
        lock: &crate::state::FileLock,
    ) -> anyhow::Result<RollbackWindow> {
        let mut window = self.window.clone();
        state.write_window(&window)?;
        window.watchdog_pid = watchdog::spawn(state, lock)?;
        state.write_window(&window)?;
        Ok(window)
    }

    /// Nothing was loaded: close the window (its watchdog then exits) and put
    /// the records of the previous apply back, so `autofw rollback` still
    /// undoes that one.
    fn abandon(&self, state: &StateDir) {
        let _ = state.remove_window();
        for (path, previous) in &self.previous {
            let _ = match previous {
                Some(bytes) => write_private(path, bytes),
                None => crate::state::remove_if_exists(path),
            };
        }
    }
}

/// Wait until the window is decided, by whoever decides first.
fn wait_for_decision(
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
            eprintln!("\nautofw: interrupted: rolling back now");
            return match roll_back(Why::Interrupted)? {
                Some(done) => Ok(report_ended(ending, &done)),
                None => decided_elsewhere(),
            };
        }
        if !matches!(window.remaining(&clock::now()?), Remaining::Left(_)) {
            // The watchdog is most likely rolling back at this very moment,
            // under the decision lock: wait for it without saying so, then
            // say what happened.
            eprintln!();
            let rolled = Deciding::take_quietly(state)
                .and_then(|deciding| {
                    window::roll_back(&deciding, state, undo, Why::Expired, Some(&window.id))
                })
                .map_err(|e| {
                    e.context(
                        "the deadline passed but putting back the old rules failed; the watchdog \
                     keeps retrying (`autofw status` shows where it stands, `autofw rollback` \
                     tries now)",
                    )
                })?;
            match rolled {
                Some(done) => return Ok(report_ended(ending, &done)),
                None => return decided_elsewhere(),
            }
        }
        match input.poll(POLL) {
            Polled::Line(answer, From::Stdin) if is_yes(&answer) => {
                if !said_stdin_cannot_keep {
                    eprintln!(
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
            Polled::Line(answer, From::Terminal) if is_yes(&answer) => match window::confirm(state)
            {
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
            },
            Polled::Line(answer, _) if is_no(&answer) => {
                return match roll_back(Why::OperatorSaidNo)? {
                    Some(done) => Ok(report_ended(ending, &done)),
                    None => decided_elsewhere(),
                };
            }
            Polled::Line(_, From::Terminal) => prompt_keep(),
            Polled::Line(_, From::Stdin) => {}
            Polled::Eof => eprintln!(
                "\nautofw: end of input is not a confirmation; the window stays open for \
                 `autofw confirm` from another session until the deadline"
            ),
            Polled::Nothing => {}
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
    print!("{}", outcome::kept_text(persisted, &again));
    exit::OK
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
            eprintln!();
            let root = kept.persisted.then(|| PathBuf::from("/"));
            Ok(report_kept(root.as_deref(), ending))
        }
        Some(Life::RolledBack(rolled)) if rolled.why == Why::Expired => {
            eprint!("\n{}", expired_text(ending, Some(rolled.at), ""));
            Ok(exit::NEGATIVE)
        }
        Some(Life::RolledBack(rolled)) => {
            eprintln!(
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
            eprintln!(
                "\nautofw: the rollback window was closed, but no decision was recorded; \
                 `autofw status` shows what is loaded, `autofw rollback` puts back the ruleset \
                 saved before this apply"
            );
            Ok(exit::NEGATIVE)
        }
    }
}

/// Print the rules as they will be loaded (`--verbose`): a sharded
/// blocklist's 64 sets and chains alike show as one line each way
/// ([`fold_numbered_runs`]); `--json` has them whole.
fn print_proposal(rules: &Rules) {
    match rules {
        Rules::Nft { text } => println!("{}", fold_numbered_runs(text.trim_end()).trim_end()),
        Rules::Iptables { v4, v6, ipsets } => {
            if let Some(sets) = ipsets {
                println!(
                    "{}\n",
                    crate::propose::render_iptables::ipsets_for_people(sets)
                );
            }
            println!("{}\n\n{}", v4.trim_end(), v6.trim_end());
        }
    }
}

/// What changes in the live firewall: a unified diff of autofw's part of
/// it, after the summary.
fn print_diffs(rules: &Rules, plan: &Plan) {
    // iptables: where the jump goes among the live INPUT rules.
    for note in &plan.placement {
        println!("# {}", crate::terminal::escape_controls(note));
    }
    let whose = match rules {
        Rules::Nft { .. } => "",
        Rules::Iptables { .. } => " (autofw's part)",
    };
    for part in &plan.parts {
        print_diff(
            &format!("live {}{whose}", part.name),
            &format!("new {}{whose}", part.name),
            &part.before,
            &part.after,
        );
    }
    // The blocklist sets: their size and change, never their elements, so
    // the output scales with the rules, not the list.
    if !plan.blocklist.is_empty() {
        println!();
        for set in &plan.blocklist {
            println!("# {}", set.line());
        }
    }
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

/// autofw's own rules of the other backend than `backend`, if loaded:
/// this apply removes them ([`remove_other_backend`]).
fn other_backend_rules(backend: Backend) -> Option<String> {
    use crate::firewall::backend::nft;
    match backend {
        Backend::Iptables => (exec::tool_exists("nft")
            && nft::autofw_table_exists().unwrap_or(false))
        .then(|| "autofw's nft rules (table inet autofw)".to_string()),
        Backend::Nft => (iptables::TOOLS.iter().all(|t| exec::tool_exists(t))
            && iptables::has_autofw_rules().unwrap_or(false))
        .then(|| "autofw's iptables rules (the AUTOFW-* chains and jumps)".to_string()),
    }
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
    let no_flags = Vec::new();
    let before = live_record.map(|record| summary::Before {
        opened: &record.opened,
        allow_flags: record.given.as_ref().map_or(&no_flags, |g| &g.allow),
    });
    let session = match (guard.verdict, guard.client, guard.port) {
        (plan::Verdict::NoSession, _, _) | (_, None, _) | (_, _, None) => None,
        (verdict, Some(client), Some(port)) => Some(summary::Session {
            client,
            port,
            admitted: verdict == plan::Verdict::Admitted,
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

fn print_diff(old_name: &str, new_name: &str, old: &str, new: &str) {
    println!();
    if old == new {
        println!("# {old_name}: no change");
        return;
    }
    // The live side may hold any text another tool or a hand edit put there.
    print!(
        "{}",
        crate::terminal::escape_listing(&unified_diff(
            old_name,
            new_name,
            &fold_numbered_runs(old),
            &fold_numbered_runs(new),
            3
        ))
    );
}
