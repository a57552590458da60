//! What apply records, in one place that firewall, persist and status all
//! read: the backend, the rendered rules, the apply record and the rollback
//! window. Pure data, and the conversions from a proposal into it; the
//! state directory (`state.rs`) and the boot files (`persist.rs`) store it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::blocklist::SetSummary;
use crate::boot_hook::{self, BootPlan};
use crate::model::{Proto, Scan};
use crate::propose::render_iptables::{Hooks, Script};
use crate::propose::ruleset::{Action, Bound, Family, Match};
use crate::propose::{Format, Proposal, Ruleset, Target, group, render_nft};
use ipnet::IpNet;

/// Which firewall apply drives. Stored as `nft` or `iptables` in every
/// record; a record naming any other is damaged (read as such, exit 3, by
/// `state::read_json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// nftables: one atomic `nft -f` that replaces only `table inet autofw`.
    #[default]
    Nft,
    /// iptables-restore and ip6tables-restore, for hosts without nftables.
    Iptables,
}

impl Backend {
    /// Every backend, for what concerns each (the package's units, a look
    /// for autofw's rules of either).
    pub const ALL: [Backend; 2] = [Backend::Nft, Backend::Iptables];

    /// Its boot hook: the unit, the files it loads and how.
    pub(crate) fn boot(self) -> &'static BootPlan {
        match self {
            Backend::Nft => &boot_hook::NFT,
            Backend::Iptables => &boot_hook::IPTABLES,
        }
    }

    /// The name in records and messages: `nft`, `iptables`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Iptables => "iptables",
        }
    }

    /// Are the blocklist's elements loaded apart from the rules? nft: yes,
    /// over netlink ([`crate::blocklist::netlink`]), in a transaction of
    /// their own; iptables: no, its `ipset restore` input is part of the rules.
    pub fn loads_sets_apart(self) -> bool {
        match self {
            Backend::Nft => true,
            Backend::Iptables => false,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A ruleset for one backend, as typed parts: what apply loads and persist
/// saves, each rendered for where it goes ([`Rules::boot_texts`], and the
/// backend's load) without editing text that was rendered for elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum Rules {
    /// The definition of `table inet autofw` ([`Target::Load`]): a load
    /// empties a live table in place and refills it with this, or replaces
    /// the table with it ([`render_nft::replacing`]) where there is none.
    Nft { text: String },
    /// Each family's `iptables-restore --noflush` input without its hooks
    /// into the built-in chains ([`Script`]), and the `ipset restore` input
    /// of the blocklist sets they match, if any.
    Iptables {
        v4: Script,
        v6: Script,
        ipsets: Option<String>,
    },
}

impl Rules {
    pub fn render(proposal: &Proposal, backend: Backend) -> Rules {
        match backend {
            // The blocklist sets are declared empty: apply adds their
            // elements in one transaction of its own (blocklist::netlink).
            Backend::Nft => Rules::Nft {
                text: proposal.render_for(Format::Nft, Target::Load),
            },
            Backend::Iptables => Rules::Iptables {
                v4: proposal.iptables_script(Family::Ipv4),
                v6: proposal.iptables_script(Family::Ipv6),
                ipsets: proposal.ipset_restore(),
            },
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Rules::Nft { .. } => Backend::Nft,
            Rules::Iptables { .. } => Backend::Iptables,
        }
    }

    /// The texts of the boot files, in the order of the backend's
    /// [`BootPlan::rules_files`] (the ipsets file only with a blocklist):
    /// nft's script replaces the table; iptables' insert the INPUT jump
    /// first ([`Hooks::Boot`]).
    pub fn boot_texts(&self) -> Vec<String> {
        match self {
            Rules::Nft { text } => vec![render_nft::replacing(text)],
            Rules::Iptables { v4, v6, ipsets } => [
                Some(v4.render(Hooks::Boot)),
                Some(v6.render(Hooks::Boot)),
                ipsets.clone(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

#[cfg(test)]
impl Rules {
    /// A small ruleset of `backend`, for the tests of what stores and
    /// compares rules.
    pub(crate) fn example(backend: Backend) -> Rules {
        match backend {
            Backend::Nft => Rules::Nft {
                text: "table inet autofw {}\n".to_string(),
            },
            Backend::Iptables => {
                let script = Script {
                    filter: "*filter\n".to_string(),
                    guard: None,
                };
                Rules::Iptables {
                    v4: script.clone(),
                    v6: script,
                    ipsets: None,
                }
            }
        }
    }
}

/// The ports a proposal opens, for apply's record and `status`, sorted,
/// each with the interfaces its rules are limited to (none when any of its
/// rules takes every interface).
pub(crate) fn opened_ports(ruleset: &Ruleset) -> Vec<OpenedPort> {
    use crate::propose::ruleset::{Action, Match};
    let mut ports: Vec<OpenedPort> = ruleset
        .services()
        .map(|(proto, port, service)| OpenedPort {
            proto,
            port,
            service: service.to_string(),
            interfaces: Vec::new(),
        })
        .collect();
    ports.sort_by_key(|p| (p.port, p.proto));
    ports.dedup();
    for opened in &mut ports {
        let mut interfaces = Vec::new();
        for rule in ruleset.input.iter().filter(|r| r.action == Action::Accept) {
            if let Match::Service {
                proto, port, bound, ..
            } = &rule.matches
                && (*proto, *port) == (opened.proto, opened.port)
            {
                match bound.as_ref().and_then(|b| b.interface.clone()) {
                    Some(interface) => interfaces.push(interface),
                    // One rule takes any interface: so does the port.
                    None => {
                        interfaces.clear();
                        break;
                    }
                }
            }
        }
        interfaces.sort();
        interfaces.dedup();
        opened.interfaces = interfaces;
    }
    ports
}

/// Where one accept rule of the proposal admits new connections to a
/// service: its family, sources, and the address (and interface) a listener
/// bound to one address takes them on. Recorded so that the other-filters
/// judge can tell, from the record alone, which ports a probe from its
/// scratch namespace's address cannot reach through autofw's own rules
/// (`firewall::other_filters`): those it judges by the rule, not by waiting
/// for a probe's silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub proto: Proto,
    pub port: u16,
    /// Only this family, or both when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// Only from these networks, or from anyone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<Bound>,
}

#[cfg(test)]
impl Opening {
    /// An opening to anyone, for tests.
    pub(crate) fn anyone(proto: Proto, port: u16) -> Opening {
        Opening {
            proto,
            port,
            family: None,
            sources: Vec::new(),
            bound: None,
        }
    }
}

/// The accept rules of a proposal's services, in order.
pub(crate) fn openings(ruleset: &Ruleset) -> Vec<Opening> {
    ruleset
        .input
        .iter()
        .filter(|rule| rule.action == Action::Accept)
        .filter_map(|rule| match &rule.matches {
            Match::Service {
                proto,
                port,
                family,
                sources,
                bound,
                ..
            } => Some(Opening {
                proto: *proto,
                port: *port,
                family: *family,
                sources: sources.clone(),
                bound: bound.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// What apply records, besides the rules, so that status can tell drift from
/// the state the rules were made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AtApply {
    /// The proposal's closed listeners, with why.
    pub closed: Vec<ClosedPort>,
    /// The (proto, port)s that listeners beyond loopback held, sorted.
    pub listening: Vec<ListeningPort>,
}

impl AtApply {
    /// From the scan the proposal was built from, and the proposal.
    pub(crate) fn of(scan: &Scan, ruleset: &Ruleset) -> AtApply {
        let closed = ruleset
            .closed
            .iter()
            .map(|c| ClosedPort {
                proto: c.proto,
                port: c.port,
                service: c.service.clone(),
                reason: c.reason.clone(),
            })
            .collect();
        AtApply {
            closed,
            listening: listening_ports(scan),
        }
    }
}

/// The (proto, port)s that listeners beyond loopback hold in `scan`, sorted.
pub(crate) fn listening_ports(scan: &Scan) -> Vec<ListeningPort> {
    group::beyond_loopback(scan)
        .into_iter()
        .map(|((port, proto), g)| ListeningPort {
            proto,
            port,
            service: g.service().to_string(),
            risky: g.risky,
        })
        .collect()
}

/// One port that an applied ruleset opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedPort {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
    /// The only interfaces its rules take it from (`iifname`: a socket
    /// bound to a device, or to a private address); empty when it is open
    /// on every interface, and in records written before autofw kept this.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
}

/// A listener that an applied ruleset left closed, and why (propose's
/// `Ruleset.closed`: kept closed by `--block`, risky, or loopback-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedPort {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
    pub reason: String,
}

/// A (proto, port) that a listener beyond loopback held when the rules were
/// applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListeningPort {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
    /// A database, cache or admin service (scan's `risky`).
    pub risky: bool,
}

/// What `apply` loaded, for `status`, `confirm`, `rollback` and `blocklist
/// refresh`: the rules as the backend loaded them, and where their rollback
/// window stands ([`Life`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRecord {
    /// Seconds since the Unix epoch.
    pub applied_at: u64,
    /// The rules exactly as they were loaded, one text per family and tool
    /// (the blocklist sets' elements are in `applied-sets.txt`, their counts
    /// and digests in `blocklist`).
    pub rules: Rules,
    pub opened: Vec<OpenedPort>,
    /// Listeners the ruleset left closed on purpose or because they needed no
    /// rule, so that `status` does not report a choice as drift.
    pub closed: Vec<ClosedPort>,
    /// Every (proto, port) a listener beyond loopback held at apply time:
    /// `status` reports what changed since, not what was so then (a port
    /// opened ahead of its service is not a stale hole; a database opened on
    /// purpose is not news).
    pub listening: Vec<ListeningPort>,
    /// Where the blocklist came from and what its sets held when loaded:
    /// counts and digests, never the elements (those are in the state
    /// directory's `applied-sets.txt`). `None` without a blocklist.
    pub blocklist: Option<BlocklistRecord>,
    /// Where each service's accept rule admits new connections (see
    /// [`Opening`]).
    pub openings: Vec<Opening>,
    /// Every choice the apply was given, flags and policy file.
    pub given: GivenChoices,
    /// Loaded with a window open, confirmed, or rolled back (and why).
    pub life: Life,
}

impl AppliedRecord {
    pub fn backend(&self) -> Backend {
        self.rules.backend()
    }
    /// Kept by the operator (and not rolled back since).
    pub fn confirmed(&self) -> bool {
        matches!(self.life, Life::Confirmed(_))
    }
    /// When it was rolled back, if it was.
    pub fn rolled_back_at(&self) -> Option<u64> {
        match &self.life {
            Life::RolledBack(r) => Some(r.at),
            _ => None,
        }
    }
    /// Whether the boot files hold these rules (saved after confirmation;
    /// a rollback leaves them, `autofw unpersist` removes them).
    pub fn persisted(&self) -> bool {
        match &self.life {
            Life::Loaded(_) => false,
            Life::Confirmed(c) => c.persisted,
            Life::RolledBack(r) => r.persisted,
        }
    }
}

/// The life of an apply's rules, one state at a time: loaded with a window
/// open until a deadline, then confirmed or rolled back (with why). Each
/// state carries what is true of it and nothing else, so "confirmed and
/// rolled back" cannot be written; the moves between them are the
/// functions below, which refuse the moves that make no sense.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Life {
    Loaded(Loaded),
    Confirmed(Confirmed),
    RolledBack(RolledBack),
}

/// Loaded, its window open: rolled back at the deadline unless confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loaded {
    /// Seconds since the epoch of the deadline, for people to read (the
    /// deadline itself is on the boot clock, in `window.json`).
    pub deadline: u64,
}

/// Kept by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmed {
    /// Seconds since the epoch.
    pub at: u64,
    /// Saved for boot (`apply --persist`, after confirmation).
    pub persisted: bool,
}

/// Put back to what was loaded before the apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolledBack {
    /// Seconds since the epoch.
    pub at: u64,
    pub why: Why,
    /// The boot files still hold these rules (they were confirmed and
    /// persisted before `autofw rollback`; only `autofw unpersist` removes
    /// them).
    pub persisted: bool,
}

/// Why rules were rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// Nobody confirmed before the deadline (the watchdog, apply, or a
    /// `confirm` that came too late).
    Expired,
    /// `no` at apply's prompt.
    OperatorSaidNo,
    /// Ctrl-C (SIGINT) while apply waited for the decision.
    Interrupted,
    /// `autofw rollback`.
    RollbackCommand,
    /// The window did not survive (a restart, a dead watchdog, the rules no
    /// longer loaded), found by `confirm`.
    DidNotSurvive,
    /// The kernel refused the blocklist's elements after the rules loaded.
    LoadFailed,
}

/// A move the life of an apply does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Only a loaded window can be confirmed.
    NotLoaded,
    /// Kept rules are rolled back only by `autofw rollback`: a deadline, a
    /// prompt or a failed load belongs to a window that is over.
    AlreadyConfirmed,
    /// Persisting belongs to confirmed rules only.
    NotConfirmed,
}

impl Loaded {
    pub fn confirm(self, at: u64) -> Confirmed {
        Confirmed {
            at,
            persisted: false,
        }
    }
    pub fn roll_back(self, at: u64, why: Why) -> RolledBack {
        RolledBack {
            at,
            why,
            persisted: false,
        }
    }
}

impl Confirmed {
    pub fn persist(self) -> Confirmed {
        Confirmed {
            persisted: true,
            ..self
        }
    }
    /// `autofw rollback` of kept rules (the only way to roll them back).
    pub fn roll_back_by_command(self, at: u64) -> RolledBack {
        RolledBack {
            at,
            why: Why::RollbackCommand,
            persisted: self.persisted,
        }
    }
}

impl Life {
    pub fn confirm(self, at: u64) -> Result<Life, Refusal> {
        match self {
            Life::Loaded(loaded) => Ok(Life::Confirmed(loaded.confirm(at))),
            _ => Err(Refusal::NotLoaded),
        }
    }

    pub fn persist(self) -> Result<Life, Refusal> {
        match self {
            Life::Confirmed(confirmed) => Ok(Life::Confirmed(confirmed.persist())),
            _ => Err(Refusal::NotConfirmed),
        }
    }

    /// The state after a rollback for `why`. Rules already rolled back stay
    /// as recorded (`autofw rollback` may put the saved ruleset back again,
    /// which changes nothing that was not changed by hand since).
    pub fn roll_back(self, at: u64, why: Why) -> Result<Life, Refusal> {
        match (self, why) {
            (Life::Loaded(loaded), why) => Ok(Life::RolledBack(loaded.roll_back(at, why))),
            (Life::Confirmed(confirmed), Why::RollbackCommand) => {
                Ok(Life::RolledBack(confirmed.roll_back_by_command(at)))
            }
            (Life::Confirmed(_), _) => Err(Refusal::AlreadyConfirmed),
            (rolled @ Life::RolledBack(_), _) => Ok(rolled),
        }
    }
}

/// The blocklist of an applied policy: enough for `autofw blocklist
/// refresh` to re-read it and for `status` to compare the live sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistRecord {
    /// The `[blocklist] files`, absolute.
    pub files: Vec<PathBuf>,
    /// The policy's `addresses` and `--blocklist` entries, as written.
    pub inline: Vec<String>,
    /// `--skip-bad-lines` was given.
    pub skip_bad_lines: bool,
    /// Each set's count and digest as last loaded (apply or refresh).
    pub sets: Vec<SetSummary>,
    /// Seconds since the epoch of the last refresh, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<u64>,
}

/// An open rollback window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackWindow {
    /// Seconds since the Unix epoch at which the watchdog rolls back, for
    /// people to read: the deadline itself is `deadline_boottime_ms`.
    pub deadline: u64,
    /// The deadline on `CLOCK_BOOTTIME` (milliseconds), which NTP never
    /// steps; only meaningful in the boot `boot_id` (crate::clock).
    pub deadline_boottime_ms: u64,
    /// The boot in which the window was opened. A window from another boot
    /// is dead: the restart dropped its rules, and nothing guards it.
    pub boot_id: String,
    /// Pid of the detached watchdog process (0 until it has started).
    pub watchdog_pid: u32,
    /// Identifies this window, so a late watchdog never acts on a newer one.
    pub id: String,
    /// Pid of the `apply` that opened it.
    pub apply_pid: u32,
    /// `--persist --root DIR`: persist under DIR once confirmed, not before.
    pub persist_root: Option<PathBuf>,
}

/// A reading of the boot clock (`crate::clock` takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTime {
    /// This boot's id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// Milliseconds of `CLOCK_BOOTTIME`: since this boot, suspend included.
    pub millis: u64,
}

/// Where a window stands on the boot clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// Open, with this many milliseconds left.
    Left(u64),
    /// The deadline has passed: roll back.
    Passed,
    /// Opened in another boot: the restart dropped its rules and its watchdog.
    OtherBoot,
}

impl RollbackWindow {
    /// Where the window stands at `now`.
    pub fn remaining(&self, now: &BootTime) -> Remaining {
        if self.boot_id.is_empty() || self.boot_id != now.boot_id {
            Remaining::OtherBoot
        } else if now.millis >= self.deadline_boottime_ms {
            Remaining::Passed
        } else {
            Remaining::Left(self.deadline_boottime_ms - now.millis)
        }
    }
}

/// Every choice an apply was given, as given: the one-off flags, and the
/// policy file with a digest of the text it read. What the operator meant,
/// beside what it made (`opened`, `closed`): status tells from it whether
/// the policy changed since, and a later apply what was one-off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GivenChoices {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocklist: Vec<String>,
    #[serde(default)]
    pub skip_bad_lines: bool,
    /// The policy file read (absolute), the default one included; or the
    /// default looked for when it did not exist (then no digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PathBuf>,
    /// `policy_edit::text_digest` of the policy text the apply read; `None`
    /// when there was no file to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<String>,
    /// `--no-policy`: the default policy file was not read on purpose.
    #[serde(default)]
    pub no_policy: bool,
    /// `--from FILE`: a saved scan instead of this host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PathBuf>,
}

impl GivenChoices {
    /// The flags that give these choices again, as a person types them
    /// (each word shell-quoted where it needs it): for the hints autofw
    /// prints, which must repeat what the operator gave or they would close
    /// what those flags opened. The policy file is named only when it is not
    /// the default one (`etc/autofw/policy.toml`, under a root or not).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (flag, values) in [
            ("--allow", &self.allow),
            ("--block", &self.block),
            ("--limit", &self.limit),
            ("--source", &self.source),
            ("--blocklist", &self.blocklist),
        ] {
            for value in values {
                flags.push(format!("{flag} {}", shell_word(value)));
            }
        }
        if let Some(policy) = &self.policy
            && !policy.ends_with("etc/autofw/policy.toml")
        {
            flags.push(format!(
                "--policy {}",
                shell_word(&policy.to_string_lossy())
            ));
        }
        if self.no_policy {
            flags.push("--no-policy".to_string());
        }
        if self.skip_bad_lines {
            flags.push("--skip-bad-lines".to_string());
        }
        if let Some(from) = &self.from {
            flags.push(format!("--from {}", shell_word(&from.to_string_lossy())));
        }
        flags
    }
}

/// `word` as a POSIX shell reads it back: as is when it holds only safe
/// characters, else in single quotes.
pub(crate) fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded() -> Life {
        Life::Loaded(Loaded { deadline: 100 })
    }

    const ALL: [Why; 6] = [
        Why::Expired,
        Why::OperatorSaidNo,
        Why::Interrupted,
        Why::RollbackCommand,
        Why::DidNotSurvive,
        Why::LoadFailed,
    ];

    #[test]
    fn a_loaded_window_is_confirmed_or_rolled_back_for_any_reason() {
        assert_eq!(
            loaded().confirm(50),
            Ok(Life::Confirmed(Confirmed {
                at: 50,
                persisted: false
            }))
        );
        for why in ALL {
            assert_eq!(
                loaded().roll_back(60, why),
                Ok(Life::RolledBack(RolledBack {
                    at: 60,
                    why,
                    persisted: false
                }))
            );
        }
    }

    #[test]
    fn confirmed_rules_are_rolled_back_only_by_the_rollback_command() {
        let kept = loaded().confirm(50).unwrap().persist().unwrap();
        for why in ALL {
            let next = kept.clone().roll_back(70, why);
            if why == Why::RollbackCommand {
                // The boot files still hold them: the record says so.
                assert_eq!(
                    next,
                    Ok(Life::RolledBack(RolledBack {
                        at: 70,
                        why,
                        persisted: true
                    }))
                );
            } else {
                // The watchdog's deadline, a late `no`, a dead-window check:
                // none of them may undo a confirmation.
                assert_eq!(next, Err(Refusal::AlreadyConfirmed), "{why:?}");
            }
        }
    }

    #[test]
    fn rolled_back_rules_are_neither_confirmed_nor_persisted_and_stay_as_recorded() {
        let rolled = loaded().roll_back(60, Why::Expired).unwrap();
        assert_eq!(rolled.clone().confirm(70), Err(Refusal::NotLoaded));
        assert_eq!(rolled.clone().persist(), Err(Refusal::NotConfirmed));
        assert_eq!(loaded().persist(), Err(Refusal::NotConfirmed));
        assert_eq!(
            loaded().confirm(1).unwrap().confirm(2),
            Err(Refusal::NotLoaded)
        );
        // `autofw rollback` again: the first rollback stays the record.
        assert_eq!(
            rolled.clone().roll_back(90, Why::RollbackCommand),
            Ok(rolled)
        );
    }

    #[test]
    fn the_record_says_one_state_with_what_it_needs() {
        let record = AppliedRecord {
            applied_at: 1,
            rules: Rules::Nft {
                text: "table inet autofw {}\n".into(),
            },
            opened: Vec::new(),
            closed: Vec::new(),
            listening: Vec::new(),
            blocklist: None,
            given: Default::default(),
            openings: Vec::new(),
            life: loaded().roll_back(60, Why::OperatorSaidNo).unwrap(),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json["life"],
            serde_json::json!({"state": "rolled-back", "at": 60, "why": "operator-said-no", "persisted": false})
        );
        assert_eq!(json["rules"]["backend"], "nft");
        assert_eq!(record.rolled_back_at(), Some(60));
        assert!(!record.confirmed() && !record.persisted());
        // "confirmed and rolled back" cannot be written, nor read.
        let mut both = json.clone();
        both["life"]["state"] = "confirmed".into();
        let parsed: Result<AppliedRecord, _> = serde_json::from_value(both);
        assert!(parsed.is_err_and(|e| e.to_string().contains("`why`")));
    }

    #[test]
    fn given_choices_say_their_flags_again() {
        let given = GivenChoices {
            allow: vec!["https".into(), "8443/tcp".into()],
            source: vec!["ssh=192.0.2.0/24".into()],
            policy: Some(PathBuf::from("/etc/autofw/policy.toml")),
            from: Some(PathBuf::from("/tmp/my scan.json")),
            ..GivenChoices::default()
        };
        assert_eq!(
            given.flags().join(" "),
            "--allow https --allow 8443/tcp --source ssh=192.0.2.0/24 --from '/tmp/my scan.json'"
        );
        let other = GivenChoices {
            policy: Some(PathBuf::from("/srv/p.toml")),
            no_policy: false,
            ..GivenChoices::default()
        };
        assert_eq!(other.flags(), ["--policy /srv/p.toml"]);
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
