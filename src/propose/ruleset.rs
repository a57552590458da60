//! The ruleset model: what a proposal says, independent of nft or iptables.
//!
//! The INPUT chain is an ordered list of [`Rule`]s, each with the reason it is
//! there; the renderers (`nft.rs`, `iptables.rs`) only translate it, and
//! [`Ruleset::admits`] walks the same list, so apply's lockout guard reasons
//! about exactly what gets loaded. Serialized as-is by `propose --json`.

use super::rate::Rate;
use crate::blocklist::{Ranges, SetKind, nft_element};
use crate::model::Proto;
use ipnet::IpNet;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// An IP family, for rules that apply to one only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// `v4` or `v6`, by family: the one place the two are told apart by name.
    pub fn pick<T>(self, v4: T, v6: T) -> T {
        match self {
            Family::Ipv4 => v4,
            Family::Ipv6 => v6,
        }
    }

    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }
}

/// ICMP and ICMPv6 message types the ruleset accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IcmpType {
    EchoRequest,
    DestinationUnreachable,
    PacketTooBig,
    TimeExceeded,
    ParameterProblem,
    RouterSolicit,
    RouterAdvert,
    NeighborSolicit,
    NeighborAdvert,
    MldListenerQuery,
}

impl IcmpType {
    /// The usual name (iptables spells them so; nft differs for ND and MLD).
    pub fn name(self) -> &'static str {
        match self {
            IcmpType::EchoRequest => "echo-request",
            IcmpType::DestinationUnreachable => "destination-unreachable",
            IcmpType::PacketTooBig => "packet-too-big",
            IcmpType::TimeExceeded => "time-exceeded",
            IcmpType::ParameterProblem => "parameter-problem",
            IcmpType::RouterSolicit => "router-solicitation",
            IcmpType::RouterAdvert => "router-advertisement",
            IcmpType::NeighborSolicit => "neighbour-solicitation",
            IcmpType::NeighborAdvert => "neighbour-advertisement",
            IcmpType::MldListenerQuery => "mld-listener-query",
        }
    }
}

/// What a rule matches. Tagged `match` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "match", rename_all = "kebab-case")]
pub enum Match {
    /// Packets that arrive on `lo`.
    Loopback,
    /// Source address in one blocklist set of this family: its single
    /// addresses (a hash set) or its networks (an interval set).
    Blocklisted { family: Family, kind: SetKind },
    /// Conntrack says the packet belongs to no valid connection.
    ConntrackInvalid,
    /// Conntrack says established or related.
    ConntrackEstablished,
    /// A new TCP connection whose first packet is not a plain SYN.
    TcpNewWithoutSyn,
    /// ICMP (IPv4) or ICMPv6 messages of these types.
    Icmp {
        family: Family,
        types: Vec<IcmpType>,
        /// Accepted only up to this rate (the rest falls through to the drop).
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<Rate>,
        /// Only packets with exactly this hop limit (255: from this link).
        #[serde(skip_serializing_if = "Option::is_none")]
        hop_limit: Option<u8>,
        /// Only from link-local sources (fe80::/10).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        link_local_source: bool,
    },
    /// New connections to `proto`/`port` from one source address, above `rate`.
    OverRate {
        proto: Proto,
        port: u16,
        family: Family,
        rate: Rate,
    },
    /// New connections to a service's port, from `sources` (anyone if empty)
    /// of `family` (both families if none), and, for a listener bound to
    /// one address, only to that address (and interface).
    Service {
        proto: Proto,
        port: u16,
        service: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        family: Option<Family>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        sources: Vec<IpNet>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bound: Option<Bound>,
    },
    /// Every packet, up to `limit` a time (for logging).
    Limited { limit: Rate },
    /// Every packet.
    Any,
}

/// Where a listener bound to one address or one device takes packets: that
/// destination, and for a private or link-local address the interface that
/// holds it; for a socket bound to a device (`0.0.0.0%virbr0`), that device
/// (and the address, if it is bound to one too).
/// Linux accepts a packet for any local address on any interface (the weak
/// host model), so without this a neighbour on the public link could reach
/// a service bound to the private network by routing to its address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bound {
    /// `None` for a wildcard bound to a device: any address, both families
    /// (as a wildcard listener's rule), on that device only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Matched by name (`iifname`), not index: the boot hook loads the
    /// rules before the interfaces exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl Bound {
    /// The one family its address takes, or `None` (no address: both).
    pub fn family(&self) -> Option<Family> {
        self.address.as_ref().map(Family::of)
    }

    /// Whether a rule for this bound does not apply in `family`.
    pub fn excludes(&self, family: Family) -> bool {
        self.family().is_some_and(|f| f != family)
    }
}

/// A new connection as INPUT sees it: what [`Ruleset::admits`] is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival<'a> {
    pub proto: Proto,
    pub port: u16,
    pub source: IpAddr,
    /// The local address it is sent to, if known (a rule bound to one
    /// address does not match an unknown destination: the guard assumes the
    /// worst).
    pub destination: Option<IpAddr>,
    /// The interface it comes in on, if known (a rule that names one does
    /// not match an unknown interface).
    pub interface: Option<&'a str>,
}

/// What happens to a matching packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict")]
pub enum Action {
    Accept,
    Drop,
    /// Log with this prefix and go on to the next rule.
    Log {
        prefix: String,
    },
}

/// One rule of the INPUT chain, with why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    #[serde(flatten)]
    pub matches: Match,
    #[serde(flatten)]
    pub action: Action,
    /// A short label, kept on the loaded rule (`comment "ssh"`).
    pub label: String,
    /// Why the rule is there, for the operator reviewing the output.
    pub reason: String,
}

/// What becomes of routed traffic (the FORWARD hook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "forward", rename_all = "kebab-case")]
pub enum Forward {
    /// Nothing is routed through this host: drop it, as the seed does.
    Drop { reason: String },
    /// The host routes for containers or VMs: autofw leaves FORWARD alone.
    LeaveAlone { reason: String },
}

/// The published-ports guard: on a host that routes for containers or VMs,
/// new connections that a nat prerouting DNAT forwards (Docker's `-p`,
/// podman's, libvirt's, a hand-written `dnat to`) and that arrive from
/// outside (not on a container or VM bridge) are dropped unless their
/// original port is one the proposal opens. It only ever drops: what it lets
/// pass goes on to Docker's own FORWARD rules as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedGuard {
    pub reason: String,
    /// Interface name prefixes whose traffic is left alone: container and
    /// VM bridges (`docker`, `br-`, ...), so containers reach each other's
    /// published ports as before.
    pub bridges: Vec<String>,
    /// The forwarded ports that pass, in INPUT's order: the ports INPUT opens,
    /// with the same sources.
    pub open: Vec<GuardOpening>,
}

/// One port the published-ports guard lets pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardOpening {
    pub proto: Proto,
    /// The port as published (the original destination, before DNAT).
    pub port: u16,
    pub service: String,
    /// Only this family (with `sources`), or both when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IpNet>,
    /// Only connections first sent to this address (and arriving on this
    /// interface), as INPUT's rule for a listener bound to one address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<Bound>,
    /// The rule's label (`http`, `8080/tcp`).
    pub label: String,
}

/// A listener the proposal keeps closed, and how to open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closed {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
    /// `mysqld, pid 296`: who listens there.
    pub owner: String,
    pub reason: String,
    /// The flag that would open it (`--allow mysql`), if any does.
    pub to_open: Option<String>,
}

impl Closed {
    /// `mysql 3306/tcp (mysqld, pid 296): REASON; to open it: --allow mysql`,
    /// as the proposal's header and `propose`'s stderr say it.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "{} {}/{} ({}): {}",
            self.service, self.port, self.proto, self.owner, self.reason
        );
        if let Some(flag) = &self.to_open {
            line.push_str(&format!("; to open it: {flag}"));
        }
        line
    }
}

/// The blocklist, merged into sorted, disjoint ranges per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocklist {
    /// A blocklist was asked for: its four sets and rules exist, even
    /// empty, so that `autofw blocklist refresh` only ever changes elements.
    pub enabled: bool,
    /// Hash sets that hold a family's single addresses in nft: 1, or
    /// [`crate::blocklist::SHARDS`] for lists from files.
    pub shards: u32,
    pub ipv4: Ranges<u32>,
    pub ipv6: Ranges<u128>,
}

impl Blocklist {
    pub fn is_empty(&self) -> bool {
        self.ipv4.is_empty() && self.ipv6.is_empty()
    }
    /// Entries after merging, both families.
    pub fn len(&self) -> usize {
        self.ipv4.len() + self.ipv6.len()
    }
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.kind_of(addr).is_some()
    }
    /// Which set holds `addr`, if any.
    pub fn kind_of(&self, addr: IpAddr) -> Option<SetKind> {
        match addr {
            IpAddr::V4(a) => self.ipv4.kind_of(u32::from(a)),
            IpAddr::V6(a) => self.ipv6.kind_of(u128::from(a)),
        }
    }
}

/// `{"ipv4": ["198.51.100.7", "203.0.113.0/24", ...], "ipv6": [...]}`: as
/// nft writes the elements.
impl Serialize for Blocklist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v4: Vec<String> = self
            .ipv4
            .ranges()
            .iter()
            .map(|&(a, b)| nft_element(a, b))
            .collect();
        let v6: Vec<String> = self
            .ipv6
            .ranges()
            .iter()
            .map(|&(a, b)| nft_element(a, b))
            .collect();
        let mut st = s.serialize_struct("Blocklist", 2)?;
        st.serialize_field("ipv4", &v4)?;
        st.serialize_field("ipv6", &v6)?;
        st.end()
    }
}

/// The whole proposal, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    /// The INPUT chain in order; what matches none is dropped (policy drop).
    pub input: Vec<Rule>,
    pub forward: Forward,
    /// Forwarded (DNAT) ports: dropped from outside unless opened. Only on a
    /// host that routes; elsewhere FORWARD drops everything anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<PublishedGuard>,
    pub blocklist: Blocklist,
    /// Listeners left closed, and why.
    pub closed: Vec<Closed>,
    /// Things the operator must know (Docker-published ports, unused policy).
    pub warnings: Vec<String>,
}

impl Ruleset {
    /// Would this new connection (TCP: a SYN) be accepted? Walks the INPUT
    /// rules as the kernel would, first verdict wins. A loopback source
    /// counts as arriving on `lo`. A source under an `OverRate` limit is
    /// taken to be within it (one new connection).
    pub fn admits(&self, arrival: Arrival<'_>) -> bool {
        self.verdict(arrival)
            .is_some_and(|rule| rule.action == Action::Accept)
    }

    /// The rule that decides this new connection: the first that accepts or
    /// drops it (`None`: none does, and the chain's policy drops it). What
    /// the lockout guard explains a refusal from.
    pub fn verdict(&self, arrival: Arrival<'_>) -> Option<&Rule> {
        let Arrival {
            proto,
            port,
            source,
            destination,
            interface,
        } = arrival;
        let source = source.to_canonical();
        let destination = destination.map(|d| d.to_canonical());
        let family = Family::of(&source);
        self.input.iter().find(|rule| {
            let hit = match &rule.matches {
                Match::Loopback => source.is_loopback(),
                Match::Blocklisted { family: f, kind } => {
                    *f == family && self.blocklist.kind_of(source) == Some(*kind)
                }
                Match::ConntrackInvalid
                | Match::ConntrackEstablished
                | Match::TcpNewWithoutSyn
                | Match::Icmp { .. }
                | Match::OverRate { .. }
                | Match::Limited { .. } => false,
                Match::Service {
                    proto: p,
                    port: q,
                    family: f,
                    sources,
                    bound,
                    ..
                } => {
                    *p == proto
                        && *q == port
                        && f.is_none_or(|f| f == family)
                        && (sources.is_empty() || sources.iter().any(|n| n.contains(&source)))
                        && bound.as_ref().is_none_or(|b| {
                            b.address
                                .is_none_or(|a| Some(a.to_canonical()) == destination)
                                && b.interface
                                    .as_deref()
                                    .is_none_or(|name| interface == Some(name))
                        })
                }
                Match::Any => true,
            };
            hit && !matches!(rule.action, Action::Log { .. })
        })
    }

    /// The service rules, in order.
    pub fn services(&self) -> impl Iterator<Item = (Proto, u16, &str)> {
        self.input.iter().filter_map(|rule| match &rule.matches {
            Match::Service {
                proto,
                port,
                service,
                ..
            } if rule.action == Action::Accept => Some((*proto, *port, service.as_str())),
            _ => None,
        })
    }
}
