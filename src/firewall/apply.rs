//! `autofw apply`, `confirm` and `rollback`: the one step that can lock an
//! operator out of a remote server, made safe (docs/apply.md).
//!
//! apply: build the proposal (same choices as `propose`), print it and a
//! diff against the live rules; with `--confirm`, check the lockout guard,
//! take the lock, ask, save the live ruleset, open a rollback window with a
//! detached watchdog, load the rules in one transaction, then wait for the
//! operator's `yes` (here) or `autofw confirm` (from a new login). Anything
//! else, including the end of input, the death of this process or of the
//! SSH session, ends in the saved ruleset being put back at the deadline.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::filter_view::FilterView;
use super::window::{self, Confirmed, RolledBack};
use super::{Snapshot, exec, iptables, nft, nft_sets, session, watchdog};
use crate::error::{bad_input, exit, refused};
use crate::propose::blocklist::{SETS, SetContents, set_name, summary_line};
use crate::propose::{self, PolicyOptions, Proposal};
use crate::record::{
    AppliedRecord, AtApply, Backend, BlocklistRecord, RollbackWindow, Rules, opened_ports,
};
use crate::state::{StateDir, now_millis, now_secs, write_json, write_private};

/// The longest window we accept: a day. Longer is a typo, not a plan.
const MAX_TIMEOUT: u64 = 86_400;
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
    /// Persist for boot once confirmed, under `root`.
    pub persist: bool,
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
    exec::require_root("autofw apply")?;
    exec::require_tools(super::tools(args.backend))?;

    let (scan, choices) = propose::gather(&args.policy)?;
    let proposal = propose::build(&scan, &choices)?;
    let rules = Rules::render(&proposal, args.backend);
    let at_apply = AtApply::of(&scan, proposal.ruleset());
    // nft: the blocklist's elements are loaded apart from the rules.
    let sets = (args.backend == Backend::Nft && proposal.blocklist().enabled)
        .then(|| SetContents::of(proposal.blocklist()));
    let blocklist = sets.as_ref().map(|sets| BlocklistRecord {
        files: choices.blocklist_paths.clone(),
        inline: choices.blocklist.iter().map(ToString::to_string).collect(),
        skip_bad_lines: args.policy.skip_bad_lines,
        sets: sets.summaries(),
        refreshed_at: None,
    });
    print_plan(&rules, sets.as_ref())?;
    let lockout = lockout_problem(&proposal);

    if !args.confirm {
        if let Some(problem) = &lockout {
            eprintln!("autofw: warning: {problem}");
        }
        println!("dry run: nothing was changed; run `autofw apply --confirm` to apply these rules");
        return Ok(exit::OK);
    }
    if let Some(problem) = lockout {
        if !args.force {
            return Err(refused(format!(
                "{problem}; nothing was changed. Open that port (for instance --allow {}/tcp), \
                 or pass --force if you have another way in (a console)",
                session::current().map_or(22, |s| s.server_port)
            )));
        }
        eprintln!("autofw: warning: --force given: {problem}");
    }

    let state = StateDir::new(&args.state_dir);
    state.ensure()?;
    let lock = state.lock_apply()?;
    if let Some(window) = state.read_window()? {
        return Err(refused(format!(
            "a rollback window from an earlier apply (pid {}) is still open, and its watchdog \
             (pid {}) is gone; decide it first with `autofw confirm` or `autofw rollback`",
            window.apply_pid, window.watchdog_pid
        )));
    }

    let mut input = Input::start();
    if !args.yes {
        eprint!("Apply these rules? [y/N] ");
        let _ = std::io::stderr().flush();
        match input.next_blocking() {
            Some(answer) if is_yes(&answer) => {}
            Some(_) => return Err(refused("the operator said no; nothing was changed")),
            None => return Err(refused("no answer (end of input); nothing was changed")),
        }
    }

    let pending = Pending::save(
        &state,
        args,
        &rules,
        &proposal,
        at_apply,
        sets.as_ref(),
        blocklist,
    )?;
    let window = match pending.open_window(&state, &lock) {
        Ok(window) => window,
        Err(err) => {
            pending.abandon(&state);
            return Err(err);
        }
    };
    if let Err(err) = super::load(&rules, sets.as_ref(), Some(&pending.snapshot)) {
        pending.abandon(&state);
        return Err(err.context(
            "the firewall refused the new rules; nothing was changed (the tool's own message follows)",
        ));
    }
    eprintln!(
        "autofw: rules loaded. They will be rolled back in {} s (watchdog pid {}) unless confirmed.\n\
         autofw: check that you can still get in: from a NEW ssh login run `autofw confirm{}`,\n\
         autofw: or type `yes` here to keep them, `no` to roll back now.",
        args.timeout,
        window.watchdog_pid,
        state_flag(&args.state_dir)
    );
    wait_for_decision(&state, &window, &mut input)
}

/// `--state-dir X` for the hints we print, when it is not the default.
fn state_flag(state_dir: &Path) -> String {
    if state_dir == Path::new(crate::state::DEFAULT_DIR) {
        String::new()
    } else {
        format!(" --state-dir {}", state_dir.display())
    }
}

/// The lockout guard: when run from SSH, would the new rules still accept a
/// new connection like this session's? `Some(explanation)` if not.
fn lockout_problem(proposal: &Proposal) -> Option<String> {
    let session = session::current()?;
    if proposal.admits(
        session::SshSession::PROTO,
        session.server_port,
        session.client,
    ) {
        return None;
    }
    Some(format!(
        "refusing to lock you out: this session is SSH from {} to port {} (from {}), \
         and the new rules would not accept a new connection to tcp/{} from {}",
        session.client, session.server_port, session.source, session.server_port, session.client
    ))
}

/// What is saved before the change, and how to undo the bookkeeping if the
/// change never happens.
struct Pending {
    snapshot: Snapshot,
    window: RollbackWindow,
    previous_record: Option<Vec<u8>>,
    previous_snapshot: Option<Vec<u8>>,
    previous_saved: Option<Vec<u8>>,
    previous_snapshot_sets: Option<Vec<u8>>,
    previous_applied_sets: Option<Vec<u8>>,
}

impl Pending {
    /// Save the live ruleset and record what is about to be loaded.
    fn save(
        state: &StateDir,
        args: &ApplyOptions,
        rules: &Rules,
        proposal: &Proposal,
        at_apply: AtApply,
        sets: Option<&SetContents>,
        blocklist: Option<BlocklistRecord>,
    ) -> anyhow::Result<Pending> {
        let previous_record = std::fs::read(state.applied_path()).ok();
        let previous_snapshot = std::fs::read(state.snapshot_path()).ok();
        let previous_saved = std::fs::read(state.saved_ruleset_path()).ok();
        let previous_snapshot_sets = std::fs::read(state.snapshot_sets_path()).ok();
        let previous_applied_sets = std::fs::read(state.applied_sets_path()).ok();
        let snapshot = Snapshot::take(args.backend, &state.snapshot_sets_path())?;
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
        let (ruleset, ruleset_v6, ipsets) = match rules {
            Rules::Nft { text } => (text.clone(), None, None),
            Rules::Iptables { v4, v6, ipsets } => (v4.clone(), Some(v6.clone()), ipsets.clone()),
        };
        state.write_applied(&AppliedRecord {
            applied_at: now_secs(),
            backend: args.backend,
            opened: opened_ports(proposal.ruleset()),
            ruleset,
            ruleset_v6,
            ipsets,
            confirmed: false,
            rolled_back_at: None,
            persisted: false,
            closed: at_apply.closed,
            listening: Some(at_apply.listening),
            blocklist,
        })?;
        // Round the deadline up: the operator gets at least --timeout seconds.
        let deadline = (now_millis() + args.timeout * 1000).div_ceil(1000);
        let window = RollbackWindow {
            deadline,
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
            snapshot,
            window,
            previous_record,
            previous_snapshot,
            previous_saved,
            previous_snapshot_sets,
            previous_applied_sets,
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
        for (path, previous) in [
            (state.applied_path(), &self.previous_record),
            (state.snapshot_path(), &self.previous_snapshot),
            (state.saved_ruleset_path(), &self.previous_saved),
            (state.snapshot_sets_path(), &self.previous_snapshot_sets),
            (state.applied_sets_path(), &self.previous_applied_sets),
        ] {
            let _ = match previous {
                Some(bytes) => write_private(&path, bytes),
                None => crate::state::remove_if_exists(&path),
            };
        }
    }
}

/// Wait until the window is decided, by whoever decides first.
fn wait_for_decision(
    state: &StateDir,
    window: &RollbackWindow,
    input: &mut Input,
) -> anyhow::Result<u8> {
    prompt_keep();
    loop {
        match state.read_window()? {
            Some(open) if open.id == window.id => {}
            _ => return decided_elsewhere(state),
        }
        if now_secs() >= window.deadline {
            eprintln!("\nautofw: no confirmation before the deadline");
            match window::roll_back_if_open(state, &window.id)? {
                Some(done) => return Ok(report_rollback(&done)),
                None => return decided_elsewhere(state),
            }
        }
        match input.poll(POLL) {
            Polled::Line(answer) if is_yes(&answer) => match window::confirm(state) {
                Ok(Confirmed::Kept { persisted }) => return Ok(report_kept(persisted)),
                Ok(Confirmed::TooLate(done)) => return Ok(report_rollback(&done)),
                // Confirmed, but persisting failed: say so (exit 3).
                Err(err) if state.read_applied()?.is_some_and(|r| r.confirmed) => {
                    return Err(err);
                }
                Err(_) => return decided_elsewhere(state),
            },
            Polled::Line(answer) if is_no(&answer) => {
                let done = window::roll_back(state)?;
                return Ok(report_rollback(&done));
            }
            Polled::Line(_) => prompt_keep(),
            Polled::Eof => eprintln!(
                "\nautofw: end of input is not a confirmation; the window stays open for \
                 `autofw confirm` from another session until the deadline"
            ),
            Polled::Nothing => {}
        }
    }
}

fn prompt_keep() {
    eprint!("Keep these rules? [yes/no] ");
    let _ = std::io::stderr().flush();
}

/// Someone else (`autofw confirm`, `autofw rollback`, the watchdog)
/// decided: report what they decided.
fn decided_elsewhere(state: &StateDir) -> anyhow::Result<u8> {
    let record = state.read_applied()?;
    match record {
        Some(r) if r.confirmed => {
            eprintln!();
            Ok(report_kept(r.persisted.then(Default::default)))
        }
        _ => {
            eprintln!("\nautofw: rolled back: the ruleset saved before this apply was restored");
            Ok(exit::NEGATIVE)
        }
    }
}

fn report_kept(persisted: Option<std::path::PathBuf>) -> u8 {
    println!("confirmed: the new rules are kept");
    if persisted.is_some() {
        println!("persisted: they will be loaded again at boot");
    }
    exit::OK
}

fn report_rollback(done: &RolledBack) -> u8 {
    eprintln!(
        "autofw: rolled back: the ruleset saved before this apply was restored{}",
        exactness(done)
    );
    exit::NEGATIVE
}

fn exactness(done: &RolledBack) -> &'static str {
    match done.exact {
        Some(true) => " (identical to the saved one)",
        Some(false) => {
            "; note: the live ruleset differs from the saved one outside autofw's rules: \
             something else changed it during the window, and that was left alone"
        }
        None => "",
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
fn is_no(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "n" | "no")
}

/// Lines from stdin, read on a thread so the window can be watched while
/// waiting for the operator. End of input is reported once.
struct Input {
    rx: mpsc::Receiver<Option<String>>,
    eof: bool,
}

enum Polled {
    Line(String),
    Eof,
    Nothing,
}

impl Input {
    fn start() -> Input {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(None);
        });
        Input { rx, eof: false }
    }

    fn next_blocking(&mut self) -> Option<String> {
        if self.eof {
            return None;
        }
        match self.rx.recv() {
            Ok(Some(line)) => Some(line),
            _ => {
                self.eof = true;
                None
            }
        }
    }

    fn poll(&mut self, timeout: Duration) -> Polled {
        if self.eof {
            std::thread::sleep(timeout);
            return Polled::Nothing;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(Some(line)) => Polled::Line(line),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Polled::Eof
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Polled::Nothing,
        }
    }
}

/// Print the rules as they will be loaded, then what changes in the live
/// firewall (a unified diff of autofw's part of it), then one line a
/// blocklist set: its size and how it differs from the live one, never its
/// elements (so the output scales with the rules, not the list).
fn print_plan(rules: &Rules, sets: Option<&SetContents>) -> anyhow::Result<()> {
    match rules {
        Rules::Nft { text } => {
            println!("{}", text.trim_end());
            let live = nft::live_autofw_table()?;
            let proposed = nft::canonical(text).unwrap_or_else(|| text.clone());
            print_diff(
                "live table inet autofw",
                "new table inet autofw",
                live.as_deref().unwrap_or_default(),
                &proposed,
            );
            if let Some(sets) = sets {
                let live_sets = match live {
                    Some(_) => nft_sets::read_live()?,
                    None => None,
                };
                println!();
                for line in blocklist_lines(sets, live_sets.as_ref()) {
                    println!("# {line}");
                }
            }
        }
        Rules::Iptables { v4, v6, ipsets } => {
            if let Some(sets) = ipsets {
                println!(
                    "# ipset restore -exist (loaded first)\n{}\n",
                    sets.trim_end()
                );
            }
            println!("{}\n\n{}", v4.trim_end(), v6.trim_end());
            for (family, text, name) in [
                (iptables::V4, v4, "iptables"),
                (iptables::V6, v6, "ip6tables"),
            ] {
                let live = FilterView::parse(&iptables::save_family(family)?);
                let mut new = FilterView::parse(text);
                // Policies the proposal does not set stay as they are.
                for (chain, policy) in &live.policies {
                    new.policies.entry(chain.clone()).or_insert(policy.clone());
                }
                new.has_jump |= live.has_jump;
                print_diff(
                    &format!("live {name} (autofw's part)"),
                    &format!("new {name} (autofw's part)"),
                    &live.summary(),
                    &new.summary(),
                );
            }
        }
    }
    Ok(())
}

/// `blocklist_v4: 1,000,000 entries, +12 −3 since the live set`, a set.
pub fn blocklist_lines(new: &SetContents, live: Option<&SetContents>) -> Vec<String> {
    let empty = SetContents::default();
    let old = live.unwrap_or(&empty);
    let changes = [
        (
            new.v4.addresses.len(),
            delta(&old.v4.addresses, &new.v4.addresses),
        ),
        (
            new.v4.networks.len(),
            delta(&old.v4.networks, &new.v4.networks),
        ),
        (
            new.v6.addresses.len(),
            delta(&old.v6.addresses, &new.v6.addresses),
        ),
        (
            new.v6.networks.len(),
            delta(&old.v6.networks, &new.v6.networks),
        ),
    ];
    SETS.iter()
        .zip(changes)
        .map(|(&(family, kind), (entries, (add, del)))| {
            summary_line(set_name(family, kind), entries, Some((add, del)))
                + if live.is_none() {
                    " (no live set yet)"
                } else {
                    ""
                }
        })
        .collect()
}

/// How many elements `new` adds to `old` and removes from it.
fn delta<T: Ord + Copy>(old: &[T], new: &[T]) -> (usize, usize) {
    let (add, del) = crate::propose::blocklist::delta(old, new);
    (add.len(), del.len())
}

fn print_diff(old_name: &str, new_name: &str, old: &str, new: &str) {
    println!();
    if old == new {
        println!("# {old_name}: no change");
        return;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    print!(
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(old_name, new_name)
    );
}

/// `autofw confirm`: keep the rules of the open window.
pub fn confirm(state_dir: &Path) -> anyhow::Result<u8> {
    exec::require_root("autofw confirm")?;
    let state = StateDir::new(state_dir);
    let window = state.read_window()?;
    match window::confirm(&state)? {
        Confirmed::Kept { persisted } => {
            println!("confirmed: the rules loaded by the last apply are kept");
            if let Some(root) = persisted {
                println!(
                    "persisted under {}: they will be loaded again at boot",
                    root.display()
                );
            }
            // Give the watchdog its moment to see the closed window and exit
            // (and release the apply lock), so a next apply is not refused.
            if let Some(window) = window {
                wait_for_exit(window.watchdog_pid, Duration::from_secs(2));
            }
            Ok(exit::OK)
        }
        Confirmed::TooLate(done) => {
            eprintln!(
                "autofw: too late: the deadline had passed, so the rules were rolled back{}",
                exactness(&done)
            );
            Ok(exit::NEGATIVE)
        }
    }
}

/// `autofw rollback`: put back the ruleset saved before the last apply.
pub fn rollback(state_dir: &Path) -> anyhow::Result<u8> {
    exec::require_root("autofw rollback")?;
    let state = StateDir::new(state_dir);
    let snapshot: Option<Snapshot> = crate::state::read_json(&state.snapshot_path())?;
    if let Some(snapshot) = &snapshot {
        exec::require_tools(super::tools(snapshot.backend))?;
    }
    let done = window::roll_back(&state)?;
    println!(
        "rolled back: the ruleset saved before the last apply is restored{}",
        exactness(&done)
    );
    if state.read_applied()?.is_some_and(|r| r.persisted) {
        println!(
            "note: the persisted boot ruleset is unchanged; run `autofw unpersist` so it is not loaded at boot"
        );
    }
    Ok(exit::OK)
}

/// Wait until `pid` has exited (or is a zombie), at most `limit`.
fn wait_for_exit(pid: u32, limit: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 3 (after the parenthesised name) is the state: Z is a zombie.
        let gone = stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
        if gone {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
