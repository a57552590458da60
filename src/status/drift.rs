//! The drift core: what differs between what autofw applied, what the live
//! firewall holds ([`compare`](crate::firewall::backend::compare)), and what listens now. Pure:
//! it takes values the edge read (the live [`Scan`], the [`AppliedRecord`],
//! the live rules as text) and returns [`Finding`]s, so every case is tested
//! on plain values.
//!
//! Drift means a change since the rules were applied, not a choice the
//! operator made then: a port opened ahead of its service is not a stale
//! hole, a listener kept closed by `--block` is not news, a database opened
//! with `--allow` is not reported every minute from cron. That is why apply
//! records what listened and what it left closed
//! ([`AtApply`](crate::record::AtApply)).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::wording;
use crate::firewall::backend::compare::RulesState;
use crate::firewall::backend::compare::{FamilyRules, LiveRules, compare_rules};
use crate::firewall::backend::iptables::input_order;
use crate::firewall::other_filters::verdict::ForeignDrop;
use crate::model::{Exposure, Proto, Scan};
use crate::propose::group::{self, PortGroup};
use crate::record::{AppliedRecord, Life, ListeningPort, OpenedPort};

/// An open rollback window, with what the edge found in the process table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WindowState {
    /// Seconds since the epoch at which the rules roll back.
    pub deadline: u64,
    /// Seconds until then (on the boot clock, which NTP never steps); 0
    /// once it has passed.
    pub seconds_left: u64,
    /// Seconds since the deadline passed with the window still open; 0
    /// before the deadline.
    pub seconds_overdue: u64,
    /// The window was opened in this boot. A window from an earlier boot is
    /// dead: the restart dropped its rules and its watchdog.
    pub same_boot: bool,
    pub watchdog_pid: u32,
    /// The watchdog runs (it holds its lock in the state directory).
    pub watchdog_alive: bool,
    /// The last line of the watchdog's log, when it is past the deadline
    /// and says why it has not rolled back yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchdog_says: Option<String>,
    pub apply_pid: u32,
    /// The `apply` that opened the window is still running: it enforces the
    /// deadline too.
    pub apply_alive: bool,
}

/// What kind of drift a finding is, named kebab-case (`stale-hole`) in text
/// and JSON alike ([`Kind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// No apply recorded: autofw protects nothing here.
    NothingApplied,
    /// `autofw disable` removed autofw's rules and boot hook.
    Disabled,
    /// autofw's rules are not loaded (rolled back, flushed, rebooted).
    NotLive,
    /// autofw's rules are loaded but differ from what was applied.
    Changed,
    /// autofw's own rules of the other backend are loaded beside these.
    OtherBackend,
    /// The live blocklist sets differ from what was loaded or from the files.
    BlocklistDiffers,
    /// The policy file changed (or appeared, or went) since the apply: the
    /// live rules do not follow it yet.
    PolicyChanged,
    /// On iptables, another tool's INPUT rule accepts before autofw's jump:
    /// what it matches bypasses autofw's rules.
    AcceptBeforeAutofw,
    /// Another filter on the host (an nft table, iptables-nft, legacy)
    /// drops or rejects ports autofw opens.
    ForeignDrop,
    /// iptables-legacy tables hold rules: invisible to `nft list ruleset`.
    LegacyRules,
    /// A rollback window is open that can no longer be confirmed: the
    /// machine restarted, or its watchdog is gone.
    UnguardedWindow,
    /// The deadline passed, the watchdog runs, but the rules are not rolled
    /// back yet (it is retrying: nft fails, the state directory is broken).
    RollbackOverdue,
    /// Listens beyond loopback, but the applied rules do not open it.
    UnopenedListener,
    /// The applied rules open a port nothing listens on any more.
    StaleHole,
    /// A database, cache or admin service listens on an opened port.
    RiskyExposed,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::NothingApplied => "nothing-applied",
            Kind::Disabled => "disabled",
            Kind::NotLive => "not-live",
            Kind::OtherBackend => "other-backend",
            Kind::Changed => "changed",
            Kind::BlocklistDiffers => "blocklist-differs",
            Kind::PolicyChanged => "policy-changed",
            Kind::AcceptBeforeAutofw => "accept-before-autofw",
            Kind::ForeignDrop => "foreign-drop",
            Kind::LegacyRules => "legacy-rules",
            Kind::UnguardedWindow => "unguarded-window",
            Kind::RollbackOverdue => "rollback-overdue",
            Kind::UnopenedListener => "unopened-listener",
            Kind::StaleHole => "stale-hole",
            Kind::RiskyExposed => "risky-exposed",
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One thing that differs, said plainly, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub kind: Kind,
    pub message: String,
    pub fix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Who listens (`sshd, pid 630`), for listener findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where it listens, for listener findings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// For `changed`: a unified diff, applied → live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Finding {
    /// A finding about the rules as a whole (no port, no listener).
    pub(crate) fn new(kind: Kind, message: String, fix: String) -> Finding {
        Finding {
            kind,
            message,
            fix,
            proto: None,
            port: None,
            service: None,
            owner: None,
            addresses: Vec::new(),
            diff: None,
        }
    }
}

/// The outcome: the state of the rules (when something was applied), what
/// is live, and the findings, rules first, then listeners by port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assessment {
    pub rules: Option<RulesState>,
    pub live: Live,
    pub findings: Vec<Finding>,
}

/// What is live, named: whose rules the firewall holds, as far as autofw
/// recorded them. Tagged `state` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub(crate) enum Live {
    /// Nothing was ever applied here.
    NothingApplied,
    /// The rules of the last apply, kept (`confirmed_at`).
    Confirmed { applied_at: u64, confirmed_at: u64 },
    /// The rules of the last apply, still in their rollback window.
    InWindow { applied_at: u64, deadline: u64 },
    /// Rules a rollback restored: those of the apply at `applied_at`, put
    /// back at `rolled_back_at` by the rollback of the apply at `of_apply`.
    Restored {
        applied_at: u64,
        rolled_back_at: u64,
        of_apply: u64,
    },
    /// autofw's rules are loaded, but match nothing autofw recorded.
    Unrecorded,
    /// No autofw rules are loaded.
    NoRules,
    /// `autofw disable` at `at`: autofw loads no rules.
    Disabled { at: u64 },
}

/// What status knows beside the last apply and its live rules.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Around<'a> {
    /// `autofw disable` ran at this time and no apply was confirmed since.
    pub disabled_at: Option<u64>,
    /// After a rollback: the record of the rules it restored
    /// (`previous.json`), and the live rules read for it.
    pub restored: Option<(&'a AppliedRecord, &'a LiveRules)>,
    /// autofw's own rules of the other backend are loaded too, said for
    /// people (`autofw's iptables rules (the AUTOFW-* chains and jumps)`).
    pub other_backend: Option<&'a str>,
    /// Nothing was applied (or recorded) here, yet autofw's rules are
    /// loaded: by hand, or a state directory other than this one.
    pub unrecorded_rules: bool,
}

/// Assess drift with nothing else found around the host (the tests' entry;
/// status itself calls [`assess_host`]). `live` is what the firewall holds;
/// `window` is the open rollback window, if any.
#[cfg(test)]
pub(crate) fn assess(
    scan: &Scan,
    record: Option<&AppliedRecord>,
    live: Option<&LiveRules>,
    window: Option<&WindowState>,
) -> Assessment {
    assess_host(scan, record, live, window, &Around::default())
}

/// [`assess`], with what else status found ([`Around`]): a disabled host,
/// the rules a rollback restored, the other backend's rules.
pub(crate) fn assess_host(
    scan: &Scan,
    record: Option<&AppliedRecord>,
    live: Option<&LiveRules>,
    window: Option<&WindowState>,
    around: &Around<'_>,
) -> Assessment {
    let mut findings = Vec::new();
    let mut live_now = Live::NoRules;
    let rules = match (around.disabled_at, record) {
        // Disabled, and no window since: nothing of autofw is loaded.
        (Some(at), _) if window.is_none() => {
            let (message, fix) = wording::disabled(at);
            findings.push(Finding::new(Kind::Disabled, message, fix));
            live_now = Live::Disabled { at };
            None
        }
        (_, None) => {
            let (message, fix) = wording::nothing_applied();
            findings.push(Finding::new(Kind::NothingApplied, message, fix));
            live_now = match around.unrecorded_rules {
                true => Live::Unrecorded,
                false => Live::NothingApplied,
            };
            None
        }
        (_, Some(record)) => {
            let state = match (record.rolled_back_at(), live) {
                (Some(at), _) => RulesState::RolledBack { at },
                (None, Some(live)) => compare_rules(live),
                (None, None) => RulesState::Unverified {
                    reason: "the live firewall was not read".to_string(),
                },
            };
            // After a rollback: are the rules it restored (an earlier
            // apply's) what is loaded? Then they are what status checks.
            let restored = match (&state, around.restored) {
                (RulesState::RolledBack { at }, Some((before, before_live))) => {
                    match compare_rules(before_live) {
                        RulesState::Live | RulesState::Unverified { .. } => {
                            live_now = Live::Restored {
                                applied_at: before.applied_at,
                                rolled_back_at: *at,
                                of_apply: record.applied_at,
                            };
                            Some((before, before_live))
                        }
                        // autofw's rules are loaded, but not as that apply
                        // (nor the rolled-back one) recorded them.
                        RulesState::Changed { .. } => {
                            live_now = Live::Unrecorded;
                            None
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            match restored {
                Some((before, before_live)) => {
                    findings.extend(listener_findings(scan, before));
                    findings.extend(accepts_before_autofw(before_live.iptables_families()));
                }
                None => {
                    findings.extend(rules_finding(record, &state));
                    live_now = match (&state, &record.life) {
                        (RulesState::Live | RulesState::Unverified { .. }, Life::Confirmed(c)) => {
                            Live::Confirmed {
                                applied_at: record.applied_at,
                                confirmed_at: c.at,
                            }
                        }
                        (RulesState::Live | RulesState::Unverified { .. }, Life::Loaded(l)) => {
                            Live::InWindow {
                                applied_at: record.applied_at,
                                deadline: l.deadline,
                            }
                        }
                        (RulesState::Changed { .. }, _) => Live::Unrecorded,
                        _ if live_now == Live::Unrecorded => Live::Unrecorded,
                        _ => Live::NoRules,
                    };
                    // Without autofw's rules loaded, nothing is dropped or
                    // opened by them: comparing listeners with them would
                    // only mislead.
                    if !matches!(state, RulesState::Missing | RulesState::RolledBack { .. }) {
                        findings.extend(listener_findings(scan, record));
                        if let Some(live) = live {
                            findings.extend(accepts_before_autofw(live.iptables_families()));
                        }
                    }
                }
            }
            Some(state)
        }
    };
    if let Some(other) = around.other_backend {
        let (message, fix) = wording::other_backend(other, record.map(|r| r.backend()));
        findings.push(Finding::new(Kind::OtherBackend, message, fix));
    }
    if let Some(window) = window {
        if !window.same_boot || !window.watchdog_alive {
            findings.push(unguarded(window));
        } else if window.seconds_overdue >= OVERDUE_AFTER_SECS {
            findings.push(overdue(window));
        }
    }
    sort_findings(&mut findings);
    Assessment {
        rules,
        live: live_now,
        findings,
    }
}

/// What concerns the rules as a whole first, then listeners by port.
fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by_key(|f| {
        let about_a_port = f.kind > Kind::RollbackOverdue;
        (
            about_a_port,
            (!about_a_port).then_some(f.kind),
            f.port,
            f.proto,
        )
    });
}

/// Add what the host's other filters do (the kernel judged it, in a
/// scratch namespace): each drop of an opened port, and legacy tables with
/// rules (drift even when they drop nothing autofw opens: nothing else
/// shows them).
pub(crate) fn with_foreign(
    mut assessment: Assessment,
    drops: &[ForeignDrop],
    legacy: &[String],
) -> Assessment {
    for drop in drops {
        let (message, fix) = wording::foreign_drop(drop);
        assessment
            .findings
            .push(Finding::new(Kind::ForeignDrop, message, fix));
    }
    if !legacy.is_empty() && !drops.iter().any(|d| d.legacy) {
        let (message, fix) = wording::legacy_rules(legacy);
        assessment
            .findings
            .push(Finding::new(Kind::LegacyRules, message, fix));
    }
    sort_findings(&mut assessment.findings);
    assessment
}

/// Other tools' INPUT rules that accept before autofw's jump, per family.
fn accepts_before_autofw(families: &[FamilyRules]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for family in families {
        for accept in input_order::accepts_before_jump(&family.live) {
            let (message, fix) = wording::accept_before_autofw(&family.name, &accept);
            findings.push(Finding::new(Kind::AcceptBeforeAutofw, message, fix));
        }
    }
    findings
}

fn rules_finding(record: &AppliedRecord, state: &RulesState) -> Option<Finding> {
    let (kind, (message, fix)) = match state {
        RulesState::Live | RulesState::Unverified { .. } => return None,
        RulesState::RolledBack { at } => (Kind::NotLive, wording::rolled_back(record, *at)),
        RulesState::Missing => (Kind::NotLive, wording::missing(record)),
        RulesState::Changed { diff } => {
            let changed = diff
                .lines()
                .filter(|l| {
                    (l.starts_with('+') && !l.starts_with("+++"))
                        || (l.starts_with('-') && !l.starts_with("---"))
                })
                .count();
            (Kind::Changed, wording::changed(record, changed))
        }
    };
    let diff = match state {
        RulesState::Changed { diff } => Some(diff.clone()),
        _ => None,
    };
    Some(Finding {
        diff,
        ..Finding::new(kind, message, fix)
    })
}

/// The watchdog rolls back within 100 ms of the deadline; a window still
/// open this long after it means the rollback is failing.
const OVERDUE_AFTER_SECS: u64 = 5;

fn unguarded(window: &WindowState) -> Finding {
    let (message, fix) = wording::unguarded(window);
    Finding::new(Kind::UnguardedWindow, message, fix)
}

fn overdue(window: &WindowState) -> Finding {
    let (message, fix) = wording::overdue(window);
    Finding::new(Kind::RollbackOverdue, message, fix)
}

fn listener_finding(
    kind: Kind,
    (port, proto): (u16, Proto),
    group: &PortGroup,
    message: String,
    fix: String,
) -> Finding {
    Finding {
        proto: Some(proto),
        port: Some(port),
        service: Some(group.service().to_string()),
        owner: Some(group.owner()),
        addresses: group.addresses.clone(),
        ..Finding::new(kind, message, fix)
    }
}

/// Where a listener on `key` now takes packets that rules limited to
/// `interfaces` do not admit: `0.0.0.0%virbr1` (bound to another device),
/// `0.0.0.0` (every interface). `None` when the rules take every interface,
/// or every listener is on one of theirs. A listener's interface is its
/// device, or for a private or link-local address the one holding it, as
/// propose matched it.
fn outside_interfaces(scan: &Scan, key: (u16, Proto), interfaces: &[String]) -> Option<String> {
    if interfaces.is_empty() {
        return None;
    }
    scan.listeners
        .iter()
        .filter(|l| (l.port, l.proto) == key)
        .filter(|l| l.exposure != Exposure::Loopback && !l.client_socket)
        .find(|l| {
            let on = match (&l.device, l.exposure) {
                (Some(device), _) => Some(device),
                (None, Exposure::Private | Exposure::LinkLocal) => l.interface.as_ref(),
                (None, _) => None,
            };
            on.is_none_or(|name| !interfaces.contains(name))
        })
        .map(|l| l.address_text())
}

fn listener_findings(scan: &Scan, record: &AppliedRecord) -> Vec<Finding> {
    let now = group::beyond_loopback(scan);
    let opened: BTreeMap<(u16, Proto), &OpenedPort> = record
        .opened
        .iter()
        .map(|o| ((o.port, o.proto), o))
        .collect();
    let then: BTreeMap<(u16, Proto), &ListeningPort> = record
        .listening
        .iter()
        .map(|p| ((p.port, p.proto), p))
        .collect();
    // Closed on purpose: left closed by the proposal although it listened
    // beyond loopback then (`--block`, or risky). A loopback-only listener
    // that now faces the network was never a choice.
    let kept_closed = |key: &(u16, Proto)| {
        record.closed.iter().any(|c| (c.port, c.proto) == *key) && then.contains_key(key)
    };

    let mut findings = Vec::new();
    for (&key, group) in &now {
        let (port, proto) = key;
        let spec = format!("{port}/{proto}");
        if let Some(open) = opened.get(&key) {
            // Opened on some interfaces only (a socket bound to a device or
            // a private address then): a listener now reached from others
            // is not open there.
            if let Some(place) = outside_interfaces(scan, key, &open.interfaces) {
                let (message, fix) =
                    wording::opened_elsewhere(group, &spec, &place, &open.interfaces);
                findings.push(listener_finding(
                    Kind::UnopenedListener,
                    key,
                    group,
                    message,
                    fix,
                ));
                continue;
            }
            let accepted_then = then.get(&key).is_some_and(|p| p.risky);
            if group.risky && !accepted_then {
                let (message, fix) = wording::risky_exposed(group, &spec);
                findings.push(listener_finding(
                    Kind::RiskyExposed,
                    key,
                    group,
                    message,
                    fix,
                ));
            }
            continue;
        }
        if kept_closed(&key) {
            continue;
        }
        // A Docker proxy whose DNAT the scan did not see (an older autofw
        // applied, or the nat table could not be read): Docker may forward it.
        let (message, fix) = if group.docker_proxy && group.forwarded_to.is_empty() {
            wording::docker_published(group, &spec)
        } else if group.risky {
            wording::risky_unopened(group, &spec)
        } else {
            wording::unopened(group, &spec)
        };
        findings.push(listener_finding(
            Kind::UnopenedListener,
            key,
            group,
            message,
            fix,
        ));
    }

    for (&key, open) in &opened {
        let service = open.service.as_str();
        if now.contains_key(&key) {
            continue;
        }
        // Opened ahead of its service (`--allow` while nothing listened):
        // as it was when applied, so not drift.
        if !then.contains_key(&key) {
            continue;
        }
        let (port, proto) = key;
        let spec = format!("{port}/{proto}");
        let on_loopback = scan
            .listeners
            .iter()
            .any(|l| l.proto == proto && l.port == port);
        let (message, fix) = wording::stale_hole(&spec, service, on_loopback);
        let mut finding = Finding::new(Kind::StaleHole, message, fix);
        finding.proto = Some(proto);
        finding.port = Some(port);
        finding.service = Some(service.to_string());
        findings.push(finding);
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::backend::compare::FamilyRules;
    use crate::model::Listener;
    use crate::record::{AtApply, ClosedPort, OpenedPort};

    fn listener(proto: Proto, address: &str, port: u16, service: &str, process: &str) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        let exposure = crate::scan::core::classify(address);
        Listener {
            service: service.to_string(),
            process: process.to_string(),
            pids: vec![100 + port as u32],
            ..Listener::bare(proto, address, port, exposure)
        }
    }

    fn risky(mut l: Listener) -> Listener {
        l.risky = true;
        l
    }

    fn scan(listeners: Vec<Listener>) -> Scan {
        Scan {
            listeners,
            ..Scan::default()
        }
    }

    /// The host the rules were applied on: ssh and http public, mysql on
    /// loopback, ftp blocked, 8443 opened ahead.
    fn applied_host() -> Scan {
        scan(vec![
            listener(Proto::Tcp, "0.0.0.0", 22, "ssh", "sshd"),
            listener(Proto::Tcp, "::", 22, "ssh", "sshd"),
            listener(Proto::Tcp, "0.0.0.0", 80, "http", "nginx"),
            listener(Proto::Tcp, "0.0.0.0", 21, "ftp", "vsftpd"),
            listener(Proto::Tcp, "127.0.0.1", 3306, "mysql", "mysqld"),
        ])
    }

    fn opened(ports: &[(u16, &str)]) -> Vec<OpenedPort> {
        ports
            .iter()
            .map(|&(port, service)| OpenedPort {
                proto: Proto::Tcp,
                port,
                service: service.to_string(),
                interfaces: Vec::new(),
            })
            .collect()
    }

    fn record() -> AppliedRecord {
        let then = applied_host();
        let closed = vec![
            ClosedPort {
                proto: Proto::Tcp,
                port: 21,
                service: "ftp".into(),
                reason: "kept closed by --block ftp".into(),
            },
            ClosedPort {
                proto: Proto::Tcp,
                port: 3306,
                service: "mysql".into(),
                reason: "listens on loopback only".into(),
            },
        ];
        let listening = crate::record::listening_ports(&then);
        AppliedRecord {
            applied_at: 1_700_000_000,
            rules: crate::record::Rules::Nft {
                text: String::new(),
            },
            opened: opened(&[(22, "ssh"), (80, "http"), (8443, "https-alt")]),
            closed,
            listening,
            blocklist: None,
            openings: Vec::new(),
            given: Default::default(),
            life: crate::record::Life::Confirmed(crate::record::Confirmed {
                at: 1_700_000_030,
                persisted: false,
            }),
        }
    }

    const TABLE: &str = "table inet autofw {\n\tchain input {\n\t\ttcp dport 22 accept\n\t}\n}\n";

    fn live_as_applied() -> LiveRules {
        LiveRules::Nft {
            table: Some(TABLE.into()),
            expected: Some(TABLE.into()),
        }
    }

    /// The first finding's message says `text` (the message shown when not).
    fn assert_first_says(a: &Assessment, text: &str) {
        let message = &a.findings[0].message;
        assert!(message.contains(text), "{message}");
    }

    fn kinds(a: &Assessment) -> Vec<(Kind, Option<u16>)> {
        a.findings.iter().map(|f| (f.kind, f.port)).collect()
    }

    #[test]
    fn a_host_as_applied_has_no_drift() {
        let a = assess(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            None,
        );
        assert_eq!(a.rules, Some(RulesState::Live));
        assert_eq!(a.findings, vec![]);
    }

    /// dnsmasq's DHCP was bound to virbr0 when applied, so 67/udp is open
    /// on virbr0 only. Bound there still: no drift. Bound to another bridge,
    /// or to every interface: the rules do not take it there, said so.
    #[test]
    fn a_listener_moved_off_the_device_its_port_was_opened_on_is_drift() {
        let dhcp = |device: Option<&str>| {
            let mut l = listener(Proto::Udp, "0.0.0.0", 67, "dhcp", "dnsmasq");
            l.device = device.map(str::to_string);
            l.interface = l.device.clone();
            if l.device.is_some() {
                l.exposure = crate::model::Exposure::Private;
            }
            l
        };
        let mut then = applied_host();
        then.listeners.push(dhcp(Some("virbr0")));
        let proposal = crate::propose::build(&then, &crate::propose::Choices::default());
        let mut rec = record();
        rec.opened = crate::record::opened_ports(proposal.ruleset());
        rec.listening = crate::record::listening_ports(&then);
        let dhcp_opened = rec.opened.iter().find(|o| o.port == 67).unwrap();
        assert_eq!(dhcp_opened.interfaces, ["virbr0"]);
        let live = live_as_applied();
        let a = assess(&then, Some(&rec), Some(&live), None);
        assert_eq!(kinds(&a), vec![], "{:?}", a.findings);
        for (device, place) in [(Some("virbr1"), "0.0.0.0%virbr1"), (None, "0.0.0.0")] {
            let mut now = applied_host();
            now.listeners.push(dhcp(device));
            let a = assess(&now, Some(&rec), Some(&live), None);
            assert_eq!(kinds(&a), vec![(Kind::UnopenedListener, Some(67))]);
            let message = &a.findings[0].message;
            assert!(
                message.contains(&format!("listens on {place} port 67/udp"))
                    && message.contains("open 67/udp only on virbr0"),
                "{message}"
            );
        }
        // A record from before autofw kept interfaces: as it was.
        rec.opened.iter_mut().for_each(|o| o.interfaces.clear());
        let mut now = applied_host();
        now.listeners.push(dhcp(Some("virbr1")));
        assert_eq!(kinds(&assess(&now, Some(&rec), Some(&live), None)), vec![]);
    }

    #[test]
    fn nothing_applied_is_said_plainly() {
        let a = assess(&applied_host(), None, None, None);
        assert_eq!(a.rules, None);
        assert_eq!(kinds(&a), vec![(Kind::NothingApplied, None)]);
        assert_first_says(&a, "has not applied any rules");
    }

    #[test]
    fn a_client_socket_is_not_drift() {
        let mut now = applied_host();
        let mut client = listener(Proto::Udp, "0.0.0.0", 45969, "unknown", "ntpdate");
        client.client_socket = true;
        now.listeners.push(client);
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(a.findings, vec![]);
    }

    #[test]
    fn a_new_public_listener_is_unopened() {
        let mut now = applied_host();
        now.listeners
            .push(listener(Proto::Tcp, "0.0.0.0", 8080, "unknown", "stray"));
        now.listeners
            .push(listener(Proto::Tcp, "::", 8080, "unknown", "stray"));
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::UnopenedListener, Some(8080))]);
        let f = &a.findings[0];
        assert!(
            f.message.contains(
                "an unnamed service (stray, pid 8180) listens on 0.0.0.0, :: port 8080/tcp"
            ),
            "{}",
            f.message
        );
        assert!(f.message.contains("silently does not work"));
        assert!(
            f.fix
                .contains("`autofw allow 8080/tcp`, then `autofw apply --confirm`"),
            "{}",
            f.fix
        );
        assert_eq!(f.addresses.len(), 2);
    }

    #[test]
    fn a_loopback_listener_that_now_faces_the_network_is_unopened() {
        let mut now = applied_host();
        now.listeners
            .push(listener(Proto::Tcp, "0.0.0.0", 3306, "mysql", "mysqld"));
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::UnopenedListener, Some(3306))]);
        // Not risky in this scan: the plain message. A risky one says so.
        now.listeners.pop();
        now.listeners.push(risky(listener(
            Proto::Tcp,
            "0.0.0.0",
            3306,
            "mysql",
            "mysqld",
        )));
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::UnopenedListener, Some(3306))]);
        assert_first_says(&a, "almost always an accident");
        assert!(
            !a.findings[0].fix.contains("--allow"),
            "never advise opening a database"
        );
    }

    #[test]
    fn a_listener_kept_closed_on_purpose_is_not_drift() {
        // ftp still listens, still blocked: as applied.
        let a = assess(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            None,
        );
        assert!(a.findings.iter().all(|f| f.port != Some(21)));
    }

    #[test]
    fn docker_published_ports_are_said_to_bypass_input() {
        let mut now = applied_host();
        now.listeners.push(listener(
            Proto::Tcp,
            "0.0.0.0",
            9000,
            "unknown",
            "docker-proxy",
        ));
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::UnopenedListener, Some(9000))]);
        assert_first_says(&a, "published by Docker");
    }

    #[test]
    fn an_opened_port_nothing_listens_on_is_a_stale_hole() {
        let mut now = applied_host();
        now.listeners.retain(|l| l.port != 80);
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::StaleHole, Some(80))]);
        assert!(
            a.findings[0]
                .message
                .contains("(http when the rules were applied)")
        );
        // Rebound to loopback only: still a hole, and said so.
        now.listeners
            .push(listener(Proto::Tcp, "127.0.0.1", 80, "http", "nginx"));
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::StaleHole, Some(80))]);
        assert_first_says(&a, "only a loopback listener");
    }

    #[test]
    fn a_port_opened_ahead_of_its_service_is_not_a_stale_hole() {
        // 8443 was opened with --allow while nothing listened: as applied.
        let a = assess(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            None,
        );
        assert!(a.findings.iter().all(|f| f.port != Some(8443)));
    }

    #[test]
    fn a_risky_listener_on_an_opened_port_is_exposed() {
        let mut now = applied_host();
        now.listeners.push(risky(listener(
            Proto::Tcp,
            "0.0.0.0",
            8443,
            "elasticsearch",
            "java",
        )));
        let a = assess(&now, Some(&record()), Some(&live_as_applied()), None);
        assert_eq!(kinds(&a), vec![(Kind::RiskyExposed, Some(8443))]);
        assert!(
            a.findings[0]
                .message
                .contains("elasticsearch (java, pid 8543)")
        );
        assert!(a.findings[0].fix.contains("--block 8443/tcp"));
    }

    #[test]
    fn a_risky_service_opened_on_purpose_is_not_reported_again() {
        let mut then = applied_host();
        then.listeners.push(risky(listener(
            Proto::Tcp,
            "0.0.0.0",
            6379,
            "redis",
            "redis-server",
        )));
        let mut rec = record();
        rec.opened.push(OpenedPort {
            proto: Proto::Tcp,
            port: 6379,
            service: "redis".into(),
            interfaces: Vec::new(),
        });
        rec.listening = crate::record::listening_ports(&then);
        let a = assess(&then, Some(&rec), Some(&live_as_applied()), None);
        assert_eq!(a.findings, vec![]);
    }

    #[test]
    fn missing_rules_are_not_live_and_listeners_are_not_compared() {
        let mut now = applied_host();
        now.listeners.retain(|l| l.port != 80);
        let live = LiveRules::Nft {
            table: None,
            expected: Some(TABLE.into()),
        };
        let a = assess(&now, Some(&record()), Some(&live), None);
        assert_eq!(a.rules, Some(RulesState::Missing));
        assert_eq!(kinds(&a), vec![(Kind::NotLive, None)]);
        assert_first_says(&a, "table inet autofw is gone");
        assert!(a.findings[0].fix.contains("--persist"));
        let mut persisted = record();
        persisted.life = crate::record::Life::Confirmed(crate::record::Confirmed {
            at: 1_700_000_030,
            persisted: true,
        });
        let a = assess(&now, Some(&persisted), Some(&live), None);
        assert!(a.findings[0].fix.contains("autofw restore"));
    }

    /// The repro: apply; confirm; apply; rollback. The first
    /// apply's rules are loaded exactly: named, not "not-live".
    #[test]
    fn after_a_rollback_the_rules_it_restored_are_named_not_missing() {
        let first = record();
        let mut second = record();
        second.applied_at = 1_700_000_100;
        second.life = crate::record::Life::RolledBack(crate::record::RolledBack {
            at: 1_700_000_160,
            why: crate::record::Why::RollbackCommand,
            persisted: false,
        });
        let live = live_as_applied();
        let around = Around {
            restored: Some((&first, &live)),
            ..Around::default()
        };
        let a = assess_host(&applied_host(), Some(&second), None, None, &around);
        assert_eq!(a.findings, vec![]);
        assert_eq!(
            a.live,
            Live::Restored {
                applied_at: 1_700_000_000,
                rolled_back_at: 1_700_000_160,
                of_apply: 1_700_000_100,
            }
        );
        assert_eq!(
            wording::live(&a.live),
            "the rules of the apply at 2023-11-14T22:13:20Z, restored by the rollback at \
             2023-11-14T22:16:00Z of the apply at 2023-11-14T22:15:00Z"
        );
        // Restored rules that are not loaded any more: not-live, as before.
        let gone = LiveRules::Nft {
            table: None,
            expected: Some(TABLE.into()),
        };
        let around = Around {
            restored: Some((&first, &gone)),
            ..Around::default()
        };
        let a = assess_host(&applied_host(), Some(&second), None, None, &around);
        assert_eq!(kinds(&a), vec![(Kind::NotLive, None)]);
        assert_eq!(a.live, Live::NoRules);
    }

    #[test]
    fn autofw_rules_with_no_record_are_unrecorded() {
        let around = Around {
            unrecorded_rules: true,
            ..Around::default()
        };
        let a = assess_host(&applied_host(), None, None, None, &around);
        assert_eq!(a.live, Live::Unrecorded);
        assert_eq!(kinds(&a), vec![(Kind::NothingApplied, None)]);
        assert!(wording::live(&a.live).contains("not as any apply recorded them"));
    }

    #[test]
    fn a_disabled_host_and_the_other_backends_rules_are_said() {
        let around = Around {
            disabled_at: Some(1_700_000_200),
            ..Around::default()
        };
        let a = assess_host(&applied_host(), Some(&record()), None, None, &around);
        assert_eq!(kinds(&a), vec![(Kind::Disabled, None)]);
        assert_eq!(a.live, Live::Disabled { at: 1_700_000_200 });
        assert!(a.findings[0].fix.contains("autofw apply --confirm"));
        let around = Around {
            other_backend: Some("autofw's iptables rules (the AUTOFW-* chains and jumps)"),
            ..Around::default()
        };
        let a = assess_host(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            None,
            &around,
        );
        assert_eq!(kinds(&a), vec![(Kind::OtherBackend, None)]);
        assert_first_says(&a, "the AUTOFW-* chains and jumps");
    }

    #[test]
    fn a_rolled_back_apply_is_not_live() {
        let mut rec = record();
        rec.life = crate::record::Life::RolledBack(crate::record::RolledBack {
            at: 1_700_000_060,
            why: crate::record::Why::Expired,
            persisted: false,
        });
        let a = assess(&applied_host(), Some(&rec), None, None);
        assert_eq!(a.rules, Some(RulesState::RolledBack { at: 1_700_000_060 }));
        assert_eq!(kinds(&a), vec![(Kind::NotLive, None)]);
        assert_first_says(&a, "rolled back at 2023-11-14T22:14:20Z");
    }

    #[test]
    fn a_hand_edit_is_changed_with_a_diff_and_listeners_still_compared() {
        let edited = TABLE.replace("\t}\n}", "\t\ttcp dport 9999 accept\n\t}\n}");
        let live = LiveRules::Nft {
            table: Some(edited),
            expected: Some(TABLE.into()),
        };
        let mut now = applied_host();
        now.listeners.retain(|l| l.port != 80);
        let a = assess(&now, Some(&record()), Some(&live), None);
        assert!(matches!(a.rules, Some(RulesState::Changed { .. })));
        assert_eq!(
            kinds(&a),
            vec![(Kind::Changed, None), (Kind::StaleHole, Some(80))]
        );
        let diff = a.findings[0].diff.as_deref().unwrap();
        assert!(diff.contains("+\t\ttcp dport 9999 accept"), "{diff}");
        assert_first_says(&a, "(1 line of the listing differs)");
    }

    #[test]
    fn unverifiable_rules_are_not_drift() {
        let live = LiveRules::Nft {
            table: Some(TABLE.into()),
            expected: None,
        };
        let a = assess(&applied_host(), Some(&record()), Some(&live), None);
        assert!(matches!(a.rules, Some(RulesState::Unverified { .. })));
        assert_eq!(a.findings, vec![]);
    }

    #[test]
    fn a_terse_listing_that_differs_is_changed() {
        let applied = "table inet autofw {\n\tset meter_tcp_22_v4 {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n\t}\n\n\tchain input {\n\t\ttcp dport 22 accept comment \"ssh\"\n\t}\n}\n";
        let live = LiveRules::Nft {
            table: Some(applied.into()),
            expected: Some(applied.into()),
        };
        assert_eq!(compare_rules(&live), RulesState::Live);
        let opened = applied.replace("dport 22", "dport { 22, 23 }");
        let live = LiveRules::Nft {
            table: Some(opened),
            expected: Some(applied.into()),
        };
        let RulesState::Changed { diff } = compare_rules(&live) else {
            panic!("a changed rule is not drift");
        };
        assert!(diff.contains("+\t\ttcp dport { 22, 23 } accept"), "{diff}");
    }

    const SAVE_V4: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 07:50:50 2026\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:AUTOFW-INPUT - [0:0]\n:f2b-sshd - [0:0]\n-A INPUT -j AUTOFW-INPUT\n-A AUTOFW-INPUT -p tcp -m tcp --dport 22 -m comment --comment ssh -j ACCEPT\n-A f2b-sshd -j RETURN\nCOMMIT\n";
    const APPLIED_V4: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:AUTOFW-INPUT - [0:0]\n-A INPUT -j AUTOFW-INPUT\n-A AUTOFW-INPUT -p tcp --dport 22 -m comment --comment \"ssh\" -j ACCEPT\nCOMMIT\n";

    fn family(name: &str, live: &str) -> FamilyRules {
        FamilyRules {
            name: name.into(),
            live: live.into(),
            applied: APPLIED_V4.into(),
            expected: Some(
                SAVE_V4
                    .replace(":f2b-sshd - [0:0]\n", "")
                    .replace("-A f2b-sshd -j RETURN\n", ""),
            ),
        }
    }

    #[test]
    fn iptables_rules_compare_autofws_part_only() {
        // Foreign chains (fail2ban) and a foreign policy do not count.
        let live = LiveRules::Iptables(vec![
            family("iptables", SAVE_V4),
            family("ip6tables", SAVE_V4),
        ]);
        assert_eq!(compare_rules(&live), RulesState::Live);
        // A rule added to AUTOFW-INPUT does.
        let edited = SAVE_V4.replace(
            "-A f2b-sshd",
            "-A AUTOFW-INPUT -p tcp -m tcp --dport 9999 -j ACCEPT\n-A f2b-sshd",
        );
        let live = LiveRules::Iptables(vec![
            family("iptables", &edited),
            family("ip6tables", SAVE_V4),
        ]);
        let RulesState::Changed { diff } = compare_rules(&live) else {
            panic!("not changed")
        };
        assert!(
            diff.contains("+-A AUTOFW-INPUT -p tcp -m tcp --dport 9999 -j ACCEPT"),
            "{diff}"
        );
        // A policy set back to ACCEPT does.
        let open = SAVE_V4.replace(":INPUT DROP", ":INPUT ACCEPT");
        let live = LiveRules::Iptables(vec![
            family("iptables", &open),
            family("ip6tables", SAVE_V4),
        ]);
        assert!(matches!(compare_rules(&live), RulesState::Changed { .. }));
        // Both families flushed: missing.
        let gone =
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
        let live = LiveRules::Iptables(vec![family("iptables", gone), family("ip6tables", gone)]);
        assert_eq!(compare_rules(&live), RulesState::Missing);
        // One family flushed: changed.
        let live =
            LiveRules::Iptables(vec![family("iptables", SAVE_V4), family("ip6tables", gone)]);
        assert!(matches!(compare_rules(&live), RulesState::Changed { .. }));
    }

    #[test]
    fn an_accept_before_autofws_jump_is_drift() {
        let mut record = record();
        record.rules = crate::record::Rules::example(crate::record::Backend::Iptables);
        let early = SAVE_V4.replace(
            "-A INPUT -j AUTOFW-INPUT",
            "-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT\n-A INPUT -j AUTOFW-INPUT",
        );
        let live = LiveRules::Iptables(vec![
            family("iptables", &early),
            family("ip6tables", SAVE_V4),
        ]);
        let a = assess(&applied_host(), Some(&record), Some(&live), None);
        assert_eq!(a.rules, Some(RulesState::Live));
        assert_eq!(kinds(&a), [(Kind::AcceptBeforeAutofw, None)]);
        let f = &a.findings[0];
        assert!(
            f.message.starts_with(
                "iptables INPUT rule 1 (`-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT`) accepts"
            ),
            "{}",
            f.message
        );
        assert!(f.fix.contains("iptables -D INPUT 1"), "{}", f.fix);
        // The same accept after the jump decides nothing autofw decided.
        let late = SAVE_V4.replace(
            "-A INPUT -j AUTOFW-INPUT",
            "-A INPUT -j AUTOFW-INPUT\n-A INPUT -p tcp -m tcp --dport 3306 -j ACCEPT",
        );
        let live = LiveRules::Iptables(vec![
            family("iptables", &late),
            family("ip6tables", SAVE_V4),
        ]);
        assert!(
            assess(&applied_host(), Some(&record), Some(&live), None)
                .findings
                .is_empty()
        );
    }

    #[test]
    fn a_window_nobody_guards_is_reported() {
        let mut window = WindowState {
            deadline: 1_700_000_100,
            seconds_left: 0,
            seconds_overdue: 0,
            same_boot: true,
            watchdog_pid: 4242,
            watchdog_alive: false,
            watchdog_says: None,
            apply_pid: 4241,
            apply_alive: false,
        };
        let a = assess(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            Some(&window),
        );
        assert_eq!(kinds(&a), vec![(Kind::UnguardedWindow, None)]);
        assert_first_says(&a, "watchdog (pid 4242)");
        window.watchdog_alive = true;
        let a = assess(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            Some(&window),
        );
        assert_eq!(a.findings, vec![]);

        // A window from before a restart can never be confirmed, whatever
        // seems to run.
        window.same_boot = false;
        let a = assess(&applied_host(), Some(&record()), None, Some(&window));
        assert_eq!(kinds(&a), vec![(Kind::UnguardedWindow, None)]);
        assert!(
            a.findings[0].message.contains("restarted"),
            "{:?}",
            a.findings
        );

        // Past the deadline with a live watchdog that has not rolled back.
        window.same_boot = true;
        window.seconds_overdue = 30;
        window.watchdog_says = Some("Read-only file system".to_string());
        let a = assess(
            &applied_host(),
            Some(&record()),
            Some(&live_as_applied()),
            Some(&window),
        );
        assert_eq!(kinds(&a), vec![(Kind::RollbackOverdue, None)]);
        assert_first_says(&a, "Read-only file system");
    }

    #[test]
    fn at_apply_records_closed_and_listening_ports() {
        let then = applied_host();
        let choices = crate::propose::Choices::merge(
            &["8443/tcp".into()],
            &["ftp".into()],
            Default::default(),
            crate::services::ServiceTable::builtin(),
        )
        .unwrap();
        let proposal = crate::propose::build(&then, &choices);
        let at = AtApply::of(&then, proposal.ruleset());
        let closed: Vec<(u16, &str)> = at
            .closed
            .iter()
            .map(|c| (c.port, c.service.as_str()))
            .collect();
        assert_eq!(closed, vec![(21, "ftp"), (3306, "mysql")]);
        let listening: Vec<u16> = at.listening.iter().map(|p| p.port).collect();
        assert_eq!(listening, vec![21, 22, 80]);
        // Recorded as apply records it, the same host shows no drift.
        let rec = AppliedRecord {
            opened: crate::record::opened_ports(proposal.ruleset()),
            closed: at.closed,
            listening: at.listening,
            ..record()
        };
        let a = assess(&then, Some(&rec), Some(&live_as_applied()), None);
        assert_eq!(a.findings, vec![]);
    }
}
