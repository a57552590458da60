//! Comparing the live rules with the applied ones: nft listings and
//! iptables saves, reduced to autofw's part and to what is not dynamic
//! (rate-meter elements), then diffed. Pure: the edge reads the texts.

use std::collections::BTreeMap;

use serde::Serialize;

use super::iptables::filter_view::FilterView;
use crate::human::unified_diff;

/// What the live firewall holds of autofw's rules, and what it should hold,
/// as the edge read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LiveRules {
    Nft {
        /// autofw's table as `nft -t -s list ruleset` lists it (no set
        /// elements: [`super::nft::live_autofw_table`]); `None` when there is
        /// no such table.
        table: Option<String>,
        /// The applied ruleset as nft lists it once loaded (`nft::canonical`);
        /// `None` when no scratch namespace could be made to load it in.
        expected: Option<String>,
    },
    /// One entry per family (`iptables`, `ip6tables`).
    Iptables(Vec<FamilyRules>),
}

impl LiveRules {
    /// iptables: each family's live and applied rules; empty on nft.
    pub(crate) fn iptables_families(&self) -> &[FamilyRules] {
        match self {
            LiveRules::Iptables(families) => families,
            LiveRules::Nft { .. } => &[],
        }
    }

    /// Is autofw's nft table loaded (where the blocklist sets live)?
    pub(crate) fn has_nft_table(&self) -> bool {
        matches!(self, LiveRules::Nft { table: Some(_), .. })
    }
}

/// One iptables family's live and applied rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FamilyRules {
    /// `iptables` or `ip6tables`, for messages.
    pub name: String,
    /// `iptables-save -t filter` of the live host.
    pub live: String,
    /// The `iptables-restore` input apply loaded.
    pub applied: String,
    /// `applied` as `iptables-save` lists it once loaded
    /// (`iptables::canonical`); `None` when that could not be done.
    pub expected: Option<String>,
}

/// Whether autofw's rules are loaded as they were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub(crate) enum RulesState {
    /// Loaded, exactly as applied.
    Live,
    /// Loaded, but not compared rule by rule, for `reason`.
    Unverified { reason: String },
    /// None of autofw's table or chains is loaded.
    Missing,
    /// Loaded, but not as applied: `diff` is a unified diff, applied → live
    /// (in JSON it is given once, in the `changed` finding).
    Changed {
        #[serde(skip_serializing)]
        diff: String,
    },
    /// The last apply was rolled back at `at` (seconds since the epoch).
    RolledBack { at: u64 },
}

/// Compare the live rules with the applied ones.
pub(crate) fn compare_rules(live: &LiveRules) -> RulesState {
    match live {
        LiveRules::Nft { table: None, .. } => RulesState::Missing,
        LiveRules::Nft {
            table: Some(_),
            expected: None,
        } => RulesState::Unverified {
            reason: "the applied ruleset could not be loaded into a scratch namespace \
                     (`unshare --net`) to list it as nft would, so only the presence of \
                     table inet autofw was checked"
                .to_string(),
        },
        LiveRules::Nft {
            table: Some(table),
            expected: Some(expected),
        } => {
            // Both are terse listings (`nft -t`): no set elements, so the
            // rate meters filling up and the blocklist's million elements
            // (compared by digest, status::blocklist) are never drift here.
            if expected == table {
                RulesState::Live
            } else {
                RulesState::Changed {
                    diff: unified_diff(
                        "applied table inet autofw",
                        "live table inet autofw",
                        expected,
                        table,
                        2,
                    ),
                }
            }
        }
        LiveRules::Iptables(families) => compare_iptables(families),
    }
}

fn compare_iptables(families: &[FamilyRules]) -> RulesState {
    let mut diffs = String::new();
    let mut missing = 0;
    let mut unverified = Vec::new();
    for family in families {
        let live = FilterView::parse(&family.live);
        let present = !live.chains.is_empty() || live.has_jump;
        if !present {
            missing += 1;
        }
        let Some(expected) = &family.expected else {
            if present {
                unverified.push(family.name.as_str());
            } else {
                diffs.push_str(&format!(
                    "{}: autofw's AUTOFW-* chains are gone\n",
                    family.name
                ));
            }
            continue;
        };
        // Only the built-in policies the applied text sets are autofw's; the
        // others (FORWARD on a host that routes) belong to someone else.
        let declared = FilterView::parse(&family.applied).policies;
        let expected = view_of(FilterView::parse(expected), &declared);
        let live = view_of(live, &declared);
        if expected != live {
            diffs.push_str(&unified_diff(
                &format!("applied {} (autofw's part)", family.name),
                &format!("live {} (autofw's part)", family.name),
                &expected,
                &live,
                2,
            ));
        }
    }
    if !families.is_empty() && missing == families.len() {
        RulesState::Missing
    } else if !diffs.is_empty() {
        RulesState::Changed { diff: diffs }
    } else if !unverified.is_empty() {
        RulesState::Unverified {
            reason: format!(
                "the applied rules could not be loaded into a scratch namespace (`unshare --net`) \
                 to list them as {} would, so only the presence of autofw's chains was checked",
                unverified.join(" and ")
            ),
        }
    } else {
        RulesState::Live
    }
}

/// Do `expected` and `live` (`iptables-save` of one family) hold autofw's
/// part alike, as [`compare_rules`] judges it: the built-in policies
/// `applied` (the restore input) declares, autofw's chains, the jump, the
/// rules in order.
pub(crate) fn same_part(expected: &str, live: &str, applied: &str) -> bool {
    let declared = FilterView::parse(applied).policies;
    view_of(FilterView::parse(expected), &declared) == view_of(FilterView::parse(live), &declared)
}

/// The lines of a filter table that autofw owns, in a form two saves can be
/// compared in: the declared policies, autofw's chains (sorted), the jump,
/// the rules in order.
fn view_of(mut view: FilterView, declared: &BTreeMap<String, String>) -> String {
    view.policies
        .retain(|chain, _| declared.contains_key(chain));
    view.chains.sort();
    view.summary()
}
