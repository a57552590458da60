//! What a rollback puts back, and everything it needs, read and checked
//! before anything changes: the [`Snapshot`] of the firewall before the
//! apply (`snapshot.json`), the blocklist elements it held
//! (`snapshot-sets.txt`, checked against the snapshot's counts and
//! digests), and the apply record whose life the rollback ends
//! (`applied.json`). A damaged file is found here, so a rollback either
//! has all it needs or changes nothing; the watchdog reads this once, when
//! its window opens, and restores from memory at the deadline.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::blocklist::netlink;
use crate::blocklist::{SetContents, SetSummary};
use crate::error::{host_failure, refused};
use crate::firewall::backend::{self, exec, iptables, nft};
use crate::record::{AppliedRecord, Backend, Rules};
use crate::state::{StateDir, open_nofollow, read_json};

/// The live firewall as it was before an apply: what rollback puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub backend: Backend,
    /// `nft -t -s list ruleset` before the apply, when nft is installed: the
    /// reference that a rollback is checked against, byte for byte (also
    /// written as `before-apply.nft`, for the operator to read).
    pub nft_ruleset: Option<String>,
    pub nft: Option<nft::Saved>,
    pub iptables: Option<iptables::Saved>,
    /// The count and digest of each blocklist set whose elements are saved
    /// in `snapshot-sets.txt` (empty: no elements were saved). What that
    /// file must hold, so a damaged one is found before it is loaded.
    pub sets: Vec<SetSummary>,
}

impl Snapshot {
    /// Did the firewall hold any of autofw's rules when this was taken (an
    /// nft table, or AUTOFW chains)? What a rollback restores is then
    /// autofw's rules, not a host without them.
    pub(crate) fn held_autofw(&self) -> bool {
        self.nft.as_ref().is_some_and(|n| n.autofw_table.is_some())
            || self
                .iptables
                .as_ref()
                .is_some_and(|i| i.v4.contains("AUTOFW-INPUT") || i.v6.contains("AUTOFW-INPUT"))
    }

    /// Save what loading `rules` will change (and the whole nft ruleset, to
    /// check the rollback against): for iptables, the policies the rules
    /// set and the forwarding state, so that undo puts back only what autofw
    /// changed. The live blocklist sets' elements (`recorded`, or read from
    /// the kernel) are written to `sets_file` and returned.
    pub(crate) fn take(
        rules: &Rules,
        sets_file: &Path,
        recorded: Option<&SetContents>,
    ) -> anyhow::Result<(Snapshot, Option<SetContents>)> {
        let backend = rules.backend();
        let nft_ruleset = if exec::tool_exists("nft") {
            Some(nft::live_ruleset()?)
        } else {
            None
        };
        // One nft listing is both the reference and autofw's table; autofw's
        // own rules of the other backend (an earlier apply with it) are
        // saved too: this apply removes them in the same step, and a
        // rollback puts both back.
        let (nft, iptables) = backend::save_for_undo(rules, nft_ruleset.as_deref())?;
        let sets = match backend.loads_sets_apart() {
            true => save_sets(sets_file, recorded)?,
            // The other backend's nft table: its blocklist elements too.
            false if nft.as_ref().is_some_and(|n| n.autofw_table.is_some()) => {
                save_sets(sets_file, None)?
            }
            false => None,
        };
        let snapshot = Snapshot {
            backend,
            nft,
            nft_ruleset,
            iptables,
            sets: sets.as_ref().map(held_sets).unwrap_or_default(),
        };
        Ok((snapshot, sets))
    }
}

/// The summaries of the sets that hold elements: an empty set and a set
/// that does not exist hold the same, nothing.
fn held_sets(sets: &SetContents) -> Vec<SetSummary> {
    sets.summaries()
        .into_iter()
        .filter(|s| s.entries > 0)
        .collect()
}

/// Save the live blocklist sets to `path` (when they hold anything): the
/// recorded content when there is one, else read from the kernel.
fn save_sets(path: &Path, recorded: Option<&SetContents>) -> anyhow::Result<Option<SetContents>> {
    let sets = match recorded {
        Some(sets) => Some(sets.clone()),
        None if !nft::autofw_table_exists()? => None,
        None => netlink::live_sets()?,
    };
    match sets.filter(|s| !s.is_empty()) {
        Some(sets) => {
            crate::state::write_private(path, sets.to_text().as_bytes())?;
            Ok(Some(sets))
        }
        None => Ok(None),
    }
}

/// Everything a rollback needs, in memory and checked.
#[derive(Debug, Clone)]
pub(crate) struct Undo {
    pub snapshot: Snapshot,
    /// The blocklist elements before the apply, matching `snapshot.sets`.
    pub sets: Option<SetContents>,
    /// The apply record as read (or written) when this was taken: the
    /// rollback moves its life on. `None` when there is none.
    pub record: Option<AppliedRecord>,
}

impl Undo {
    /// Read and check everything a rollback of the last apply needs. `None`
    /// when no apply saved a snapshot; an error naming the file when one of
    /// them is damaged (nothing has changed then).
    pub(crate) fn read(state: &StateDir) -> anyhow::Result<Option<Undo>> {
        let Some(snapshot) = read_json::<Snapshot>(&state.snapshot_path())? else {
            return Ok(None);
        };
        let sets = match snapshot.sets.is_empty() {
            true => None,
            false => Some(read_saved_sets(
                &state.snapshot_sets_path(),
                &snapshot.sets,
            )?),
        };
        let record = state.read_applied()?;
        Ok(Some(Undo {
            snapshot,
            sets,
            record,
        }))
    }

    /// [`Self::read`], for a command that must roll back: no snapshot is
    /// "nothing to roll back" (exit 4), a damaged file says nothing changed.
    pub(crate) fn read_for_rollback(state: &StateDir) -> anyhow::Result<Undo> {
        Undo::read(state)
            .map_err(|e| e.context("cannot roll back; nothing was changed"))?
            .ok_or_else(|| {
                refused(format!(
                    "nothing to roll back: no apply has saved a ruleset in {}",
                    state.root().display()
                ))
            })
    }

    /// Put the firewall back as it was before the apply: only autofw's own
    /// table (and its blocklist elements), chains and policies. An error
    /// says where the firewall stands.
    pub(crate) fn restore(&self) -> anyhow::Result<()> {
        if let Some(saved) = &self.snapshot.nft {
            nft::restore(saved).map_err(|e| {
                e.context("putting back the previous table inet autofw failed; the rules of the apply are still loaded")
            })?;
            if let Some(sets) = &self.sets {
                netlink::fill(sets).map_err(|e| {
                    e.context(
                        "the previous table inet autofw is back, but loading its blocklist \
                         elements failed: its blocklist sets are empty",
                    )
                })?;
            }
        }
        if let Some(saved) = &self.snapshot.iptables {
            iptables::restore(saved)?;
        }
        Ok(())
    }

    /// After a restore: is the live firewall the saved one, its ruleset
    /// (`nft -t -s list ruleset`) byte for byte and each blocklist set by
    /// count and digest? `None` when it cannot be checked (no nft). A
    /// difference means something else changed the firewall during the
    /// window; it is reported, not undone.
    pub(crate) fn matches_live(&self) -> Option<bool> {
        let saved = self.snapshot.nft_ruleset.as_ref()?;
        let live = nft::live_ruleset().ok()?;
        if &live != saved {
            return Some(false);
        }
        let live_sets = match netlink::live_sets() {
            Ok(sets) => sets.as_ref().map(held_sets).unwrap_or_default(),
            Err(_) => return None,
        };
        Some(live_sets == self.snapshot.sets)
    }
}

/// `snapshot-sets.txt`, parsed and checked against the counts and digests
/// the snapshot recorded: an emptied, cut or edited file is an error here,
/// before any rule is loaded.
fn read_saved_sets(path: &Path, expected: &[SetSummary]) -> anyhow::Result<SetContents> {
    let damaged = |why: String| {
        host_failure(format!(
            "the saved blocklist elements {} {why}; they are what a rollback puts back, so \
             nothing is loaded without them (the previous blocklist is in snapshot.json only \
             by count and digest)",
            path.display()
        ))
    };
    let mut text = String::new();
    let mut file = open_nofollow(path).map_err(|e| damaged(format!("cannot be read: {e}")))?;
    std::io::Read::read_to_string(&mut file, &mut text)
        .map_err(|e| damaged(format!("cannot be read: {e}")))?;
    let sets = SetContents::parse_text(&text, &path.display().to_string())
        .map_err(|e| damaged(format!("are damaged: {e}")))?;
    let held = held_sets(&sets);
    if held != expected {
        let count = |s: &[SetSummary]| s.iter().map(|s| s.entries).sum::<usize>();
        return Err(damaged(format!(
            "do not match the snapshot: {} elements where {} were saved{}",
            count(&held),
            count(expected),
            if count(&held) == count(expected) {
                " (same count, other elements)"
            } else {
                ""
            }
        )));
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::FamilySets;

    fn sets() -> SetContents {
        let v4 = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        SetContents {
            v4: FamilySets {
                addresses: vec![v4("192.0.2.1"), v4("192.0.2.7")],
                networks: vec![(v4("198.51.100.0"), v4("198.51.100.255"))],
            },
            ..SetContents::default()
        }
    }

    fn check(text: &str, expected: &[SetSummary]) -> Result<SetContents, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot-sets.txt");
        std::fs::write(&path, text).unwrap();
        read_saved_sets(&path, expected).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn saved_sets_are_checked_against_the_snapshot() {
        let sets = sets();
        let expected = held_sets(&sets);
        let text = sets.to_text();
        assert_eq!(check(&text, &expected).unwrap(), sets);
        let emptied = check("", &expected).unwrap_err();
        assert!(
            emptied.contains("0 elements where 3 were saved"),
            "{emptied}"
        );
        let first_element = text.lines().find(|l| !l.starts_with('#')).unwrap();
        let cut = text.replacen(&format!("{first_element}\n"), "", 1);
        assert!(
            check(&cut, &expected)
                .unwrap_err()
                .contains("2 elements where 3")
        );
        assert!(check(&text[..text.len() / 2], &expected).is_err());
        let other = text.replace("192.0.2.7", "192.0.2.9");
        assert!(
            check(&other, &expected)
                .unwrap_err()
                .contains("same count, other elements")
        );
        assert!(
            check("garbage here\n", &expected)
                .unwrap_err()
                .contains("are damaged")
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = read_saved_sets(&dir.path().join("absent"), &expected).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot be read"));
    }
}
