//! Rendering a [`Ruleset`] as an `nft -f` script: one `table inet autofw`
//! (both families in one table, so IPv6 can never be forgotten), replaced in
//! one transaction, touching no other table.

use super::blocklist::{Key, Ranges, SETS, SetContents, SetKind, nft_element, set_name};
use super::rate::{Per, Rate};
use super::ruleset::*;
use super::text::{comment_lines, quoted};
use crate::model::Proto;
use std::fmt::Write;

/// autofw's one table: the only one apply replaces and rollback undoes.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "autofw";

/// Whether the blocklist sets are written with their elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elements {
    /// In the script (`autofw propose`): loadable by hand with `nft -f`.
    Inline,
    /// Declared empty: apply adds the elements in bounded batches after the
    /// table is loaded, so no nft process ever holds the whole list.
    Separate,
}

/// The dynamic set that meters one port's new connections per source.
fn meter_set(proto: Proto, port: u16, family: Family) -> String {
    format!("meter_{proto}_{port}_{}", family.pick("v4", "v6"))
}

fn addr_type(family: Family) -> &'static str {
    family.pick("ipv4_addr", "ipv6_addr")
}

fn saddr(family: Family) -> &'static str {
    family.pick("ip saddr", "ip6 saddr")
}

fn rate(r: &Rate) -> String {
    format!("{}/{} burst {} packets", r.count, r.per.as_str(), r.burst)
}

fn icmp_name(t: IcmpType) -> &'static str {
    match t {
        IcmpType::RouterSolicit => "nd-router-solicit",
        IcmpType::RouterAdvert => "nd-router-advert",
        IcmpType::NeighborSolicit => "nd-neighbor-solicit",
        IcmpType::NeighborAdvert => "nd-neighbor-advert",
        IcmpType::MldListenerQuery => "mld-listener-query",
        other => other.name(),
    }
}

/// `x` or `{ x, y }`.
fn one_or_set(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

/// The nft statement for one rule (without its comment).
fn statement(rule: &Rule) -> String {
    let matches = match &rule.matches {
        Match::Loopback => "iif \"lo\"".to_string(),
        Match::Blocklisted { family, kind } => {
            format!("{} @{}", saddr(*family), set_name(*family, *kind))
        }
        Match::ConntrackInvalid => "ct state invalid".to_string(),
        Match::ConntrackEstablished => "ct state established,related".to_string(),
        Match::TcpNewWithoutSyn => "tcp flags & (fin|syn|rst|ack) != syn ct state new".to_string(),
        Match::Icmp {
            family,
            types,
            limit,
            hop_limit,
            link_local_source,
        } => {
            let names: Vec<String> = types.iter().map(|t| icmp_name(*t).to_string()).collect();
            let mut m = match family {
                Family::Ipv4 => format!("icmp type {}", one_or_set(&names)),
                Family::Ipv6 => format!("icmpv6 type {}", one_or_set(&names)),
            };
            if *link_local_source {
                m.push_str(" ip6 saddr fe80::/10");
            }
            if let Some(h) = hop_limit {
                m.push_str(&format!(" ip6 hoplimit {h}"));
            }
            if let Some(l) = limit {
                m.push_str(&format!(" limit rate {}", rate(l)));
            }
            m
        }
        Match::OverRate {
            proto,
            port,
            family,
            rate: r,
        } => format!(
            "{proto} dport {port} ct state new update @{} {{ {} limit rate over {} }}",
            meter_set(*proto, *port, *family),
            saddr(*family),
            rate(r)
        ),
        Match::Service {
            proto,
            port,
            family,
            sources,
            bound,
            ..
        } => {
            let mut m = String::new();
            if let Some(bound) = bound {
                if let Some(interface) = &bound.interface {
                    m.push_str(&format!("iifname {} ", quoted(interface, 15)));
                }
                let daddr = match bound.family() {
                    Family::Ipv4 => "ip daddr",
                    Family::Ipv6 => "ip6 daddr",
                };
                m.push_str(&format!("{daddr} {} ", bound.address.to_canonical()));
            }
            if let Some(family) = family {
                let nets: Vec<String> = sources.iter().map(ToString::to_string).collect();
                m.push_str(&format!("{} {} ", saddr(*family), one_or_set(&nets)));
            }
            m.push_str(&format!("{proto} dport {port}"));
            m
        }
        Match::Limited { limit } => format!("limit rate {}", rate(limit)),
        Match::Any => "counter".to_string(),
    };
    let action = match &rule.action {
        Action::Accept => "accept".to_string(),
        Action::Drop => "drop".to_string(),
        Action::Log { prefix } => format!("log prefix {}", quoted(prefix, 127)),
    };
    format!("{matches} {action} comment {}", quoted(&rule.label, 127))
}

/// How long a metered source is remembered after its last new connection:
/// long enough for its token bucket to refill.
fn meter_timeout(r: &Rate) -> &'static str {
    match r.per {
        Per::Second | Per::Minute => "1m",
        Per::Hour => "1h",
    }
}

/// Render the whole script.
pub fn render(ruleset: &Ruleset, header: &[String], elements: Elements) -> String {
    let mut out = String::new();
    // The contract with apply: these two lines first, so that the script
    // creates the table if missing, then deletes it, then defines it anew, in
    // one transaction.
    out.push_str(&format!(
        "table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n\n"
    ));
    for line in header {
        out.push_str(&comment_lines(line, ""));
    }
    out.push_str(&format!("table {FAMILY} {TABLE} {{\n"));

    if ruleset.blocklist.enabled {
        for (family, kind) in SETS {
            let listed: Vec<String> = match (family, elements) {
                (_, Elements::Separate) => Vec::new(),
                (Family::Ipv4, Elements::Inline) => set_elements(&ruleset.blocklist.ipv4, kind),
                (Family::Ipv6, Elements::Inline) => set_elements(&ruleset.blocklist.ipv6, kind),
            };
            let what = match kind {
                SetKind::Addresses => "single addresses: a hash set, one lookup per packet",
                SetKind::Networks => "networks and ranges: an interval set",
            };
            let _ = writeln!(out, "\t# blocklist, {what}");
            let _ = writeln!(out, "\tset {} {{", set_name(family, kind));
            let _ = writeln!(out, "\t\ttype {}", addr_type(family));
            if kind == SetKind::Networks {
                out.push_str("\t\tflags interval\n");
            }
            if !listed.is_empty() {
                out.push_str("\t\telements = {\n");
                for e in &listed {
                    let _ = writeln!(out, "\t\t\t{e},");
                }
                out.push_str("\t\t}\n");
            }
            out.push_str("\t}\n\n");
        }
    }

    for rule in &ruleset.input {
        if let Match::OverRate {
            proto,
            port,
            family,
            rate: r,
        } = &rule.matches
        {
            let _ = writeln!(
                out,
                "\t# sources recently seen connecting to {port}/{proto}, each with its own rate limit"
            );
            let _ = writeln!(out, "\tset {} {{", meter_set(*proto, *port, *family));
            let _ = writeln!(out, "\t\ttype {}", addr_type(*family));
            out.push_str("\t\tflags dynamic,timeout\n");
            let _ = writeln!(out, "\t\ttimeout {}", meter_timeout(r));
            out.push_str("\t\tsize 65535\n\t}\n\n");
        }
    }

    out.push_str("\tchain input {\n");
    out.push_str("\t\ttype filter hook input priority filter; policy drop;\n");
    for rule in &ruleset.input {
        out.push('\n');
        out.push_str(&comment_lines(&rule.reason, "\t\t"));
        let _ = writeln!(out, "\t\t{}", statement(rule));
    }
    out.push_str("\t}\n");

    match &ruleset.forward {
        Forward::Drop { reason } => {
            out.push('\n');
            out.push_str(&comment_lines(&format!("FORWARD: {reason}"), "\t"));
            out.push_str("\tchain forward {\n");
            out.push_str("\t\ttype filter hook forward priority filter; policy drop;\n");
            out.push_str("\t}\n");
        }
        Forward::LeaveAlone { reason } => {
            out.push('\n');
            out.push_str(&comment_lines(&format!("FORWARD: {reason}"), "\t"));
        }
    }

    if let Some(guard) = &ruleset.published {
        out.push_str(&published_chains(guard));
    }

    out.push('\n');
    out.push_str(&comment_lines(
        "OUTPUT: this host may start any connection; the replies come back as established",
        "\t",
    ));
    out.push_str("\tchain output {\n");
    out.push_str("\t\ttype filter hook output priority filter; policy accept;\n");
    out.push_str("\t}\n");
    out.push_str("}\n");
    out
}

/// The elements of one set as nft writes them.
fn set_elements<K: Key>(ranges: &Ranges<K>, kind: SetKind) -> Vec<String> {
    match kind {
        SetKind::Addresses => ranges.addresses().map(Key::show).collect(),
        SetKind::Networks => ranges.networks().map(|(a, b)| nft_element(a, b)).collect(),
    }
}

/// The most elements one `add element` command of a boot file carries: the
/// boot hook loads each file with its own `nft -f`, so none holds the whole
/// list (nft needs about 380 bytes per element while parsing).
pub const BATCH: usize = 50_000;

/// `add element inet autofw SET { ... }` scripts of at most [`BATCH`]
/// elements each, for every non-empty set: what the boot hook loads after
/// the table (docs/persist.md).
pub fn element_batches(sets: &SetContents) -> Vec<String> {
    let mut out = Vec::new();
    for (family, kind) in SETS {
        let elements: Vec<String> = match (family, kind) {
            (Family::Ipv4, SetKind::Addresses) => {
                sets.v4.addresses.iter().map(|a| a.show()).collect()
            }
            (Family::Ipv4, SetKind::Networks) => sets
                .v4
                .networks
                .iter()
                .map(|&(a, b)| nft_element(a, b))
                .collect(),
            (Family::Ipv6, SetKind::Addresses) => {
                sets.v6.addresses.iter().map(|a| a.show()).collect()
            }
            (Family::Ipv6, SetKind::Networks) => sets
                .v6
                .networks
                .iter()
                .map(|&(a, b)| nft_element(a, b))
                .collect(),
        };
        for chunk in elements.chunks(BATCH) {
            let mut text = format!("add element inet autofw {} {{\n", set_name(family, kind));
            for e in chunk {
                let _ = writeln!(text, "\t{e},");
            }
            text.push_str("}\n");
            out.push(text);
        }
    }
    out
}

/// The published-ports guard: a forward base chain that runs before
/// Docker's (`filter - 10`), sends new DNATed connections from outside the
/// bridges to `published_ports`, which returns for the opened ports and
/// drops the rest. It never accepts, so every other verdict is still
/// Docker's, libvirt's or the host's own.
fn published_chains(guard: &PublishedGuard) -> String {
    let mut out = String::new();
    out.push('\n');
    out.push_str(&comment_lines(
        &format!("FORWARD, published ports: {}", guard.reason),
        "\t",
    ));
    out.push_str("\tchain published {\n");
    out.push_str("\t\ttype filter hook forward priority filter - 10; policy accept;\n");
    let bridges: Vec<String> = guard.bridges.iter().map(|b| format!("\"{b}*\"")).collect();
    let _ = writeln!(
        out,
        "\t\tct state new ct status dnat iifname != {{ {} }} jump published_ports comment \"published\"",
        bridges.join(", ")
    );
    out.push_str("\t}\n\n");
    out.push_str(&comment_lines(
        "new connections to forwarded ports from outside: the opened ones go on to the host's own forward rules (return), the rest are dropped",
        "\t",
    ));
    out.push_str("\tchain published_ports {\n");
    for open in &guard.open {
        let mut m = String::new();
        if let Some(bound) = &open.bound {
            if let Some(interface) = &bound.interface {
                m.push_str(&format!("iifname {} ", quoted(interface, 15)));
            }
            let family = match bound.family() {
                Family::Ipv4 => "ip",
                Family::Ipv6 => "ip6",
            };
            m.push_str(&format!(
                "ct original {family} daddr {} ",
                bound.address.to_canonical()
            ));
        }
        if let Some(family) = open.family {
            let nets: Vec<String> = open.sources.iter().map(ToString::to_string).collect();
            m.push_str(&format!("{} {} ", saddr(family), one_or_set(&nets)));
        }
        let _ = writeln!(
            out,
            "\t\t{m}meta l4proto {} ct original proto-dst {} return comment {}",
            open.proto,
            open.port,
            quoted(&open.label, 127)
        );
    }
    let _ = writeln!(
        out,
        "\t\tlimit rate {} log prefix {} comment \"log\"",
        rate(&super::rules::LOG_RATE),
        quoted(super::rules::PUBLISHED_LOG_PREFIX, 127)
    );
    out.push_str("\t\tcounter drop comment \"published-closed\"\n");
    out.push_str("\t}\n");
    out
}
