//! The change itself: save the live firewall and record what is about to
//! be loaded, open the rollback window with its watchdog, load, all under
//! the decision lock; when anything fails, the records are put back as
//! they were, so `autofw rollback` still undoes the previous apply.

use std::path::PathBuf;

use super::ApplyOptions;
use super::undo::{Snapshot, Undo};
use super::watchdog;
use super::window::{self, Deciding};
use crate::blocklist::SetContents;
use crate::clock;
use crate::error::bad_input;
use crate::firewall::backend::{self, LoadFailure};
use crate::propose::choices::PolicySource;
use crate::propose::{self, Proposal};
use crate::record::{
    AppliedRecord, AtApply, BlocklistRecord, GivenChoices, Life, Loaded, RollbackWindow, Rules,
    Why, opened_ports,
};
use crate::state::{StateDir, now_millis, now_secs, write_json, write_private};

/// What [`save_and_load`] needs of the prepared apply.
pub(super) struct ToLoad<'a> {
    pub(super) rules: &'a Rules,
    pub(super) proposal: &'a Proposal,
    pub(super) at_apply: AtApply,
    pub(super) blocklist: BlocklistLoad<'a>,
    /// The policy file read, for the record's given choices.
    pub(super) policy_source: Option<&'a PolicySource>,
    /// The record of the last apply (its iptables policies are the ones to
    /// put back when its rules of the other backend go).
    pub(super) last: Option<&'a AppliedRecord>,
}

/// Save, open the window, load: all under the decision lock, so that a
/// `confirm` or `rollback` run meanwhile waits for the load to finish (or
/// fail) instead of deciding a window whose rules are not loaded yet.
/// When the rules are refused, the bookkeeping is put back as it was; when
/// only the blocklist's elements are, the previous rules are put back.
pub(super) fn save_and_load(
    args: &ApplyOptions,
    state: &StateDir,
    lock: &crate::state::FileLock,
    load: ToLoad<'_>,
) -> anyhow::Result<(RollbackWindow, Pending)> {
    let deciding = state.lock_window()?;
    let sets = load.blocklist.sets;
    let pending = Pending::save(
        state,
        args,
        load.rules,
        load.proposal,
        load.at_apply,
        load.blocklist,
        load.policy_source,
    )?;
    let window = match pending.open_window(state, lock) {
        Ok(window) => window,
        Err(err) => {
            pending.abandon(state);
            return Err(err);
        }
    };
    // Name the policy file the rules were drafted with: a value in it is
    // the likeliest cause (the parser checks what it knows the kernel
    // refuses, and may not know everything).
    let drafted = match load.policy_source {
        Some(policy) => format!(
            " drafted with the policy file {}",
            crate::terminal::path(&policy.path)
        ),
        None => String::new(),
    };
    match backend::load(load.rules, sets, pending.undo.snapshot.iptables.as_ref()) {
        Ok(()) => {}
        Err(LoadFailure::Rules(err)) => {
            pending.abandon(state);
            return Err(err.context(format!(
                "the firewall refused the new rules{drafted}; nothing was changed (the tool's own \
                 message follows)"
            )));
        }
        // The rules are in, their blocklist is not: put back what was there.
        Err(LoadFailure::Sets(err)) => {
            let decided = Deciding::held(&deciding);
            return match window::roll_back(&decided, state, &pending.undo, Why::LoadFailed, None) {
                Ok(_) => {
                    pending.abandon(state);
                    Err(err
                        .context("loading the blocklist failed; the previous rules and blocklist were put back")
                        .context(format!("the firewall refused the new rules{drafted}; nothing was changed (the tool's own message follows)")))
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
    if let Err(err) = backend::remove_other(load.rules, load.last.map(|r| &r.rules)) {
        let decided = Deciding::held(&deciding);
        return match window::roll_back(&decided, state, &pending.undo, Why::LoadFailed, None) {
            Ok(_) => {
                pending.abandon(state);
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
    report_after_load(load.rules);
    Ok((window, pending))
}

/// What the backend says once the rules are loaded (iptables: other
/// tools' rules that accept before autofw's jump).
fn report_after_load(rules: &Rules) {
    for warning in backend::warnings_after_load(rules) {
        say!("autofw: warning: {warning}");
    }
}

/// Every choice this apply was given, for its record.
pub(super) fn given(args: &ApplyOptions, policy: Option<&PolicySource>) -> GivenChoices {
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

/// The blocklist side of an apply (nft): the sets to load, what autofw
/// loaded last (the live sets, for the snapshot), and what to record.
pub(super) struct BlocklistLoad<'a> {
    pub(super) sets: Option<&'a SetContents>,
    pub(super) recorded: Option<&'a SetContents>,
    pub(super) record: Option<BlocklistRecord>,
}

/// What is saved before the change, and how to undo the bookkeeping if the
/// change never happens.
pub(super) struct Pending {
    /// What a rollback of this apply needs, held in memory.
    pub(super) undo: Undo,
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
            given: given(args, policy_source),
            openings: crate::record::openings(proposal.ruleset()),
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
