//! The two backends, nft ([`nft`]) and iptables ([`iptables`]), behind
//! one face: this file is what the rest of autofw calls on either (load,
//! snapshot and undo, the live rules, what a plan compares, what people
//! read), and, above `persist` in the import order, the only place outside
//! the two folders that tells them apart (below it, the record and the boot
//! files do). [`exec`] is the only place that spawns the tools that
//! change the firewall; [`compare`] holds live rules against applied ones.

pub(crate) mod compare;
pub(crate) mod exec;
pub(crate) mod iptables;
pub(crate) mod nft;

use serde::{Deserialize, Serialize};

use crate::blocklist::SetContents;
use crate::blocklist::netlink;
use crate::propose::render_iptables::{Hooks, ipsets_for_people};
use crate::propose::{Format, Proposal, Target};
use crate::record::{AppliedRecord, Backend, Rules};
use crate::state::StateDir;
use compare::{FamilyRules, LiveRules};
use iptables::filter_view::FilterView;
use std::borrow::Cow;

/// Why a load failed, and so where the firewall stands.
#[derive(Debug)]
pub(crate) enum LoadFailure {
    /// The rules were refused: nothing changed (one transaction per family;
    /// iptables undoes IPv4 itself when IPv6 fails).
    Rules(anyhow::Error),
    /// The rules are loaded, but the kernel refused the blocklist's
    /// elements (nft): the caller rolls back.
    Sets(anyhow::Error),
}

impl LoadFailure {
    pub(crate) fn into_error(self) -> anyhow::Error {
        match self {
            LoadFailure::Rules(e) | LoadFailure::Sets(e) => e,
        }
    }
}

/// Load `rules` into the live firewall, one transaction per family, then
/// the blocklist `sets` (nft: their elements, in one more transaction over
/// netlink). `keep` is the iptables part of the snapshot taken before,
/// which tells iptables what to keep.
pub(crate) fn load(
    rules: &Rules,
    sets: Option<&SetContents>,
    keep: Option<&iptables::Saved>,
) -> Result<(), LoadFailure> {
    match rules {
        Rules::Nft { text } => {
            nft::load(text).map_err(LoadFailure::Rules)?;
            match sets.filter(|s| !s.is_empty()) {
                Some(sets) => netlink::fill(sets).map_err(LoadFailure::Sets),
                None => Ok(()),
            }
        }
        Rules::Iptables { v4, v6, ipsets } => {
            iptables::load(v4, v6, ipsets.as_deref(), keep).map_err(LoadFailure::Rules)
        }
    }
}

/// Load `rules` into a firewall that holds no autofw rules yet (the
/// judge's scratch namespace): nft needs no look at a live table to empty
/// in place first.
pub(crate) fn load_fresh(rules: &Rules) -> anyhow::Result<()> {
    match rules {
        Rules::Nft { text } => exec::run_tool("nft", &["-f", "-"], Some(text)).map(|_| ()),
        Rules::Iptables { v4, v6, ipsets } => iptables::load(v4, v6, ipsets.as_deref(), None),
    }
}

/// The texts of `rules` under the name the judge's cache key gives them:
/// `nft` (the script), `autofw-iptables` (v4, v6, the ipsets or nothing).
pub(crate) fn keyed_texts(rules: &Rules) -> (&'static str, Vec<Cow<'_, str>>) {
    match rules {
        Rules::Nft { text } => ("nft", vec![text.into()]),
        Rules::Iptables { v4, v6, ipsets } => (
            "autofw-iptables",
            vec![
                v4.render(Hooks::Proposal).into(),
                v6.render(Hooks::Proposal).into(),
                ipsets.as_deref().unwrap_or_default().into(),
            ],
        ),
    }
}

/// What the firewall needs to know of a backend that the record does not.
impl Backend {
    /// The tools it needs, checked before anything changes.
    pub fn tools(self) -> &'static [&'static str] {
        match self {
            Backend::Nft => &["nft"],
            Backend::Iptables => &iptables::TOOLS,
        }
    }

    /// The backend that loads propose's `format`.
    pub fn for_format(format: Format) -> Backend {
        match format {
            Format::Nft => Backend::Nft,
            Format::Iptables | Format::Ip6tables => Backend::Iptables,
        }
    }

    /// What autofw owns of the live firewall, for messages: `table inet
    /// autofw`, or `the AUTOFW-INPUT chains` (plural).
    pub fn own_part(self) -> (&'static str, bool) {
        match self {
            Backend::Nft => ("table inet autofw", false),
            Backend::Iptables => ("the AUTOFW-INPUT chains", true),
        }
    }

    /// The blocklist sets as autofw last loaded them ([`recorded_sets`]);
    /// `None` on iptables, whose sets are part of its rules (`ipset`).
    pub fn recorded_sets(self, state: &StateDir) -> Option<SetContents> {
        match self {
            Backend::Nft => recorded_sets(state),
            Backend::Iptables => None,
        }
    }
}

/// What undoing an apply of `rules` needs of the live firewall now. nft:
/// autofw's table as it is, from `ruleset` (the whole listing, taken for
/// the rollback's check) when there is one; iptables: the policies the
/// rules set and the forwarding state, so that undo puts back only what
/// autofw changed.
pub(crate) fn save_for_undo(
    rules: &Rules,
    ruleset: Option<&str>,
) -> anyhow::Result<(Option<nft::Saved>, Option<iptables::Saved>)> {
    match rules {
        Rules::Nft { .. } => {
            let saved = match ruleset {
                Some(ruleset) => nft::save(ruleset),
                None => nft::save(&nft::live_ruleset()?),
            };
            // autofw's iptables rules of an earlier apply: removed in the
            // same step ([`remove_other`]), which leaves the built-in
            // policies at ACCEPT; the undo puts back whichever it finds so.
            let other = match iptables::TOOLS.iter().all(|t| exec::tool_exists(t))
                && iptables::has_autofw_rules()?
            {
                true => Some(iptables::save(iptables::PoliciesSet::all_accept())?),
                false => None,
            };
            Ok((Some(saved), other))
        }
        Rules::Iptables { v4, v6, .. } => {
            // autofw's nft table of an earlier apply: removed in the same step.
            let other = ruleset
                .filter(|r| nft::table_block(r).is_some())
                .map(nft::save);
            Ok((
                other,
                Some(iptables::save(iptables::PoliciesSet::of(v4, v6))?),
            ))
        }
    }
}

/// autofw's own rules of the other backend than `rules`' (an earlier apply
/// with it, which [`save_for_undo`] saved): removed right after the new
/// rules load, so they neither drop what these open nor hide from
/// `status`. `last`: the rules of the last apply, whose iptables policies
/// are the ones to put back.
pub(crate) fn remove_other(rules: &Rules, last: Option<&Rules>) -> anyhow::Result<()> {
    match rules {
        Rules::Nft { .. } => {
            if iptables::TOOLS.iter().all(|t| exec::tool_exists(t)) {
                let set = match last {
                    Some(Rules::Iptables { v4, v6, .. }) => Some(iptables::PoliciesSet::of(v4, v6)),
                    _ => None,
                };
                iptables::remove_autofw(set.as_ref())?;
            }
        }
        Rules::Iptables { .. } => {
            if exec::tool_exists("nft") {
                nft::remove_table()?;
            }
        }
    }
    Ok(())
}

/// `autofw disable`: autofw's rules of both backends removed (`last`: the
/// rules of the last apply, whose iptables policies go back); what was
/// removed, said for people.
pub(crate) fn remove_all(last: Option<&Rules>) -> anyhow::Result<Vec<&'static str>> {
    let mut removed = Vec::new();
    if exec::tool_exists("nft") && nft::remove_table()? {
        removed.push("nft table inet autofw (and its blocklist sets)");
    }
    if iptables::TOOLS.iter().all(|t| exec::tool_exists(t)) {
        let set = match last {
            Some(Rules::Iptables { v4, v6, .. }) => Some(iptables::PoliciesSet::of(v4, v6)),
            _ => None,
        };
        if iptables::remove_autofw(set.as_ref())? {
            removed.push(
                "iptables and ip6tables AUTOFW-* chains, their jumps, the policies autofw set, \
                 its ipsets",
            );
        }
    }
    Ok(removed)
}

/// What [`remove_other`] would remove now, said for people; `None` when
/// autofw has no rules of the other backend than `backend` loaded.
pub(crate) fn other_loaded(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Iptables => (exec::tool_exists("nft")
            && nft::autofw_table_exists().unwrap_or(false))
        .then_some("autofw's nft rules (table inet autofw)"),
        Backend::Nft => (iptables::TOOLS.iter().all(|t| exec::tool_exists(t))
            && iptables::has_autofw_rules().unwrap_or(false))
        .then_some("autofw's iptables rules (the AUTOFW-* chains and jumps)"),
    }
}

/// Warnings once `rules` are loaded. iptables: other tools' INPUT rules
/// that still accept before autofw's jump (one inserted between the save
/// and the load): said, not undone. nft: none.
pub(crate) fn warnings_after_load(rules: &Rules) -> Vec<String> {
    match rules {
        Rules::Iptables { .. } => iptables::accepts_before_jump().unwrap_or_default(),
        Rules::Nft { .. } => Vec::new(),
    }
}

/// One part of the firewall that autofw owns, before and after.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Part {
    /// `table inet autofw`, `iptables` or `ip6tables`.
    pub name: &'static str,
    pub before: String,
    pub after: String,
}

/// The parts `rules` would change, as the firewall lists them now and as it
/// will list them once loaded (nft: in a scratch namespace; the text as
/// written if none can be made, which then always counts as a change),
/// and, on iptables, where the INPUT jump goes among the live rules, said
/// per family.
pub(crate) fn parts(rules: &Rules) -> anyhow::Result<(Vec<Part>, Vec<String>)> {
    let mut placement = Vec::new();
    let parts = match rules {
        Rules::Nft { text } => vec![Part {
            name: "table inet autofw",
            before: nft::live_autofw_table()?.unwrap_or_default(),
            after: nft::canonical(text).unwrap_or_else(|| text.clone()),
        }],
        Rules::Iptables { v4, v6, ipsets } => {
            let listed = iptables::canonical(v4, v6, ipsets.as_deref());
            let (new_v4, new_v6) = match listed {
                Some(listed) => listed,
                None => (v4.render(Hooks::Proposal), v6.render(Hooks::Proposal)),
            };
            let mut parts = Vec::new();
            for (family, text, name) in [
                (iptables::V4, &new_v4, "iptables"),
                (iptables::V6, &new_v6, "ip6tables"),
            ] {
                let saved = iptables::save_family(family)?;
                placement.extend(iptables::input_order::placement(&saved).describe(name));
                let live = FilterView::parse(&saved);
                let mut new = FilterView::parse(text);
                // Policies the proposal does not set stay as they are.
                for (chain, policy) in &live.policies {
                    new.policies.entry(chain.clone()).or_insert(policy.clone());
                }
                new.has_jump |= live.has_jump;
                parts.push(Part {
                    name,
                    before: live.summary(),
                    after: new.summary(),
                });
            }
            parts
        }
    };
    Ok((parts, placement))
}

/// The rules as apply shows them before loading, rendered from the model
/// for people ([`Target::Summary`]): nft's script with a sharded
/// blocklist's alike sets and chains folded into one line each way;
/// iptables' ipsets summed up when long, then both families' rules.
pub(crate) fn for_people(proposal: &Proposal, backend: Backend) -> String {
    match backend {
        Backend::Nft => format!(
            "{}\n",
            proposal.render_for(Format::Nft, Target::Summary).trim_end()
        ),
        Backend::Iptables => {
            let mut out = String::new();
            if let Some(sets) = ipsets_for_people(proposal.ruleset()) {
                out.push_str(&format!("{sets}\n\n"));
            }
            out.push_str(&format!(
                "{}\n\n{}\n",
                proposal
                    .render_for(Format::Iptables, Target::Summary)
                    .trim_end(),
                proposal
                    .render_for(Format::Ip6tables, Target::Summary)
                    .trim_end()
            ));
            out
        }
    }
}

/// How the diff names the part: on iptables autofw owns only part of each
/// table.
pub(crate) fn whose(backend: Backend) -> &'static str {
    match backend {
        Backend::Nft => "",
        Backend::Iptables => " (autofw's part)",
    }
}

/// The blocklist sets as autofw last loaded them (apply or refresh), when
/// the record says they are live: `applied-sets.txt`, checked against the
/// record's counts and digests. `None` otherwise (then the caller reads the
/// kernel). Reading the kernel is exact but costs about 0.6 s at a million
/// elements even spread over 64 hash sets (the kernel restarts a set's walk
/// for every 32 KiB dump message; docs/design.md); apply and refresh run under the apply
/// lock, and only they change these sets, so the record is what is live
/// unless someone edited the sets by hand, which `status` reports and
/// refresh's fallback repairs.
pub(crate) fn recorded_sets(state: &crate::state::StateDir) -> Option<SetContents> {
    let record = state.read_applied().ok()??;
    let blocklist = record.blocklist.as_ref()?;
    if record.rolled_back_at().is_some() || !nft::autofw_table_exists().ok()? {
        return None;
    }
    let path = state.applied_sets_path();
    let text = std::fs::read_to_string(&path).ok()?;
    let sets = SetContents::parse_text(&text, &path.display().to_string()).ok()?;
    (sets.summaries() == blocklist.sets).then_some(sets)
}

/// How the firewall lists the applied rules once loaded (what the live
/// rules are compared with). Listing them takes a scratch namespace
/// (`nft::canonical`, `iptables::canonical`: about 0.1 s on a loaded
/// host), so the listing is kept in the state directory
/// (`applied-listing.json`) under a digest of the rules' texts (`keyed`),
/// and taken from there only when `matches_live` says it is what the live
/// firewall holds: then the rules are as applied, whatever the tool's
/// version. Any difference (drift, or a tool that lists differently since
/// an upgrade) lists the rules again (`list`), so a kept listing can never
/// make a change, or a false one, out of a format. Only a cache: one that
/// cannot be written costs the next status a namespace.
fn kept_or_listed<L>(
    state: Option<&StateDir>,
    keyed: &str,
    matches_live: impl Fn(&L) -> bool,
    list: impl FnOnce() -> Option<L>,
) -> Option<L>
where
    L: Serialize + serde::de::DeserializeOwned,
{
    #[derive(Serialize, Deserialize)]
    struct Listed<L> {
        key: String,
        listing: L,
    }
    let key = crate::firewall::other_filters::filters::digest(keyed);
    // Another backend's listing, or a damaged file, reads as nothing kept.
    if let Some(Ok(Some(kept))) = state.map(|s| s.read_applied_listing::<Listed<L>>())
        && kept.key == key
        && matches_live(&kept.listing)
    {
        return Some(kept.listing);
    }
    let listing = list()?;
    if let Some(state) = state.filter(|s| s.root().is_dir()) {
        let _ = state.write_applied_listing(&Listed {
            key,
            listing: &listing,
        });
    }
    Some(listing)
}

/// Read what the live firewall holds of autofw's rules, and how the applied
/// rules list once loaded, for the backend the record names. `cache`: the
/// state directory that keeps the listing ([`kept_or_listed`]).
pub(crate) fn live_rules(
    record: &AppliedRecord,
    cache: Option<&StateDir>,
) -> anyhow::Result<LiveRules> {
    match &record.rules {
        Rules::Nft { text } => {
            exec::require_tools(Backend::Nft.tools())?;
            let table = nft::live_autofw_table()?;
            // Only worth a scratch namespace when there is a table to compare.
            let expected = match &table {
                Some(live) => kept_or_listed(
                    cache,
                    text,
                    |kept: &String| kept == live,
                    || nft::canonical(text),
                ),
                None => None,
            };
            Ok(LiveRules::Nft { table, expected })
        }
        Rules::Iptables { v4, v6, ipsets } => {
            exec::require_tools(Backend::Iptables.tools())?;
            let applied = [v4.render(Hooks::Proposal), v6.render(Hooks::Proposal)];
            let live = [
                iptables::save_family(iptables::V4)?,
                iptables::save_family(iptables::V6)?,
            ];
            let keyed = format!(
                "{}\n--\n{}\n--\n{}",
                applied[0],
                applied[1],
                ipsets.as_deref().unwrap_or_default()
            );
            let expected = kept_or_listed(
                cache,
                &keyed,
                |kept: &(String, String)| {
                    compare::same_part(&kept.0, &live[0], &applied[0])
                        && compare::same_part(&kept.1, &live[1], &applied[1])
                },
                || iptables::canonical(v4, v6, ipsets.as_deref()),
            );
            let (expected_v4, expected_v6) = match expected {
                Some((v4, v6)) => (Some(v4), Some(v6)),
                None => (None, None),
            };
            let [live_v4, live_v6] = live;
            let [applied_v4, applied_v6] = applied;
            Ok(LiveRules::Iptables(vec![
                FamilyRules {
                    name: "iptables".to_string(),
                    live: live_v4,
                    applied: applied_v4,
                    expected: expected_v4,
                },
                FamilyRules {
                    name: "ip6tables".to_string(),
                    live: live_v6,
                    applied: applied_v6,
                    expected: expected_v6,
                },
            ]))
        }
    }
}
