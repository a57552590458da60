//! `autofw blocklist refresh`: re-read the blocklist files of the applied
//! policy and bring the live sets to their new content, for cron or a
//! systemd timer (docs/apply.md has both).
//!
//! Only set elements change, in one nf_tables transaction (add the new,
//! delete the gone; an interval set that changed is emptied and refilled in
//! the same transaction), so no rule changes, no packet ever sees a half
//! list, and there is no rollback window: a blocklist cannot lock anyone
//! out who was not listed. It takes the apply lock, so it never runs during
//! an apply or its window. A file that fails to parse changes nothing.

use std::path::PathBuf;

use super::netlink;
use crate::blocklist::{SETS, set_name, summary_line};
use crate::error::{bad_input, exit, host_failure, refused};
use crate::firewall::backend::{exec, nft};
use crate::propose::gather::read_recorded_blocklist;
use crate::propose::render_nft::element_batches;
use crate::state::{StateDir, now_secs, write_private};

/// What `autofw blocklist refresh` was asked for.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    pub state_dir: PathBuf,
    /// Skip malformed lines (counted) even if the apply did not.
    pub skip_bad_lines: bool,
    /// Where the boot files are, to refresh the persisted batches too.
    pub root: PathBuf,
}

pub fn run(args: &RefreshOptions) -> anyhow::Result<u8> {
    exec::require_root("autofw blocklist refresh")?;
    let state = StateDir::new(&args.state_dir);
    if !state.root().is_dir() {
        return Err(refused(format!(
            "nothing to refresh: no apply has run with the state directory {}",
            state.root().display()
        )));
    }
    let _lock = state.lock_apply()?;
    let mut record = state.read_applied()?.ok_or_else(|| {
        refused("nothing to refresh: no rules were applied (run `autofw apply --confirm --policy FILE`)")
    })?;
    if !record.confirmed {
        return Err(refused(
            "the last apply was rolled back or never confirmed; nothing to refresh",
        ));
    }
    if !record.backend.loads_sets_apart() {
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
    if record.persisted {
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
