//! Deciding the ruleset: scan + choices → [`Ruleset`]. Pure and deterministic:
//! listeners are grouped and sorted by (port, proto), so the same inputs give
//! the same rules in the same order whatever order scan listed them in.
//!
//! Each step is one function: decide the listening ports, open the allowed
//! ports nothing listens on, note the loopback-only listeners, warn about
//! choices that matched nothing, then turn the openings into rules
//! ([`rules`](super::rules)).

use super::choices::{Choices, ServicePolicy};
use super::group::PortGroup;
use super::rules::{Opening, base_rules, forward_for, log_and_drop, service_rules};
use super::ruleset::*;
use super::spec::{Given, Spec};
use crate::model::{Exposure, Listener, Proto, Scan};
use std::collections::{BTreeMap, BTreeSet};

/// What the decisions so far have opened, left closed and have to say.
#[derive(Default)]
struct Decisions {
    openings: Vec<Opening>,
    closed: Vec<Closed>,
    warnings: Vec<String>,
}

/// The flag that opens a closed listener: by name where it has one.
fn open_flag(service: &str, proto: Proto, port: u16) -> String {
    if service == "unknown" {
        format!("--allow {port}/{proto}")
    } else {
        format!("--allow {service}")
    }
}

/// Build the ruleset for `scan` under `choices`.
pub(crate) fn build_ruleset(scan: &Scan, choices: &Choices) -> Ruleset {
    // Listeners the world can reach, one group per (proto, port).
    let specs = Specs {
        allow: SpecIndex::new(&choices.allow, choices),
        block: SpecIndex::new(&choices.block, choices),
    };
    let groups = listening_groups(scan, &specs);
    let mut decided = Decisions::default();
    let forward = forward_for(scan);
    // On a host that routes, the published-ports guard governs forwarded
    // ports; elsewhere FORWARD drops them all.
    let guarded = matches!(forward, Forward::LeaveAlone { .. });
    decide_listening(&groups, choices, &specs, guarded, &mut decided);
    open_allowed_silent(scan, &groups, choices, &specs, &mut decided);
    decided.openings.sort_by_key(|o| (o.port, o.proto));
    note_loopback_only(scan, &groups, &mut decided);
    decided.closed.sort_by_key(|c| (c.port, c.proto));
    warn_unused_choices(choices, &mut decided);

    let blocklist = choices.blocklist();
    let mut input = base_rules(&blocklist);
    for opening in &decided.openings {
        input.extend(service_rules(opening, policy_for(opening, choices)));
    }
    input.extend(log_and_drop());
    Ruleset {
        published: super::published::guard_for(&forward, &input),
        input,
        forward,
        blocklist,
        closed: decided.closed,
        warnings: decided.warnings,
    }
}

/// Listeners the rules are decided for: one per (port, proto) and, where
/// the listeners are bound to specific addresses, per address.
type Groups = BTreeMap<(u16, Proto, Option<Bound>), PortGroup>;

/// The services beyond loopback, plus the client sockets whose port the
/// operator allows (it is then the listener they meant), grouped by where
/// they listen: a port with a wildcard listener is one group (every address
/// takes it), otherwise each bound address is its own group, so its rule
/// can match that address ([`bound_of`]).
fn listening_groups(scan: &Scan, specs: &Specs<'_>) -> Groups {
    let wanted: Vec<&Listener> = scan
        .listeners
        .iter()
        .filter(|l| l.exposure != Exposure::Loopback)
        .filter(|l| !l.client_socket || specs.allow.first((l.proto, l.port, &l.service)).is_some())
        .collect();
    // Ports with a wildcard listener, looked up once per listener: a scan
    // per listener was quadratic (issue 21). A wildcard bound to a device
    // is not everywhere: it is its device's.
    let wildcard: BTreeSet<(Proto, u16)> = wanted
        .iter()
        .filter(|l| l.address.to_canonical().is_unspecified() && l.device.is_none())
        .map(|l| (l.proto, l.port))
        .collect();
    let mut members: BTreeMap<(u16, Proto, Option<Bound>), Vec<&Listener>> = BTreeMap::new();
    for &l in &wanted {
        let bound = if wildcard.contains(&(l.proto, l.port)) {
            None
        } else {
            Some(bound_of(l))
        };
        members.entry((l.port, l.proto, bound)).or_default().push(l);
    }
    members
        .into_iter()
        .map(|(key, listeners)| (key, PortGroup::of(listeners, scan.uid_min)))
        .collect()
}

/// What a listener bound to one address is matched by: that destination,
/// and for a private or link-local address also the interface holding it
/// (when the scan recorded it). A public address is reached from anywhere,
/// so its interface adds nothing. A listener bound to a device takes only
/// what arrives on it, whatever its exposure: matched by that device, and
/// by its address unless that is a wildcard (`0.0.0.0%virbr0:67`, then
/// both families, as any wildcard's rule).
fn bound_of(l: &Listener) -> Bound {
    let address = l.address.to_canonical();
    if let Some(device) = &l.device {
        return Bound {
            address: (!address.is_unspecified()).then_some(address),
            interface: Some(device.clone()),
        };
    }
    let interface = match l.exposure {
        Exposure::Private | Exposure::LinkLocal => l.interface.clone(),
        Exposure::Public | Exposure::Loopback => None,
    };
    Bound {
        address: Some(address),
        interface,
    }
}

/// `--allow` or `--block` specs, looked up by port and by name: the first
/// that names (proto, port, service), as [`Spec::matches`] decides, without
/// trying each spec in turn. A policy may list every port, and a scan
/// many listeners; comparing each with each was quadratic (issue 21: 65,535
/// allowed ports took 5 s in release).
struct SpecIndex<'a> {
    specs: &'a [Given<Spec>],
    /// (proto, port) → the first spec naming it: a port spec (a bare port
    /// names both protocols), or a name whose well-known ports include it.
    by_port: BTreeMap<(Proto, u16), usize>,
    /// A service name → the first spec naming it.
    by_name: BTreeMap<&'a str, usize>,
}

impl<'a> SpecIndex<'a> {
    fn new(specs: &'a [Given<Spec>], choices: &Choices) -> Self {
        let mut by_port = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        for (i, spec) in specs.iter().enumerate() {
            match &spec.value {
                Spec::Name(name) => {
                    by_name.entry(name.as_str()).or_insert(i);
                    for &key in choices.table.ports_of(name).unwrap_or_default() {
                        by_port.entry(key).or_insert(i);
                    }
                }
                Spec::Port { port, proto } => {
                    for p in proto.map_or(vec![Proto::Tcp, Proto::Udp], |p| vec![p]) {
                        by_port.entry((p, *port)).or_insert(i);
                    }
                }
            }
        }
        SpecIndex {
            specs,
            by_port,
            by_name,
        }
    }

    /// The first spec that names (proto, port, service).
    fn first(&self, (proto, port, service): (Proto, u16, &str)) -> Option<&'a Given<Spec>> {
        let by_port = self.by_port.get(&(proto, port));
        let by_name = self.by_name.get(service);
        let first = match (by_port, by_name) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        first.map(|&i| &self.specs[i])
    }
}

/// The allow and block specs, indexed once per ruleset.
struct Specs<'a> {
    allow: SpecIndex<'a>,
    block: SpecIndex<'a>,
}

/// Each listening (proto, port): kept closed by `--block`, kept closed as
/// risky, or opened.
fn decide_listening(
    groups: &Groups,
    choices: &Choices,
    specs: &Specs<'_>,
    guarded: bool,
    decided: &mut Decisions,
) {
    for ((port, proto, bound), group) in groups {
        let (port, proto) = (*port, *proto);
        // A risky service bound to a private or link-local address is the
        // usual app-server layout (a database on the private network): it
        // gets the bound rule, and is still said to be risky.
        let private_bind = bound.is_some() && group.exposure != Some(Exposure::Public);
        let service = group.service().to_string();
        let owner = group.owner();
        let key = (proto, port, service.as_str());
        // A Docker proxy stands for a DNAT: governed by the published-ports
        // guard where there is one.
        let unguarded_docker = group.docker_proxy && !guarded;
        let docker_note = if unguarded_docker {
            decided.warnings.push(format!(
                "{port}/{proto} is published by Docker ({owner}): Docker forwards it with its own \
                 DNAT rules, which bypass INPUT, so this ruleset can neither open nor close it; \
                 restrict it in Docker's DOCKER-USER chain, or publish it on 127.0.0.1 only"
            ));
            " (Docker still forwards it: see the warning)"
        } else {
            ""
        };
        if let Some(block) = specs.block.first(key) {
            // Block wins; both given is likely a slip, so it is said.
            if let Some(allow) = specs.allow.first(key) {
                let warning = format!(
                    "{port}/{proto} ({service}) is both allowed ({}) and blocked ({}): kept closed",
                    allow.place, block.place
                );
                if !decided.warnings.contains(&warning) {
                    decided.warnings.push(warning);
                }
            }
            decided.closed.push(Closed {
                proto,
                port,
                service: service.clone(),
                owner,
                reason: format!("kept closed by {}{docker_note}", block.place),
                to_open: None,
            });
            continue;
        }
        // A `[service.X] sources` section is an explicit, restricted opening.
        let explicit = specs.allow.first(key).map(|a| a.place.clone()).or_else(|| {
            choices
                .services
                .iter()
                .find(|s| {
                    s.sources.is_some() && s.spec.matches(proto, port, &service, &choices.table)
                })
                .map(|s| s.place.clone())
        });
        if let Some(distrust) = group.distrust.as_ref().filter(|_| explicit.is_none()) {
            decided.closed.push(Closed {
                proto,
                port,
                service: service.clone(),
                owner,
                reason: if group.risky {
                    format!("{distrust}; and {service} should not face the network anyway")
                } else {
                    distrust.clone()
                },
                // By port: a name taken from an untrusted listener may not
                // be what it serves.
                to_open: Some(format!("--allow {port}/{proto}")),
            });
            continue;
        }
        if group.risky && explicit.is_none() && !private_bind {
            decided.closed.push(Closed {
                proto,
                port,
                service: service.clone(),
                owner,
                reason: format!(
                    "{service} listens beyond loopback, which for a database, cache or admin \
                     service is almost always an accident{docker_note}"
                ),
                to_open: Some(open_flag(&service, proto, port)),
            });
            continue;
        }
        let exposure = group.exposure.unwrap_or(Exposure::Public);
        let mut why = if service == "unknown" {
            format!("{port}/{proto}, {}", group.describe())
        } else {
            group.describe()
        };
        if unguarded_docker {
            why.push_str(", published by Docker (see the warning)");
        }
        if exposure != Exposure::Public {
            // A wildcard bound to a device is as exposed as its link.
            let what = match bound {
                Some(Bound { address: None, .. }) => "link",
                _ => "address",
            };
            why.push_str(&format!(", {exposure} {what}"));
        }
        if let Some(place) = explicit.as_ref().filter(|_| group.risky) {
            why.push_str(&format!(", risky but opened by {place}"));
        } else if group.risky {
            why.push_str(&format!(
                ", risky: {service} should not face the network, and is opened only on this private address"
            ));
        }
        if let Some(b) = bound {
            match (&b.address, &b.interface) {
                (Some(address), Some(interface)) => why.push_str(&format!(
                    "; bound to {address} on {interface}: only packets for that address arriving on {interface}"
                )),
                (Some(address), None) => why.push_str(&format!(
                    "; bound to {address}: only packets for that address"
                )),
                (None, Some(interface)) => why.push_str(&format!(
                    "; bound to device {interface}: only packets arriving on {interface}"
                )),
                (None, None) => {}
            }
        }
        if let (Some(distrust), Some(place)) = (&group.distrust, &explicit) {
            why.push_str(&format!(", {distrust}, but opened by {place}"));
        }
        decided.openings.push(Opening {
            proto,
            port,
            service,
            why,
            bound: bound.clone(),
        });
    }
}

/// Allowed specs that no listener matched open the spec's own ports.
fn open_allowed_silent(
    scan: &Scan,
    groups: &Groups,
    choices: &Choices,
    specs: &Specs<'_>,
    decided: &mut Decisions,
) {
    let table = &choices.table;
    // Looked up, not searched, for each allowed spec (issue 21): the ports
    // that listen and their services, the ports opened so far, the ports
    // anything (loopback too) listens on.
    let listening_ports: BTreeSet<(Proto, u16)> = groups
        .keys()
        .map(|&(port, proto, _)| (proto, port))
        .collect();
    let listening_services: BTreeSet<&str> = groups.values().map(|g| g.service()).collect();
    let mut opened: BTreeSet<(Proto, u16)> =
        decided.openings.iter().map(|o| (o.proto, o.port)).collect();
    let anywhere: BTreeSet<(Proto, u16)> =
        scan.listeners.iter().map(|l| (l.proto, l.port)).collect();
    for allow in &choices.allow {
        // As `Spec::matches` against every group: a port spec by port (a
        // bare port either protocol), a name by a group's service or by one
        // of the name's well-known ports.
        let listening = match &allow.value {
            Spec::Name(name) => {
                listening_services.contains(name.as_str())
                    || table
                        .ports_of(name)
                        .unwrap_or_default()
                        .iter()
                        .any(|key| listening_ports.contains(key))
            }
            Spec::Port { port, proto } => proto
                .map_or(vec![Proto::Tcp, Proto::Udp], |p| vec![p])
                .into_iter()
                .any(|p| listening_ports.contains(&(p, *port))),
        };
        if listening {
            continue;
        }
        for (proto, port) in allow.value.default_ports(table) {
            if opened.contains(&(proto, port)) {
                continue;
            }
            let service = match &allow.value {
                Spec::Name(name) => name.clone(),
                Spec::Port { .. } => table
                    .name_of_port(proto, port)
                    .unwrap_or("unknown")
                    .to_string(),
            };
            if let Some(block) = specs.block.first((proto, port, &service)) {
                decided.warnings.push(format!(
                    "{port}/{proto} is both allowed ({}) and blocked ({}): kept closed",
                    allow.place, block.place
                ));
                continue;
            }
            let on_loopback = anywhere.contains(&(proto, port));
            let why = if on_loopback {
                format!(
                    "allowed by {}; it listens on loopback only, so nothing answers from outside yet",
                    allow.place
                )
            } else {
                format!("allowed by {}; nothing listens there yet", allow.place)
            };
            opened.insert((proto, port));
            decided.openings.push(Opening {
                proto,
                port,
                service,
                why,
                bound: None,
            });
        }
    }
}

/// Loopback-only listeners get no rule; say so, so the review is complete.
fn note_loopback_only(scan: &Scan, groups: &Groups, decided: &mut Decisions) {
    // Every listener of each (proto, port), and the ports already decided:
    // looked up, not searched, for each listener (issue 21).
    let mut by_port: BTreeMap<(Proto, u16), Vec<&Listener>> = BTreeMap::new();
    for l in &scan.listeners {
        by_port.entry((l.proto, l.port)).or_default().push(l);
    }
    let mut seen: BTreeSet<(Proto, u16)> = groups
        .keys()
        .map(|&(port, proto, _)| (proto, port))
        .chain(decided.openings.iter().map(|o| (o.proto, o.port)))
        .chain(decided.closed.iter().map(|c| (c.proto, c.port)))
        .collect();
    for l in &scan.listeners {
        if l.exposure == Exposure::Loopback && seen.insert((l.proto, l.port)) {
            let group = PortGroup::of(
                by_port
                    .get(&(l.proto, l.port))
                    .into_iter()
                    .flatten()
                    .copied(),
                scan.uid_min,
            );
            decided.closed.push(Closed {
                proto: l.proto,
                port: l.port,
                service: group.service().to_string(),
                owner: group.owner(),
                reason: "listens on loopback only: reachable from this host alone, needs no rule"
                    .to_string(),
                to_open: None,
            });
        }
    }
}

/// Policy sections that shape no opened port, and blocks that close nothing,
/// are probably mistakes.
fn warn_unused_choices(choices: &Choices, decided: &mut Decisions) {
    let table = &choices.table;
    let opens = |spec: &Spec| {
        decided
            .openings
            .iter()
            .any(|o| spec.matches(o.proto, o.port, &o.service, table))
    };
    let closes = |spec: &Spec| {
        decided
            .closed
            .iter()
            .any(|c| spec.matches(c.proto, c.port, &c.service, table))
    };
    let mut warnings: Vec<String> = choices
        .services
        .iter()
        .filter(|policy| !opens(&policy.spec))
        .map(|policy| {
            format!(
                "{}: [service.{}] matches no port this ruleset opens; it has no effect",
                policy.place, policy.spec
            )
        })
        .collect();
    warnings.extend(
        choices
            .block
            .iter()
            .filter(|block| !closes(&block.value))
            .map(|block| {
                format!(
                    "{}: nothing listens on {} beyond loopback; it stays closed anyway",
                    block.place, block.value
                )
            }),
    );
    decided.warnings.extend(warnings);
}

/// The policy for an opened port: a section naming the port beats one naming
/// the service, so `[service."2222/tcp"]` can differ from `[service.ssh]`.
fn policy_for<'a>(opening: &Opening, choices: &'a Choices) -> Option<&'a ServicePolicy> {
    let matching = |s: &&ServicePolicy| {
        s.spec.matches(
            opening.proto,
            opening.port,
            &opening.service,
            &choices.table,
        )
    };
    choices
        .services
        .iter()
        .filter(matching)
        .find(|s| matches!(s.spec, Spec::Port { .. }))
        .or_else(|| choices.services.iter().find(matching))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HostFacts, Listener};
    use crate::propose::policy_file::{Policy, parse_policy};
    use crate::propose::spec::parse_net;
    use crate::services::ServiceTable;
    use std::net::IpAddr;

    fn listener(proto: Proto, addr: &str, port: u16, service: &str, process: &str) -> Listener {
        let address: IpAddr = addr.parse().unwrap();
        let exposure = if address.is_loopback() {
            Exposure::Loopback
        } else {
            Exposure::Public
        };
        Listener {
            service: service.into(),
            process: process.into(),
            pids: vec![100 + u32::from(port % 100)],
            risky: crate::services::is_risky(service) && exposure != Exposure::Loopback,
            ..Listener::bare(proto, address, port, exposure)
        }
    }

    fn scan() -> Scan {
        Scan {
            listeners: vec![
                listener(Proto::Tcp, "0.0.0.0", 5622, "ssh", "sshd"),
                listener(Proto::Tcp, "::", 5622, "ssh", "sshd"),
                listener(Proto::Udp, "203.0.113.10", 53, "dns", "named"),
                listener(Proto::Tcp, "127.0.0.1", 953, "rndc", "named"),
                listener(Proto::Tcp, "0.0.0.0", 3306, "mysql", "mysqld"),
            ],
            ..Scan::default()
        }
    }

    fn choices(allow: &[&str], block: &[&str], policy: &str) -> Choices {
        let table = ServiceTable::builtin();
        let policy = if policy.is_empty() {
            Policy::default()
        } else {
            parse_policy(policy, "p.toml", &table).unwrap()
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Choices::merge(&s(allow), &s(block), policy, table).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A new connection from `source` to this host's public address (of
    /// the source's family) on eth0.
    fn admits(r: &Ruleset, proto: Proto, port: u16, source: IpAddr) -> bool {
        let destination = match source.to_canonical() {
            IpAddr::V4(_) => ip("203.0.113.10"),
            IpAddr::V6(_) => ip("2001:db8::10"),
        };
        r.admits(Arrival {
            proto,
            port,
            source,
            destination: Some(destination),
            interface: Some("eth0"),
        })
    }

    #[test]
    fn public_services_open_risky_and_loopback_ones_stay_closed() {
        let r = build_ruleset(&scan(), &choices(&[], &[], ""));
        let opened: Vec<_> = r
            .services()
            .map(|(p, port, s)| (p, port, s.to_string()))
            .collect();
        assert_eq!(
            opened,
            [
                (Proto::Udp, 53, "dns".to_string()),
                (Proto::Tcp, 5622, "ssh".to_string())
            ]
        );
        for src in ["198.51.100.9", "2001:db8::9", "::ffff:198.51.100.9"] {
            assert!(admits(&r, Proto::Tcp, 5622, ip(src)), "{src}");
            assert!(!admits(&r, Proto::Tcp, 3306, ip(src)), "{src}");
            assert!(!admits(&r, Proto::Tcp, 953, ip(src)), "{src}");
            assert!(!admits(&r, Proto::Udp, 5622, ip(src)), "{src}");
        }
        let mysql = r.closed.iter().find(|c| c.port == 3306).unwrap();
        assert_eq!(mysql.to_open.as_deref(), Some("--allow mysql"));
        let rndc = r.closed.iter().find(|c| c.port == 953).unwrap();
        assert!(rndc.reason.contains("loopback only"), "{}", rndc.reason);
        assert!(matches!(r.forward, Forward::Drop { .. }));
    }

    #[test]
    fn allow_opens_risky_and_absent_ports_block_wins() {
        let r = build_ruleset(
            &scan(),
            &choices(&["mysql", "https", "8443/tcp"], &["dns"], ""),
        );
        let any = ip("198.51.100.9");
        assert!(admits(&r, Proto::Tcp, 3306, any));
        assert!(admits(&r, Proto::Tcp, 443, any) && admits(&r, Proto::Udp, 443, any));
        assert!(admits(&r, Proto::Tcp, 8443, any) && !admits(&r, Proto::Udp, 8443, any));
        assert!(!admits(&r, Proto::Udp, 53, any));
        assert!(
            r.closed
                .iter()
                .any(|c| c.port == 53 && c.reason.contains("--block dns"))
        );
        // `--allow ssh` opens the port sshd listens on, not 22.
        let r = build_ruleset(&scan(), &choices(&["ssh"], &[], ""));
        assert!(!admits(&r, Proto::Tcp, 22, any));
        // A listening service both allowed and blocked: closed, said once.
        let r = build_ruleset(&scan(), &choices(&["ssh"], &["ssh"], ""));
        let both: Vec<_> = r
            .warnings
            .iter()
            .filter(|w| w.contains("both allowed"))
            .collect();
        assert_eq!(
            both,
            ["5622/tcp (ssh) is both allowed (--allow ssh) and blocked (--block ssh): kept closed"]
        );
        // A name that is both allowed and blocked stays closed, with a warning.
        let r = build_ruleset(&scan(), &choices(&["http"], &["80/tcp"], ""));
        assert!(!admits(&r, Proto::Tcp, 80, any));
        assert!(
            r.warnings.iter().any(|w| w.contains("both allowed")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn sources_limit_and_blocklist_shape_admits() {
        let policy = r#"
[service.ssh]
sources = ["192.0.2.0/24"]
limit = true
[blocklist]
addresses = ["192.0.2.66", "2001:db8:bad::/48"]
"#;
        let r = build_ruleset(&scan(), &choices(&[], &[], policy));
        assert!(admits(&r, Proto::Tcp, 5622, ip("192.0.2.7")));
        assert!(!admits(&r, Proto::Tcp, 5622, ip("198.51.100.7")));
        // No IPv6 source listed: IPv6 is closed for ssh, not opened to all.
        assert!(!admits(&r, Proto::Tcp, 5622, ip("2001:db8::7")));
        assert!(
            !admits(&r, Proto::Tcp, 5622, ip("192.0.2.66")),
            "blocklisted"
        );
        assert!(!admits(&r, Proto::Udp, 53, ip("192.0.2.66")), "blocklisted");
        assert!(admits(&r, Proto::Udp, 53, ip("198.51.100.1")));
        // named listens on its IPv4 address only: nothing opens 53 on IPv6.
        assert!(!admits(&r, Proto::Udp, 53, ip("2001:db8::1")));
        assert!(admits(&r, Proto::Tcp, 5622, ip("127.0.0.1")), "loopback");
        let limits = r
            .input
            .iter()
            .filter(|rule| matches!(rule.matches, Match::OverRate { port: 5622, .. }))
            .count();
        assert_eq!(limits, 2, "one meter per family");
    }

    #[test]
    fn policy_sources_open_a_risky_service_and_unused_sections_warn() {
        let policy = "[service.mysql]\nsources = [\"10.0.0.0/8\"]\n[service.redis]\nlimit = true\n";
        let r = build_ruleset(&scan(), &choices(&[], &[], policy));
        assert!(admits(&r, Proto::Tcp, 3306, ip("10.1.2.3")));
        assert!(!admits(&r, Proto::Tcp, 3306, ip("198.51.100.1")));
        assert!(
            r.warnings.iter().any(|w| w.contains("[service.redis]")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn client_sockets_open_nothing_unless_their_port_is_allowed() {
        let mut s = scan();
        let mut client = listener(Proto::Udp, "0.0.0.0", 45969, "unknown", "ntpdate");
        client.client_socket = true;
        s.listeners.push(client);
        let any = ip("198.51.100.9");
        let r = build_ruleset(&s, &choices(&[], &[], ""));
        assert!(!admits(&r, Proto::Udp, 45969, any));
        assert!(!r.closed.iter().any(|c| c.port == 45969), "{:?}", r.closed);
        let r = build_ruleset(&s, &choices(&["45969/udp"], &[], ""));
        assert!(admits(&r, Proto::Udp, 45969, any));
    }

    #[test]
    fn listeners_of_users_and_nobody_stay_closed_with_the_flag() {
        use crate::model::Owner;
        let mut s = scan();
        s.uid_min = Some(1000);
        for l in &mut s.listeners {
            l.uid = Some(0);
        }
        let owned = |port: u16, uid: u32, user: &str, program: &str| {
            let mut l = listener(Proto::Tcp, "0.0.0.0", port, "unknown", program);
            l.uid = Some(uid);
            l.user = Some(user.to_string());
            l.owners = vec![Owner {
                pid: 900 + u32::from(port % 100),
                program: program.to_string(),
                uid: Some(uid),
                user: Some(user.to_string()),
                exe: Some(format!("/usr/bin/{program}")),
                exe_root_only: true,
            }];
            l
        };
        s.listeners.push(owned(3000, 1000, "alice", "node"));
        s.listeners.push(owned(6380, 65534, "nobody", "sshd"));
        s.listeners
            .push(owned(9100, 117, "prometheus", "node_exporter"));
        let any = ip("198.51.100.9");
        let r = build_ruleset(&s, &choices(&[], &[], ""));
        assert!(admits(&r, Proto::Tcp, 5622, any), "root's sshd");
        assert!(
            admits(&r, Proto::Tcp, 9100, any),
            "a system account's exporter"
        );
        assert!(!admits(&r, Proto::Tcp, 3000, any));
        assert!(!admits(&r, Proto::Tcp, 6380, any));
        let node = r.closed.iter().find(|c| c.port == 3000).unwrap();
        assert_eq!(
            node.reason,
            "socket created by user alice (uid 1000): not a system account (UID_MIN is 1000)"
        );
        assert_eq!(node.to_open.as_deref(), Some("--allow 3000/tcp"));
        let nobody = r.closed.iter().find(|c| c.port == 6380).unwrap();
        assert!(
            nobody.reason.contains("user nobody (uid 65534)"),
            "{}",
            nobody.reason
        );
        let r = build_ruleset(&s, &choices(&["3000/tcp"], &[], ""));
        assert!(admits(&r, Proto::Tcp, 3000, any));
    }

    #[test]
    fn bound_listeners_match_their_address_and_private_ones_their_interface() {
        let mut s = scan();
        let mut exporter = listener(Proto::Tcp, "10.9.0.5", 9100, "unknown", "node_exporter");
        exporter.exposure = Exposure::Private;
        exporter.interface = Some("eth1".into());
        let mut db = listener(Proto::Tcp, "fd00::5", 5432, "postgresql", "postgres");
        db.exposure = Exposure::Private;
        db.risky = true;
        db.interface = Some("eth1".into());
        let mut public_db = listener(Proto::Tcp, "203.0.113.10", 6379, "redis", "redis-server");
        public_db.risky = true;
        s.listeners.extend([exporter, db, public_db]);
        let r = build_ruleset(&s, &choices(&[], &[], ""));
        let to = |port, source: &str, destination: &str, interface| {
            r.admits(Arrival {
                proto: Proto::Tcp,
                port,
                source: ip(source),
                destination: Some(ip(destination)),
                interface,
            })
        };
        // From the private link, to the bound address: in.
        assert!(to(9100, "10.9.0.7", "10.9.0.5", Some("eth1")));
        // The same address from the public link (routed to it): out.
        assert!(!to(9100, "198.51.100.9", "10.9.0.5", Some("eth0")));
        // Another of the host's addresses: out.
        assert!(!to(9100, "10.9.0.7", "203.0.113.10", Some("eth1")));
        // A risky database bound to the private network: its rule only, and
        // still called risky; on a public address it stays closed.
        assert!(to(5432, "fd00::7", "fd00::5", Some("eth1")));
        assert!(!to(5432, "2001:db8::7", "fd00::5", Some("eth0")));
        let opened = r
            .input
            .iter()
            .find(|rule| matches!(rule.matches, Match::Service { port: 5432, .. }))
            .unwrap();
        assert!(opened.reason.contains("risky"), "{}", opened.reason);
        assert!(!to(6379, "198.51.100.9", "203.0.113.10", Some("eth0")));
        assert!(r.closed.iter().any(|c| c.port == 6379));
        // Public addresses: the destination only, from any interface.
        assert!(admits(&r, Proto::Udp, 53, ip("198.51.100.9")));
        assert!(r.admits(Arrival {
            proto: Proto::Udp,
            port: 53,
            source: ip("10.9.0.7"),
            destination: Some(ip("203.0.113.10")),
            interface: Some("eth1"),
        }));
        // --allow and --source keep the match.
        let policy = "[service.\"9100/tcp\"]\nsources = [\"10.9.0.0/24\", \"2001:db8::/32\"]\n";
        let r = build_ruleset(&s, &choices(&[], &[], policy));
        let rules: Vec<&Rule> = r
            .input
            .iter()
            .filter(|rule| matches!(rule.matches, Match::Service { port: 9100, .. }))
            .collect();
        assert_eq!(
            rules.len(),
            1,
            "IPv4 only: the listener is bound to an IPv4 address"
        );
        assert!(
            matches!(&rules[0].matches, Match::Service { bound: Some(b), .. } if b.interface.as_deref() == Some("eth1"))
        );
        // A wildcard listener on the same port makes it one rule for all.
        let mut wild = s.clone();
        wild.listeners.push(listener(
            Proto::Tcp,
            "0.0.0.0",
            9100,
            "unknown",
            "node_exporter",
        ));
        let r = build_ruleset(&wild, &choices(&[], &[], ""));
        assert!(admits(&r, Proto::Tcp, 9100, ip("198.51.100.9")));
    }

    /// dnsmasq as libvirt starts it: DHCP on `0.0.0.0%virbr0:67` (and a
    /// second network's on virbr1), DHCPv6 on `[::]%virbr0:547`. Each is
    /// opened on its own device only, in both families; an unbound
    /// wildcard on the same port opens it everywhere, as before.
    #[test]
    fn device_bound_listeners_are_opened_on_their_device_only() {
        let mut s = scan();
        let on = |address: &str, port, device: &str| {
            let mut l = listener(Proto::Udp, address, port, "dhcp", "dnsmasq");
            l.device = Some(device.into());
            l.interface = Some(device.into());
            l.exposure = Exposure::Private;
            l
        };
        s.listeners.extend([
            on("0.0.0.0", 67, "virbr0"),
            on("0.0.0.0", 67, "virbr1"),
            on("::", 547, "virbr0"),
            on("192.168.122.1", 53, "virbr0"),
        ]);
        let r = build_ruleset(&s, &choices(&[], &[], ""));
        let arrive = |port, source: &str, destination: &str, interface| {
            r.admits(Arrival {
                proto: Proto::Udp,
                port,
                source: ip(source),
                destination: Some(ip(destination)),
                interface,
            })
        };
        assert!(arrive(67, "0.0.0.0", "255.255.255.255", Some("virbr0")));
        assert!(arrive(67, "192.0.2.50", "192.0.2.1", Some("virbr1")));
        assert!(!arrive(67, "198.51.100.9", "203.0.113.10", Some("eth0")));
        assert!(!arrive(67, "198.51.100.9", "203.0.113.10", None));
        assert!(arrive(547, "fe80::5", "ff02::1:2", Some("virbr0")));
        assert!(!arrive(547, "2001:db8::9", "2001:db8::10", Some("eth0")));
        // Bound to an address and a device: both.
        assert!(arrive(53, "192.168.122.5", "192.168.122.1", Some("virbr0")));
        assert!(!arrive(53, "192.168.122.5", "192.168.122.1", Some("eth0")));
        assert!(!arrive(
            53,
            "192.168.122.5",
            "192.168.122.9",
            Some("virbr0")
        ));
        let dhcp: Vec<&Rule> = r
            .input
            .iter()
            .filter(|rule| matches!(rule.matches, Match::Service { port: 67, .. }))
            .collect();
        assert_eq!(dhcp.len(), 2, "one rule per device");
        assert!(
            dhcp[0]
                .reason
                .ends_with("private link; bound to device virbr0: only packets arriving on virbr0"),
            "{}",
            dhcp[0].reason
        );
        // Something listening on 0.0.0.0:67 unbound takes it from anywhere.
        s.listeners
            .push(listener(Proto::Udp, "0.0.0.0", 67, "dhcp", "dhcpd"));
        let r = build_ruleset(&s, &choices(&[], &[], ""));
        assert!(admits(&r, Proto::Udp, 67, ip("198.51.100.9")));
    }

    #[test]
    fn routing_hosts_keep_their_forwarding() {
        let mut s = scan();
        s.host = HostFacts {
            ip_forward: false,
            bridges: vec!["virbr0".into(), "docker0".into()],
            ..HostFacts::default()
        };
        let r = build_ruleset(&s, &Choices::default());
        match r.forward {
            Forward::LeaveAlone { reason } => {
                assert!(reason.contains("docker0, virbr0"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_of_scan_and_choices_does_not_matter() {
        let mut s = scan();
        let a = build_ruleset(&s, &choices(&["8443", "https"], &[], ""));
        s.listeners.reverse();
        let mut c = choices(&["https", "8443"], &[], "");
        c.blocklist = ["198.51.100.0/24", "192.0.2.1"]
            .map(|n| Given {
                value: parse_net(n).unwrap(),
                place: format!("--blocklist {n}"),
            })
            .to_vec();
        let b = build_ruleset(&s, &c);
        c.blocklist.reverse();
        let b2 = build_ruleset(&s, &c);
        assert_eq!(b, b2);
        assert_eq!(
            a.services().collect::<Vec<_>>(),
            b.services().collect::<Vec<_>>()
        );
    }
}
