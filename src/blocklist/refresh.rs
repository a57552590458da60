//! `autofw blocklist refresh`: re-read the blocklist files of the applied
//! policy and bring the live sets to their new content, for cron or a
//! systemd timer (docs/apply.md has both).
//!
//! Only set elements change, in one nf_tables transaction (add the new,
//! delete the gone; an interval set that changed is emptied and refilled in
//! the same transaction), so no rule changes, no packet ever sees a half
//! list, and there is no rollback window: a blocklist cannot lock anyone
//! out who was not listed, and the lockout guard refuses a list that holds
//! the SSH session's own address (as apply's guard finds it), unless
//! `--force`. It takes the apply lock, so it never runs during an apply or
//! its window. A file that fails to parse changes nothing. The state
//! directory is checked as every command checks it (trusted, root-only).

use std::net::IpAddr;
use std::path::PathBuf;

use super::netlink;
use crate::blocklist::{SETS, SetContents, parse_entry, set_name, summary_line};
use crate::error::{bad_input, exit, host_failure, refused};
use crate::firewall::apply::guard;
use crate::firewall::backend::{exec, nft};
use crate::propose::gather::read_recorded_blocklist;
use crate::propose::render_nft::element_batches;
use crate::record::BlocklistRecord;
use crate::state::{StateDir, now_secs, write_private};

/// What `autofw blocklist refresh` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct RefreshOptions {
    pub state_dir: PathBuf,
    /// Skip malformed lines (counted) even if the apply did not.
    pub skip_bad_lines: bool,
    /// Where the boot files are, to refresh the persisted batches too.
    pub root: PathBuf,
    /// Load the new list even when it holds this SSH session's address.
    pub force: bool,
}

pub(crate) fn run(args: &RefreshOptions) -> anyhow::Result<u8> {
    exec::require_root("autofw blocklist refresh")?;
    let state = StateDir::new(&args.state_dir);
    state.check_trusted()?;
    if !state.root().is_dir() {
        return Err(refused(format!(
            "nothing to refresh: no apply has run with the state directory {}",
            state.root().display()
        )));
    }
    state.tighten();
    let _lock = state.lock_apply()?;
    let mut record = state.read_applied()?.ok_or_else(|| {
        refused("nothing to refresh: no rules were applied (run `autofw apply --confirm --policy FILE`)")
    })?;
    if !record.confirmed() {
        return Err(refused(
            "the last apply was rolled back or never confirmed; nothing to refresh",
        ));
    }
    if !record.backend().loads_sets_apart() {
        return Err(bad_input(
            "blocklist refresh works with the nft backend; with iptables, apply again",
        ));
    }
    let Some(mut blocklist) = record.blocklist.clone() else {
        return Err(bad_input(
            "the applied policy has no blocklist: add `[blocklist] files` to it and apply again",
        ));
    };
    let mut new = read_recorded_blocklist(
        &blocklist.files,
        &blocklist.inline,
        blocklist.skip_bad_lines || args.skip_bad_lines,
    )
    .map_err(|e| e.context("the blocklist was not refreshed; nothing changed"))?;
    if let Some(problem) = lockout(&new, &blocklist) {
        if !args.force {
            return Err(refused(problem));
        }
        say!("autofw: warning: --force given: {problem}");
    }

    if !nft::autofw_table_exists()? {
        return Err(host_failure(
            "table inet autofw is gone (flushed?); nothing was refreshed: apply again",
        ));
    }
    // What autofw loaded last is what is live, unless the sets were edited
    // by hand: then deleting a gone element fails, the transaction changes
    // nothing, and the exact (slower) way reads the kernel first.
    // The elements go where the live sets keep them (`shards`), whatever
    // layout the files alone would get.
    let (changes, shards) = match crate::firewall::backend::recorded_sets(&state)
        .map(|live| (netlink::update(&live, &new), live.shards))
    {
        Some((Ok(changes), shards)) => (changes, shards),
        _ => {
            let live = netlink::live_sets()?.ok_or_else(|| {
                host_failure("the live table has no blocklist sets (edited by hand?); apply again")
            })?;
            (netlink::update(&live, &new)?, live.shards)
        }
    };
    new.shards = shards;

    write_private(&state.applied_sets_path(), new.to_text().as_bytes())?;
    blocklist.sets = new.summaries();
    blocklist.refreshed_at = Some(now_secs());
    record.blocklist = Some(blocklist.clone());
    state.write_applied(&record)?;

    for ((&(family, kind), summary), change) in SETS.iter().zip(&blocklist.sets).zip(&changes) {
        println!(
            "{}",
            summary_line(set_name(family, kind), summary.entries, Some(*change))
        );
    }
    if record.persisted() {
        match crate::persist::replace_blocklist_batches(&args.root, &element_batches(&new))? {
            true => println!(
                "the boot files under {} hold the new list",
                args.root.display()
            ),
            false => println!(
                "note: nothing is persisted under {}; the boot files were left alone",
                args.root.display()
            ),
        }
    }
    println!("refreshed: the live blocklist sets hold the files' content; no rule changed");
    Ok(exit::OK)
}

/// The lockout guard of a refresh: the SSH session this runs in (as apply's
/// guard finds it) against the new sets. The blocklist's drop comes before
/// everything else in the rules (the established connections too), so a
/// listed client loses this session and every new one. `Some`: the refusal,
/// naming the entries that list it, where they were given.
fn lockout(new: &SetContents, blocklist: &BlocklistRecord) -> Option<String> {
    let session = guard::current()?;
    let client = session.client;
    if !new.contains(client) {
        return None;
    }
    let mut causes = Vec::new();
    let mut fixes = Vec::new();
    for l in guard::listing(&blocklist.files, client) {
        causes.push(format!(
            "the blocklist file {} lists it at line {} (`{}`)",
            l.file, l.line, l.entry
        ));
        fixes.push(format!("remove line {} of {}", l.line, l.file));
    }
    for entry in blocklist.inline.iter().filter(|e| lists(e, client)) {
        causes.push(format!(
            "the last apply's `[blocklist] addresses` or --blocklist list it (`{entry}`)"
        ));
        fixes.push(format!(
            "apply again without `{entry}` (the inline entries are the apply's, not the files')"
        ));
    }
    let to = match session.server {
        Some(server) => format!("to {server} port {}", session.server_port),
        None => format!("to port {}", session.server_port),
    };
    let force = "pass --force if you have another way in (a console)";
    Some(format!(
        "refusing to lock you out: this session is SSH from {client} {to} (from {}), and the \
         refreshed blocklist lists {client}: {}. The blocklist drops every packet from a listed \
         address before any other rule, this session's too; nothing was changed. To get in: {}; \
         or {force}",
        session.source,
        if causes.is_empty() {
            "an entry of its files (they changed while they were read)".to_string()
        } else {
            causes.join("; ")
        },
        if fixes.is_empty() {
            "take it off the list".to_string()
        } else {
            fixes.join(", and ")
        },
    ))
}

/// Does a recorded inline entry list `client`?
fn lists(entry: &str, client: IpAddr) -> bool {
    parse_entry(entry).is_ok_and(|e| e.contains(client))
}
