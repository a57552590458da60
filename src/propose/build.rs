//! Deciding the ruleset: scan + choices → [`Ruleset`]. Pure and deterministic:
//! listeners are grouped and sorted by (port, proto), so the same inputs give
//! the same rules in the same order whatever order scan listed them in.

use super::choices::{Choices, Per, Rate, ServicePolicy, Spec};
use super::ruleset::*;
use crate::model::{Exposure, Listener, Proto, Scan};
use crate::trust::{self, OwnerTrust};
use std::collections::BTreeMap;

/// Prefix of the kernel log line for dropped packets (iptables allows 29 bytes).
pub const LOG_PREFIX: &str = "autofw drop: ";

/// Echo requests accepted per second from everyone together: enough for any
/// monitoring, too few to be a flood amplifier.
const ECHO_RATE: Rate = Rate {
    count: 5,
    per: Per::Second,
    burst: 10,
};

/// Drop log lines per minute: the log stays readable under a port scan.
const LOG_RATE: Rate = Rate {
    count: 5,
    per: Per::Minute,
    burst: 10,
};

/// Programs whose listening socket only stands in for a port that Docker
/// publishes with DNAT (the packets then cross FORWARD, not INPUT).
pub const DOCKER_PROXIES: &[&str] = &["docker-proxy", "rootlesskit", "rootlessport"];

/// Every non-loopback listener on one (proto, port), merged.
#[derive(Debug, Default)]
struct PortGroup {
    services: Vec<String>,
    programs: Vec<String>,
    pids: Vec<u32>,
    exposure: Option<Exposure>,
    risky: bool,
    docker_proxy: bool,
    /// Why an owner is not trusted to have a port opened unasked (the first
    /// listener that fails [`trust::judge_owners`]).
    distrust: Option<String>,
}

impl PortGroup {
    fn add(&mut self, l: &Listener, uid_min: Option<u32>) {
        if self.distrust.is_none()
            && let OwnerTrust::NotSystem { reason } = trust::judge_owners(l, uid_min)
        {
            self.distrust = Some(reason);
        }
        self.services.push(l.service.clone());
        for program in l.process.split(',').filter(|p| !p.is_empty()) {
            self.programs.push(program.to_string());
        }
        self.pids.extend(&l.pids);
        self.exposure = self.exposure.max(Some(l.exposure));
        self.risky |= l.risky;
        self.docker_proxy |= trust::trusted_programs(l)
            .iter()
            .any(|p| DOCKER_PROXIES.contains(p));
        for v in [&mut self.services, &mut self.programs] {
            v.sort();
            v.dedup();
        }
        self.pids.sort_unstable();
        self.pids.dedup();
    }

    /// The name to call it by: a known name over `unknown`.
    fn service(&self) -> &str {
        self.services
            .iter()
            .find(|s| *s != "unknown")
            .or(self.services.first())
            .map_or("unknown", String::as_str)
    }

    /// `sshd, pid 630` / `dovecot, pids 261, 262` / `owner unknown`.
    fn owner(&self) -> String {
        let programs = if self.programs.is_empty() {
            "owner unknown".to_string()
        } else {
            self.programs.join(", ")
        };
        match self.pids.as_slice() {
            [] => programs,
            [pid] => format!("{programs}, pid {pid}"),
            pids => {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                format!("{programs}, pids {}", pids.join(", "))
            }
        }
    }
}

/// One port the ruleset opens, before it becomes rules.
struct Opening {
    proto: Proto,
    port: u16,
    service: String,
    why: String,
}

fn rule(matches: Match, action: Action, label: &str, reason: impl Into<String>) -> Rule {
    Rule {
        matches,
        action,
        label: label.to_string(),
        reason: reason.into(),
    }
}

/// The flag that opens a closed listener: by name where it has one.
fn open_flag(service: &str, proto: Proto, port: u16) -> String {
    if service == "unknown" {
        format!("--allow {port}/{proto}")
    } else {
        format!("--allow {service}")
    }
}

/// The `--allow` spec (or policy `allow`) that names this listener's port.
fn allowed_by_spec<'a>(
    choices: &'a Choices,
    l: &Listener,
) -> Option<&'a super::choices::Given<Spec>> {
    choices
        .allow
        .iter()
        .find(|a| a.value.matches(l.proto, l.port, &l.service, &choices.table))
}

/// Build the ruleset for `scan` under `choices`.
pub fn build_ruleset(scan: &Scan, choices: &Choices) -> Ruleset {
    let table = &choices.table;
    let mut warnings = Vec::new();
    let mut closed = Vec::new();

    // Listeners the world can reach, one group per (proto, port).
    let mut groups: BTreeMap<(u16, Proto), PortGroup> = BTreeMap::new();
    for l in &scan.listeners {
        // A client socket is not a service: opened only when the operator
        // allows its port (it is then the listener they meant).
        let client_unasked = l.client_socket && allowed_by_spec(choices, l).is_none();
        if l.exposure != Exposure::Loopback && !client_unasked {
            groups
                .entry((l.port, l.proto))
                .or_default()
                .add(l, scan.uid_min);
        }
    }

    let blocked_by = |proto, port, service: &str| {
        choices
            .block
            .iter()
            .find(|b| b.value.matches(proto, port, service, table))
    };
    let allowed_by = |proto, port, service: &str| {
        choices
            .allow
            .iter()
            .find(|a| a.value.matches(proto, port, service, table))
    };
    // A `[service.X] sources` section is an explicit, restricted opening.
    let restricted_by = |proto, port, service: &str| {
        choices
            .services
            .iter()
            .find(|s| s.sources.is_some() && s.spec.matches(proto, port, service, table))
    };

    let mut openings = Vec::new();
    for (&(port, proto), group) in &groups {
        let service = group.service().to_string();
        let owner = group.owner();
        if group.docker_proxy {
            warnings.push(format!(
                "{port}/{proto} is published by Docker ({owner}): Docker forwards it with its own \
                 DNAT rules, which bypass INPUT, so this ruleset can neither open nor close it; \
                 restrict it in Docker's DOCKER-USER chain, or publish it on 127.0.0.1 only"
            ));
        }
        if let Some(block) = blocked_by(proto, port, &service) {
            closed.push(Closed {
                proto,
                port,
                service: service.clone(),
                owner,
                reason: if group.docker_proxy {
                    format!(
                        "kept closed by {} (Docker still forwards it: see the warning)",
                        block.place
                    )
                } else {
                    format!("kept closed by {}", block.place)
                },
                to_open: None,
            });
            continue;
        }
        let explicit = allowed_by(proto, port, &service)
            .map(|a| a.place.clone())
            .or_else(|| restricted_by(proto, port, &service).map(|s| s.place.clone()));
        if let Some(distrust) = group.distrust.as_ref().filter(|_| explicit.is_none()) {
            closed.push(Closed {
                proto,
                port,
                service: service.clone(),
                owner,
                reason: if group.risky {
                    format!("{distrust}; and {service} should not face the network anyway")
                } else {
                    distrust.clone()
                },
                // By port: a name taken from an untrusted listener may not be
                // what it serves.
                to_open: Some(format!("--allow {port}/{proto}")),
            });
            continue;
        }
        if group.risky && explicit.is_none() {
            closed.push(Closed {
                proto,
                port,
                service: service.clone(),
                owner,
                reason: if group.docker_proxy {
                    format!(
                        "{service} listens beyond loopback, which for a database, cache or admin \
                         service is almost always an accident (Docker still forwards it: see the warning)"
                    )
                } else {
                    format!(
                        "{service} listens beyond loopback, which for a database, cache or admin \
                         service is almost always an accident"
                    )
                },
                to_open: Some(open_flag(&service, proto, port)),
            });
            continue;
        }
        let exposure = group.exposure.unwrap_or(Exposure::Public);
        let mut why = if service == "unknown" {
            format!("{port}/{proto}, an unnamed service ({owner})")
        } else {
            format!("{service} ({owner})")
        };
        if group.docker_proxy {
            why.push_str(", published by Docker (see the warning)");
        }
        if exposure != Exposure::Public {
            why.push_str(&format!(", {exposure} address"));
        }
        if let Some(place) = explicit.as_ref().filter(|_| group.risky) {
            why.push_str(&format!(", risky but opened by {place}"));
        }
        if let (Some(distrust), Some(place)) = (&group.distrust, &explicit) {
            why.push_str(&format!(", {distrust}, but opened by {place}"));
        }
        openings.push(Opening {
            proto,
            port,
            service,
            why,
        });
    }

    // Allowed specs that no listener matched open the spec's own ports.
    for allow in &choices.allow {
        let listening = groups
            .iter()
            .any(|(&(port, proto), g)| allow.value.matches(proto, port, g.service(), table));
        if listening {
            continue;
        }
        for (proto, port) in allow.value.default_ports(table) {
            if openings.iter().any(|o| o.proto == proto && o.port == port) {
                continue;
            }
            let service = match &allow.value {
                Spec::Name(name) => name.clone(),
                Spec::Port { .. } => table
                    .name_of_port(proto, port)
                    .unwrap_or("unknown")
                    .to_string(),
            };
            if let Some(block) = blocked_by(proto, port, &service) {
                warnings.push(format!(
                    "{port}/{proto} is both allowed ({}) and blocked ({}): kept closed",
                    allow.place, block.place
                ));
                continue;
            }
            let on_loopback = scan
                .listeners
                .iter()
                .any(|l| l.proto == proto && l.port == port);
            let why = if on_loopback {
                format!(
                    "allowed by {}; it listens on loopback only, so nothing answers from outside yet",
                    allow.place
                )
            } else {
                format!("allowed by {}; nothing listens there yet", allow.place)
            };
            openings.push(Opening {
                proto,
                port,
                service,
                why,
            });
        }
    }
    openings.sort_by_key(|o| (o.port, o.proto));

    // Loopback-only listeners get no rule; say so, so the review is complete.
    for l in &scan.listeners {
        let seen = groups.contains_key(&(l.port, l.proto))
            || openings
                .iter()
                .any(|o| o.proto == l.proto && o.port == l.port)
            || closed
                .iter()
                .any(|c| c.proto == l.proto && c.port == l.port);
        if l.exposure == Exposure::Loopback && !seen {
            let mut group = PortGroup::default();
            for same in scan
                .listeners
                .iter()
                .filter(|o| o.proto == l.proto && o.port == l.port)
            {
                group.add(same, scan.uid_min);
            }
            closed.push(Closed {
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
    closed.sort_by_key(|c| (c.port, c.proto));

    // Policy sections that shape no opened port are probably mistakes.
    for policy in &choices.services {
        let used = openings
            .iter()
            .any(|o| policy.spec.matches(o.proto, o.port, &o.service, table));
        if !used {
            warnings.push(format!(
                "{}: [service.{}] matches no port this ruleset opens; it has no effect",
                policy.place, policy.spec
            ));
        }
    }
    for block in &choices.block {
        let used = closed
            .iter()
            .any(|c| block.value.matches(c.proto, c.port, &c.service, table));
        if !used {
            warnings.push(format!(
                "{}: nothing listens on {} beyond loopback; it stays closed anyway",
                block.place, block.value
            ));
        }
    }

    let (ipv4, ipv6) = choices.blocklist_by_family();
    let blocklist = Blocklist { ipv4, ipv6 };

    let mut input = base_rules(&blocklist);
    for opening in &openings {
        input.extend(service_rules(
            opening,
            policy_for(opening, &choices.services, choices),
        ));
    }
    input.push(rule(
        Match::Limited { limit: LOG_RATE },
        Action::Log {
            prefix: LOG_PREFIX.to_string(),
        },
        "log",
        format!(
            "log what is about to be dropped, at most {}/{} (prefix \"{}\")",
            LOG_RATE.count,
            LOG_RATE.per.as_str(),
            LOG_PREFIX.trim_end()
        ),
    ));
    input.push(rule(
        Match::Any,
        Action::Drop,
        "drop",
        "everything not accepted above is dropped (no reply: a scanner learns nothing)",
    ));

    Ruleset {
        input,
        forward: forward_for(scan),
        blocklist,
        closed,
        warnings,
    }
}

/// The policy for an opened port: a section naming the port beats one naming
/// the service, so `[service."2222/tcp"]` can differ from `[service.ssh]`.
fn policy_for<'a>(
    opening: &Opening,
    services: &'a [ServicePolicy],
    choices: &Choices,
) -> Option<&'a ServicePolicy> {
    let matching = |s: &&ServicePolicy| {
        s.spec.matches(
            opening.proto,
            opening.port,
            &opening.service,
            &choices.table,
        )
    };
    services
        .iter()
        .filter(matching)
        .find(|s| matches!(s.spec, Spec::Port { .. }))
        .or_else(|| services.iter().find(matching))
}

/// The rules every proposal starts with, before the services.
fn base_rules(blocklist: &Blocklist) -> Vec<Rule> {
    let mut rules = vec![rule(
        Match::Loopback,
        Action::Accept,
        "loopback",
        "loopback: programs on this host talk to each other over lo",
    )];
    for (family, count) in [
        (Family::Ipv4, blocklist.ipv4.len()),
        (Family::Ipv6, blocklist.ipv6.len()),
    ] {
        if count > 0 {
            rules.push(rule(
                Match::Blocklisted { family },
                Action::Drop,
                "blocklist",
                format!(
                    "blocklist: {count} {} network(s), one set lookup per packet however long the list",
                    match family {
                        Family::Ipv4 => "IPv4",
                        Family::Ipv6 => "IPv6",
                    }
                ),
            ));
        }
    }
    rules.push(rule(
        Match::ConntrackInvalid,
        Action::Drop,
        "invalid",
        "packets conntrack cannot place in any connection are dropped",
    ));
    rules.push(rule(
        Match::ConntrackEstablished,
        Action::Accept,
        "established",
        "replies and the rest of connections already accepted (and their ICMP errors)",
    ));
    rules.push(rule(
        Match::TcpNewWithoutSyn,
        Action::Drop,
        "new-without-syn",
        "a new TCP connection must begin with SYN (the seed's `! --syn` rule)",
    ));
    rules.push(rule(
        Match::Icmp {
            family: Family::Ipv4,
            types: vec![IcmpType::EchoRequest],
            limit: Some(ECHO_RATE),
            hop_limit: None,
            link_local_source: false,
        },
        Action::Accept,
        "ping",
        format!(
            "ping (IPv4), at most {}/{}: the rest is dropped",
            ECHO_RATE.count,
            ECHO_RATE.per.as_str()
        ),
    ));
    rules.push(rule(
        Match::Icmp {
            family: Family::Ipv4,
            types: vec![
                IcmpType::DestinationUnreachable,
                IcmpType::TimeExceeded,
                IcmpType::ParameterProblem,
            ],
            limit: None,
            hop_limit: None,
            link_local_source: false,
        },
        Action::Accept,
        "icmp-errors",
        "ICMP errors: path MTU discovery (fragmentation needed) and traceroute depend on them",
    ));
    rules.push(rule(
        Match::Icmp {
            family: Family::Ipv6,
            types: vec![IcmpType::EchoRequest],
            limit: Some(ECHO_RATE),
            hop_limit: None,
            link_local_source: false,
        },
        Action::Accept,
        "ping6",
        format!(
            "ping (IPv6), at most {}/{}: the rest is dropped",
            ECHO_RATE.count,
            ECHO_RATE.per.as_str()
        ),
    ));
    rules.push(rule(
        Match::Icmp {
            family: Family::Ipv6,
            types: vec![
                IcmpType::DestinationUnreachable,
                IcmpType::PacketTooBig,
                IcmpType::TimeExceeded,
                IcmpType::ParameterProblem,
            ],
            limit: None,
            hop_limit: None,
            link_local_source: false,
        },
        Action::Accept,
        "icmpv6-errors",
        "ICMPv6 errors: IPv6 routers never fragment, so without packet-too-big large transfers stall",
    ));
    rules.push(rule(
        Match::Icmp {
            family: Family::Ipv6,
            types: vec![
                IcmpType::RouterSolicit,
                IcmpType::RouterAdvert,
                IcmpType::NeighborSolicit,
                IcmpType::NeighborAdvert,
            ],
            limit: None,
            hop_limit: Some(255),
            link_local_source: false,
        },
        Action::Accept,
        "ndp",
        "neighbour and router discovery (IPv6's ARP and DHCP), only from this link: hop limit 255",
    ));
    rules.push(rule(
        Match::Icmp {
            family: Family::Ipv6,
            types: vec![IcmpType::MldListenerQuery],
            limit: None,
            hop_limit: Some(1),
            link_local_source: true,
        },
        Action::Accept,
        "mld",
        "multicast listener queries from the link's router: snooping switches stop delivering \
         neighbour discovery to hosts that do not answer them",
    ));
    rules
}

/// The rules for one opened port: per-source rate limits first (they drop),
/// then the accepts, per family when the sources are restricted.
fn service_rules(opening: &Opening, policy: Option<&ServicePolicy>) -> Vec<Rule> {
    let Opening {
        proto,
        port,
        service,
        why,
    } = opening;
    let (proto, port) = (*proto, *port);
    let mut rules = Vec::new();
    // The kernel keeps the label with the rule: make it say something.
    let label = if service == "unknown" {
        format!("{port}/{proto}")
    } else {
        service.clone()
    };
    if let Some(rate) = policy.and_then(|p| p.limit) {
        for family in [Family::Ipv4, Family::Ipv6] {
            rules.push(rule(
                Match::OverRate {
                    proto,
                    port,
                    family,
                    rate,
                },
                Action::Drop,
                &format!("{label}-limit"),
                format!(
                    "{service}: new connections from one address beyond a burst of {}, then \
                     {}/{}, are dropped",
                    rate.burst,
                    rate.count,
                    rate.per.as_str()
                ),
            ));
        }
    }
    match policy.and_then(|p| p.sources.as_ref()) {
        None => rules.push(rule(
            Match::Service {
                proto,
                port,
                service: service.clone(),
                family: None,
                sources: Vec::new(),
            },
            Action::Accept,
            &label,
            why.clone(),
        )),
        Some(sources) => {
            let place = policy.map(|p| p.place.as_str()).unwrap_or("");
            for family in [Family::Ipv4, Family::Ipv6] {
                let nets: Vec<_> = sources
                    .iter()
                    .filter(|n| Family::of_net(n) == family)
                    .copied()
                    .collect();
                // Merged: nft refuses overlapping elements in an anonymous
                // set, and the output must not depend on the listed order.
                let nets = ipnet::IpNet::aggregate(&nets);
                if nets.is_empty() {
                    // Not a rule: the reason is said in the other family's rule.
                    continue;
                }
                rules.push(rule(
                    Match::Service {
                        proto,
                        port,
                        service: service.clone(),
                        family: Some(family),
                        sources: nets,
                    },
                    Action::Accept,
                    &label,
                    format!("{why}; only from the sources at {place}"),
                ));
            }
        }
    }
    rules
}

/// FORWARD: drop, unless the host routes for containers or VMs.
fn forward_for(scan: &Scan) -> Forward {
    let host = &scan.host;
    let mut because = Vec::new();
    if !host.bridges.is_empty() {
        let mut bridges = host.bridges.clone();
        bridges.sort();
        because.push(format!("bridges {}", bridges.join(", ")));
    }
    if host.ip_forward {
        because.push("IP forwarding is on".to_string());
    }
    if because.is_empty() {
        Forward::Drop {
            reason: "this host routes nothing (no container or VM bridges, IP forwarding off): \
                     routed packets are dropped"
                .to_string(),
        }
    } else {
        Forward::LeaveAlone {
            reason: format!(
                "this host routes for containers or VMs ({}): forwarding is left to the rules \
                 that manage it (Docker, libvirt, LXD, podman); autofw adds no forward chain",
                because.join("; ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::choices::{Policy, parse_net};
    use super::*;
    use crate::model::{HostFacts, Listener};
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
            proto,
            address,
            port,
            exposure,
            service: service.into(),
            process: process.into(),
            pids: vec![100 + u32::from(port % 100)],
            risky: crate::services::is_risky(service) && exposure != Exposure::Loopback,
            uid: None,
            user: None,
            owners: Vec::new(),
            name_note: None,
            interface: None,
            client_socket: false,
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
            super::super::choices::parse_policy(policy, "p.toml", &table).unwrap()
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Choices::merge(&s(allow), &s(block), policy, table).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
            assert!(r.admits(Proto::Tcp, 5622, ip(src)), "{src}");
            assert!(!r.admits(Proto::Tcp, 3306, ip(src)), "{src}");
            assert!(!r.admits(Proto::Tcp, 953, ip(src)), "{src}");
            assert!(!r.admits(Proto::Udp, 5622, ip(src)), "{src}");
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
        assert!(r.admits(Proto::Tcp, 3306, any));
        assert!(r.admits(Proto::Tcp, 443, any) && r.admits(Proto::Udp, 443, any));
        assert!(r.admits(Proto::Tcp, 8443, any) && !r.admits(Proto::Udp, 8443, any));
        assert!(!r.admits(Proto::Udp, 53, any));
        assert!(
            r.closed
                .iter()
                .any(|c| c.port == 53 && c.reason.contains("--block dns"))
        );
        // `--allow ssh` opens the port sshd listens on, not 22.
        let r = build_ruleset(&scan(), &choices(&["ssh"], &[], ""));
        assert!(!r.admits(Proto::Tcp, 22, any));
        // A name that is both allowed and blocked stays closed, with a warning.
        let r = build_ruleset(&scan(), &choices(&["http"], &["80/tcp"], ""));
        assert!(!r.admits(Proto::Tcp, 80, any));
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
        assert!(r.admits(Proto::Tcp, 5622, ip("192.0.2.7")));
        assert!(!r.admits(Proto::Tcp, 5622, ip("198.51.100.7")));
        // No IPv6 source listed: IPv6 is closed for ssh, not opened to all.
        assert!(!r.admits(Proto::Tcp, 5622, ip("2001:db8::7")));
        assert!(!r.admits(Proto::Tcp, 5622, ip("192.0.2.66")), "blocklisted");
        assert!(
            !r.admits(Proto::Udp, 53, ip("2001:db8:bad::1")),
            "blocklisted"
        );
        assert!(r.admits(Proto::Udp, 53, ip("2001:db8::1")));
        assert!(r.admits(Proto::Tcp, 5622, ip("127.0.0.1")), "loopback");
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
        assert!(r.admits(Proto::Tcp, 3306, ip("10.1.2.3")));
        assert!(!r.admits(Proto::Tcp, 3306, ip("198.51.100.1")));
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
        assert!(!r.admits(Proto::Udp, 45969, any));
        assert!(!r.closed.iter().any(|c| c.port == 45969), "{:?}", r.closed);
        let r = build_ruleset(&s, &choices(&["45969/udp"], &[], ""));
        assert!(r.admits(Proto::Udp, 45969, any));
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
        assert!(r.admits(Proto::Tcp, 5622, any), "root's sshd");
        assert!(
            r.admits(Proto::Tcp, 9100, any),
            "a system account's exporter"
        );
        assert!(!r.admits(Proto::Tcp, 3000, any));
        assert!(!r.admits(Proto::Tcp, 6380, any));
        let node = r.closed.iter().find(|c| c.port == 3000).unwrap();
        assert_eq!(
            node.reason,
            "run by node as user alice (uid 1000): not a system account (UID_MIN is 1000)"
        );
        assert_eq!(node.to_open.as_deref(), Some("--allow 3000/tcp"));
        let nobody = r.closed.iter().find(|c| c.port == 6380).unwrap();
        assert!(
            nobody.reason.contains("user nobody (uid 65534)"),
            "{}",
            nobody.reason
        );
        let r = build_ruleset(&s, &choices(&["3000/tcp"], &[], ""));
        assert!(r.admits(Proto::Tcp, 3000, any));
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
        c.blocklist = vec![
            parse_net("198.51.100.0/24").unwrap(),
            parse_net("192.0.2.1").unwrap(),
        ];
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
