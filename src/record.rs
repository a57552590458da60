//! What apply records, in one place that firewall, persist and status all
//! read: the backend, the rendered rules, the apply record and the rollback
//! window. Pure data, and the conversions from a proposal into it; the
//! state directory (`state.rs`) and the boot files (`persist.rs`) store it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::blocklist::SetSummary;
use crate::model::{Proto, Scan};
use crate::propose::{Format, Proposal, Ruleset, group};

/// Which firewall apply drives. Stored as `nft` or `iptables` in every
/// record; a record naming any other is damaged (read as such, exit 3, by
/// `state::read_json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// nftables: one atomic `nft -f` that replaces only `table inet autofw`.
    #[default]
    Nft,
    /// iptables-restore and ip6tables-restore, for hosts without nftables.
    Iptables,
}

impl Backend {
    /// The name in records and messages: `nft`, `iptables`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Iptables => "iptables",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rendered ruleset for one backend: what apply loads and persist saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum Rules {
    /// One `nft -f` script that replaces `table inet autofw`.
    Nft { text: String },
    /// `iptables-restore` and `ip6tables-restore --noflush` input, and the
    /// `ipset restore` input of the blocklist sets they match, if any.
    Iptables {
        v4: String,
        v6: String,
        #[serde(default)]
        ipsets: Option<String>,
    },
}

impl Rules {
    pub fn render(proposal: &Proposal, backend: Backend) -> Rules {
        match backend {
            // The blocklist sets are declared empty: apply adds their
            // elements in one transaction of its own (blocklist::netlink).
            Backend::Nft => Rules::Nft {
                text: proposal.render_nft_table(),
            },
            Backend::Iptables => Rules::Iptables {
                v4: proposal.render(Format::Iptables),
                v6: proposal.render(Format::Ip6tables),
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
}

/// The ports a proposal opens, for apply's record and `status`, sorted.
pub fn opened_ports(ruleset: &Ruleset) -> Vec<OpenedPort> {
    let mut ports: Vec<OpenedPort> = ruleset
        .services()
        .map(|(proto, port, service)| OpenedPort {
            proto,
            port,
            service: service.to_string(),
        })
        .collect();
    ports.sort_by_key(|p| (p.port, p.proto));
    ports.dedup();
    ports
}

/// What apply records, besides the rules, so that status can tell drift from
/// the state the rules were made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtApply {
    /// The proposal's closed listeners, with why.
    pub closed: Vec<ClosedPort>,
    /// The (proto, port)s that listeners beyond loopback held, sorted.
    pub listening: Vec<ListeningPort>,
}

impl AtApply {
    /// From the scan the proposal was built from, and the proposal.
    pub fn of(scan: &Scan, ruleset: &Ruleset) -> AtApply {
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
pub fn listening_ports(scan: &Scan) -> Vec<ListeningPort> {
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

/// What `apply` loaded, for `status` and `rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRecord {
    /// Seconds since the Unix epoch.
    pub applied_at: u64,
    pub backend: Backend,
    pub opened: Vec<OpenedPort>,
    /// The rendered ruleset exactly as it was loaded (for `iptables`, the
    /// IPv4 `iptables-restore` input; the IPv6 one is in `ruleset_v6`).
    pub ruleset: String,
    /// The `ip6tables-restore` input, for the `iptables` backend only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruleset_v6: Option<String>,
    /// The `ipset restore` input of the blocklist sets, for the `iptables`
    /// backend with a blocklist only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsets: Option<String>,
    /// True once the operator confirmed it; false while the window is open or
    /// after a rollback.
    pub confirmed: bool,
    /// Seconds since the epoch at which it was rolled back, if it was.
    #[serde(default)]
    pub rolled_back_at: Option<u64>,
    /// True once it was saved for boot (`apply --persist`, after confirmation).
    #[serde(default)]
    pub persisted: bool,
    /// Listeners the ruleset left closed on purpose or because they needed no
    /// rule, so that `status` does not report a choice as drift. Empty in
    /// records written before `status` existed.
    #[serde(default)]
    pub closed: Vec<ClosedPort>,
    /// Every (proto, port) a listener beyond loopback held at apply time:
    /// `status` reports what changed since, not what was so then (a port
    /// opened ahead of its service is not a stale hole; a database opened on
    /// purpose is not news). `None` in records written before `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listening: Option<Vec<ListeningPort>>,
    /// Where the blocklist came from and what its sets held when loaded:
    /// counts and digests, never the elements (those are in the state
    /// directory's `applied-sets.txt`). `None` without a blocklist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocklist: Option<BlocklistRecord>,
    /// Every choice the apply was given, flags and policy file. `None` in
    /// records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<GivenChoices>,
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
    #[serde(default)]
    pub skip_bad_lines: bool,
    /// Each set's count and digest as last loaded (apply or refresh).
    pub sets: Vec<SetSummary>,
    /// Seconds since the epoch of the last refresh, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<u64>,
}

impl AppliedRecord {
    /// The rules it loaded, rebuilt (what persist saves). `Err` says what
    /// is missing from a damaged record.
    pub fn rules(&self) -> Result<Rules, &'static str> {
        match (self.backend, &self.ruleset_v6) {
            (Backend::Iptables, Some(v6)) => Ok(Rules::Iptables {
                v4: self.ruleset.clone(),
                v6: v6.clone(),
                ipsets: self.ipsets.clone(),
            }),
            (Backend::Iptables, None) => Err("names the iptables backend but has no IPv6 ruleset"),
            (Backend::Nft, _) => Ok(Rules::Nft {
                text: self.ruleset.clone(),
            }),
        }
    }
}

/// An open rollback window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackWindow {
    /// Seconds since the Unix epoch at which the watchdog rolls back, for
    /// people to read: the deadline itself is `deadline_boottime_ms`.
    pub deadline: u64,
    /// The deadline on `CLOCK_BOOTTIME` (milliseconds), which NTP never
    /// steps; only meaningful in the boot `boot_id` (crate::clock).
    #[serde(default)]
    pub deadline_boottime_ms: u64,
    /// The boot in which the window was opened. A window from another boot
    /// is dead: the restart dropped its rules, and nothing guards it.
    #[serde(default)]
    pub boot_id: String,
    /// Pid of the detached watchdog process (0 until it has started).
    pub watchdog_pid: u32,
    /// Identifies this window, so a late watchdog never acts on a newer one.
    #[serde(default)]
    pub id: String,
    /// Pid of the `apply` that opened it.
    #[serde(default)]
    pub apply_pid: u32,
    /// `--persist --root DIR`: persist under DIR once confirmed, not before.
    #[serde(default)]
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
