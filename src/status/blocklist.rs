//! Status of the blocklist sets, cheap at a million entries: each set is
//! compared by element count and digest (`blocklist::digest`),
//! never element by element, between what apply or the last refresh loaded
//! (the record), what the kernel holds, and what the files say now. Pure.

use super::drift::{Finding, Kind};
use super::wording;
use crate::blocklist::SetSummary;
use crate::human::thousands;

/// What the edge read for the blocklist of an applied policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlocklistCheck {
    /// What the record says was loaded last.
    pub recorded: Vec<SetSummary>,
    /// What the kernel holds now; `None` when the sets are missing.
    pub live: Option<Vec<SetSummary>>,
    /// What the files give now, or why they could not be read.
    pub files: Result<Vec<SetSummary>, String>,
}

/// `blocklist_v4 (1,000,000 live, 999,988 in the files)` for each set that
/// differs.
fn differing(a: &[SetSummary], b: &[SetSummary], a_name: &str, b_name: &str) -> Vec<String> {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x.entries != y.entries || x.digest != y.digest)
        .map(|(x, y)| {
            format!(
                "{} ({} {a_name}, {} {b_name})",
                x.name,
                thousands(x.entries),
                thousands(y.entries)
            )
        })
        .collect()
}

/// The findings: live sets that are not what was loaded (changed by hand,
/// flushed), and files that no longer match the live sets (a refresh that
/// failed or has not run yet).
pub(crate) fn findings(check: &BlocklistCheck) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(live) = &check.live else {
        // The rules finding (not-live, changed) already says the table is gone.
        return out;
    };
    let by_hand = differing(live, &check.recorded, "live", "loaded");
    if !by_hand.is_empty() {
        let (message, fix) = wording::blocklist_changed(&by_hand);
        out.push(Finding::new(Kind::BlocklistDiffers, message, fix));
    }
    let words = match &check.files {
        Err(problem) => Some(wording::blocklist_unreadable(problem)),
        Ok(files) => {
            let stale = differing(live, files, "live", "in the files");
            (!stale.is_empty()).then(|| wording::blocklist_stale(&stale))
        }
    };
    if let Some((message, fix)) = words {
        out.push(Finding::new(Kind::BlocklistDiffers, message, fix));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, entries: usize, digest: &str) -> SetSummary {
        SetSummary {
            name: name.to_string(),
            entries,
            digest: digest.to_string(),
        }
    }

    #[test]
    fn same_everywhere_is_no_finding_and_each_difference_is_said() {
        let loaded = vec![
            set("blocklist_v4", 1_000_000, "a"),
            set("blocklist_net_v4", 3, "b"),
        ];
        let mut check = BlocklistCheck {
            recorded: loaded.clone(),
            live: Some(loaded.clone()),
            files: Ok(loaded.clone()),
        };
        assert!(findings(&check).is_empty());
        check.files = Ok(vec![set("blocklist_v4", 999_988, "c"), loaded[1].clone()]);
        let f = findings(&check);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message
                .contains("blocklist_v4 (1,000,000 live, 999,988 in the files)"),
            "{}",
            f[0].message
        );
        check.live = Some(vec![set("blocklist_v4", 1_000_000, "x"), loaded[1].clone()]);
        check.files = Err("drop.txt:7: `x` is not an IP address".into());
        let f = findings(&check);
        assert_eq!(f.len(), 2);
        assert!(
            f[0].message.contains("not what autofw loaded"),
            "{}",
            f[0].message
        );
        assert!(f[1].message.contains("drop.txt:7"), "{}", f[1].message);
        assert!(f.iter().all(|f| f.kind == Kind::BlocklistDiffers));
    }
}
