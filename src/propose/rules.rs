//! The rules themselves: the base rules every proposal starts with, the
//! rules of one opened port (limits, sources), the log and drop at the end,
//! and the FORWARD policy. Pure.

use super::choices::ServicePolicy;
use super::rate::{Per, Rate};
use super::ruleset::*;
use crate::blocklist::{SETS, SetKind};
use crate::model::{Proto, Scan};

/// Prefix of the kernel log line for dropped packets (iptables allows 29 bytes).
pub(crate) const LOG_PREFIX: &str = "autofw drop: ";

/// Echo requests accepted per second from everyone together: enough for any
/// monitoring, too few to be a flood amplifier.
const ECHO_RATE: Rate = Rate {
    count: 5,
    per: Per::Second,
    burst: 10,
};

/// Prefix of the kernel log line for dropped forwarded (published) connections.
pub(crate) const PUBLISHED_LOG_PREFIX: &str = "autofw drop published: ";

/// Drop log lines per minute: the log stays readable under a port scan.
pub(crate) const LOG_RATE: Rate = Rate {
    count: 5,
    per: Per::Minute,
    burst: 10,
};

/// One port the ruleset opens, before it becomes rules.
pub(crate) struct Opening {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
    pub why: String,
    /// Only to this address (and interface): the listener is bound to it.
    pub bound: Option<Bound>,
}

pub(crate) fn rule(matches: Match, action: Action, label: &str, reason: impl Into<String>) -> Rule {
    Rule {
        matches,
        action,
        label: label.to_string(),
        reason: reason.into(),
    }
}

/// ICMP messages of `types` in `family`, from anywhere, at any rate.
fn icmp(family: Family, types: Vec<IcmpType>) -> Match {
    Match::Icmp {
        family,
        types,
        limit: None,
        hop_limit: None,
        link_local_source: false,
    }
}

/// Echo requests of `family`, at most [`ECHO_RATE`] from everyone together.
fn ping(family: Family) -> Rule {
    let (label, name) = match family {
        Family::Ipv4 => ("ping", "IPv4"),
        Family::Ipv6 => ("ping6", "IPv6"),
    };
    let mut matches = icmp(family, vec![IcmpType::EchoRequest]);
    if let Match::Icmp { limit, .. } = &mut matches {
        *limit = Some(ECHO_RATE);
    }
    rule(
        matches,
        Action::Accept,
        label,
        format!(
            "ping ({name}), at most {}/{}: the rest is dropped",
            ECHO_RATE.count,
            ECHO_RATE.per.as_str()
        ),
    )
}

/// The rules every proposal starts with, before the services.
pub(crate) fn base_rules(blocklist: &Blocklist) -> Vec<Rule> {
    let mut rules = vec![rule(
        Match::Loopback,
        Action::Accept,
        "loopback",
        "loopback: programs on this host talk to each other over lo",
    )];
    if blocklist.enabled {
        for (family, kind) in SETS {
            let what = match kind {
                SetKind::Addresses if blocklist.shards > 1 => {
                    "address (hash sets, one picked by the address's last bits: a lookup or two \
                     per packet however long the list)"
                }
                SetKind::Addresses => {
                    "address (a hash set: one lookup per packet however long the list)"
                }
                SetKind::Networks => "network or range (an interval set)",
            };
            let family_name = match family {
                Family::Ipv4 => "IPv4",
                Family::Ipv6 => "IPv6",
            };
            rules.push(rule(
                Match::Blocklisted { family, kind },
                Action::Drop,
                "blocklist",
                format!("blocklist: packets from a listed {family_name} {what}"),
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
    rules.push(ping(Family::Ipv4));
    rules.push(rule(
        icmp(
            Family::Ipv4,
            vec![
                IcmpType::DestinationUnreachable,
                IcmpType::TimeExceeded,
                IcmpType::ParameterProblem,
            ],
        ),
        Action::Accept,
        "icmp-errors",
        "ICMP errors: path MTU discovery (fragmentation needed) and traceroute depend on them",
    ));
    rules.push(ping(Family::Ipv6));
    rules.push(rule(
        icmp(
            Family::Ipv6,
            vec![
                IcmpType::DestinationUnreachable,
                IcmpType::PacketTooBig,
                IcmpType::TimeExceeded,
                IcmpType::ParameterProblem,
            ],
        ),
        Action::Accept,
        "icmpv6-errors",
        "ICMPv6 errors: IPv6 routers never fragment, so without packet-too-big large transfers stall",
    ));
    let mut ndp = icmp(
        Family::Ipv6,
        vec![
            IcmpType::RouterSolicit,
            IcmpType::RouterAdvert,
            IcmpType::NeighborSolicit,
            IcmpType::NeighborAdvert,
        ],
    );
    if let Match::Icmp { hop_limit, .. } = &mut ndp {
        *hop_limit = Some(255);
    }
    rules.push(rule(
        ndp,
        Action::Accept,
        "ndp",
        "neighbour and router discovery (IPv6's ARP and DHCP), only from this link: hop limit 255",
    ));
    let mut mld = icmp(Family::Ipv6, vec![IcmpType::MldListenerQuery]);
    if let Match::Icmp {
        hop_limit,
        link_local_source,
        ..
    } = &mut mld
    {
        *hop_limit = Some(1);
        *link_local_source = true;
    }
    rules.push(rule(
        mld,
        Action::Accept,
        "mld",
        "multicast listener queries from the link's router: snooping switches stop delivering \
         neighbour discovery to hosts that do not answer them",
    ));
    rules
}

/// The rules for one opened port: per-source rate limits first (they drop),
/// then the accepts, per family when the sources are restricted.
pub(crate) fn service_rules(opening: &Opening, policy: Option<&ServicePolicy>) -> Vec<Rule> {
    let Opening {
        proto,
        port,
        service,
        why,
        bound,
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
                bound: bound.clone(),
            },
            Action::Accept,
            &label,
            why.clone(),
        )),
        Some(sources) => {
            let place = policy.map(|p| p.place.as_str()).unwrap_or("");
            for family in [Family::Ipv4, Family::Ipv6] {
                // A listener bound to one address takes one family only.
                if bound.as_ref().is_some_and(|b| b.excludes(family)) {
                    continue;
                }
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
                        bound: bound.clone(),
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
pub(crate) fn forward_for(scan: &Scan) -> Forward {
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
                 that manage it (Docker, libvirt, LXD, podman); autofw adds only the guard of \
                 published ports",
                because.join("; ")
            ),
        }
    }
}

/// The last two INPUT rules: log (rate-limited), then drop.
pub(crate) fn log_and_drop() -> [Rule; 2] {
    [
        rule(
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
        ),
        rule(
            Match::Any,
            Action::Drop,
            "drop",
            "everything not accepted above is dropped (no reply: a scanner learns nothing)",
        ),
    ]
}
