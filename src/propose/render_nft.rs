//! Rendering a [`Ruleset`] as an `nft -f` script: one `table inet autofw`
//! (both families in one table, so IPv6 can never be forgotten), replaced in
//! one transaction, touching no other table.

use super::rate::{Per, Rate};
use super::ruleset::*;
use super::text::{comment_lines, quoted};
use crate::blocklist::{
    Key, SETS, SetContents, SetKind, address_set_name, address_shards, nft_element, set_name,
};
use crate::model::Proto;
use std::fmt::Write;

/// autofw's one table: the only one apply replaces and rollback undoes.
pub(crate) const FAMILY: &str = "inet";
pub(crate) const TABLE: &str = "autofw";

/// Where the rendered script goes; one renderer writes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The proposal file (`autofw propose`): the blocklist sets with their
    /// elements, loadable by hand with `nft -f`.
    File,
    /// What apply loads and persist saves for boot: the table's definition
    /// alone (the load or the boot file replaces the table with it,
    /// [`replacing`]), the sets declared empty; apply adds the elements in
    /// bounded batches after the table is loaded, so no nft process ever
    /// holds the whole list.
    Load,
    /// What apply shows people before loading: as [`Target::File`] but with
    /// the sets declared empty, and a
    /// sharded blocklist's alike sets and chains written as the first, one
    /// line `# … 62 more like it (blocklist_v4_01 to blocklist_v4_62)`, and
    /// the last, so the output scales with the rules, not the shards.
    Summary,
}

/// Shards written whole in a [`Target::Summary`]; more are folded.
const SHOWN_SHARDS: u32 = 7;

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
                if let Some(address) = bound.address {
                    let daddr = match Family::of(&address) {
                        Family::Ipv4 => "ip daddr",
                        Family::Ipv6 => "ip6 daddr",
                    };
                    m.push_str(&format!("{daddr} {} ", address.to_canonical()));
                }
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
    with_action(matches, rule)
}

/// `matches`, then the rule's action and its label as the comment.
fn with_action(matches: String, rule: &Rule) -> String {
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

/// `table` (a definition of `table inet autofw`, [`Target::Load`]) as a
/// script that replaces the table whether it exists or not: it creates the
/// table if missing, then deletes it, then defines it anew, in one
/// transaction. The proposal file, the boot file and a load onto a host
/// without the table are this; a load onto a live table empties it in place
/// instead (`firewall::backend::nft`).
pub(crate) fn replacing(table: &str) -> String {
    format!("table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n\n{table}")
}

/// Render the script for `target`.
pub(crate) fn render(ruleset: &Ruleset, header: &[String], target: Target) -> String {
    let table = render_table(ruleset, header, target);
    match target {
        Target::Load => table,
        Target::File | Target::Summary => replacing(&table),
    }
}

/// The header comments and the table's definition.
fn render_table(ruleset: &Ruleset, header: &[String], target: Target) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&comment_lines(line, ""));
    }
    out.push_str(&format!("table {FAMILY} {TABLE} {{\n"));

    if ruleset.blocklist.enabled {
        blocklist_sets(&mut out, &ruleset.blocklist, target);
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

    let shards = ruleset.blocklist.shards;
    out.push_str("\tchain input {\n");
    out.push_str("\t\ttype filter hook input priority filter; policy drop;\n");
    for rule in &ruleset.input {
        out.push('\n');
        out.push_str(&comment_lines(&rule.reason, "\t\t"));
        match rule.matches {
            Match::Blocklisted {
                family,
                kind: SetKind::Addresses,
            } if shards > 1 => shard_dispatch(&mut out, family, shards, &rule.label),
            _ => {
                let _ = writeln!(out, "\t\t{}", statement(rule));
            }
        }
    }
    out.push_str("\t}\n");
    for rule in &ruleset.input {
        if let Match::Blocklisted {
            family,
            kind: SetKind::Addresses,
        } = rule.matches
            && shards > 1
        {
            shard_chains(&mut out, family, shards, rule, target);
        }
    }

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

/// One set's declaration, with its elements when given.
/// `sharded`: one of a family's 64 hash sets, declared on one line when
/// empty.
fn declare_set(
    out: &mut String,
    name: &str,
    family: Family,
    kind: SetKind,
    sharded: bool,
    listed: &[String],
) {
    let interval = kind == SetKind::Networks;
    if listed.is_empty() && sharded {
        let _ = writeln!(out, "\tset {name} {{ type {}; }}", addr_type(family));
        return;
    }
    let _ = writeln!(out, "\tset {name} {{");
    let _ = writeln!(out, "\t\ttype {}", addr_type(family));
    if interval {
        out.push_str("\t\tflags interval\n");
    }
    if !listed.is_empty() {
        out.push_str("\t\telements = {\n");
        for e in listed {
            let _ = writeln!(out, "\t\t\t{e},");
        }
        out.push_str("\t\t}\n");
    }
    out.push_str("\t}\n\n");
}

/// The blocklist's sets: per family the single addresses (one hash set, or
/// [`crate::blocklist::SHARDS`] of them) and the networks (an interval set).
fn blocklist_sets(out: &mut String, blocklist: &Blocklist, target: Target) {
    let inline = target == Target::File;
    for (family, kind) in SETS {
        match kind {
            SetKind::Addresses => {
                let addresses = match family {
                    Family::Ipv4 => shown_shards(
                        family,
                        &inline_or_none(inline, || blocklist.ipv4.addresses().collect()),
                        blocklist.shards,
                    ),
                    Family::Ipv6 => shown_shards(
                        family,
                        &inline_or_none(inline, || blocklist.ipv6.addresses().collect()),
                        blocklist.shards,
                    ),
                };
                let sharded = addresses.len() > 1;
                let what = if sharded {
                    format!(
                        "single addresses: {} hash sets, an address in the one its last bits \
                         name (two lookups per packet: the bits pick the set; small sets read \
                         back fast)",
                        addresses.len()
                    )
                } else {
                    "single addresses: a hash set, one lookup per packet".to_string()
                };
                out.push_str(&comment_lines(&format!("blocklist, {what}"), "\t"));
                let names: Vec<&str> = addresses.iter().map(|(name, _)| name.as_str()).collect();
                for (i, (name, listed)) in addresses.iter().enumerate() {
                    match shown(target, i, &names) {
                        Shown::Whole => declare_set(out, name, family, kind, sharded, listed),
                        Shown::Folded(line) => out.push_str(&line),
                        Shown::Not => {}
                    }
                }
                if !out.ends_with("\n\n") {
                    out.push('\n');
                }
            }
            SetKind::Networks => {
                let listed = match (family, inline) {
                    (_, false) => Vec::new(),
                    (Family::Ipv4, true) => network_elements(blocklist.ipv4.networks()),
                    (Family::Ipv6, true) => network_elements(blocklist.ipv6.networks()),
                };
                out.push_str("\t# blocklist, networks and ranges: an interval set\n");
                declare_set(out, set_name(family, kind), family, kind, false, &listed);
            }
        }
    }
}

/// Sorted single addresses split over their hash sets, as nft writes them.
fn shown_shards<K: Key>(family: Family, sorted: &[K], shards: u32) -> Vec<(String, Vec<String>)> {
    address_shards(family, sorted, shards)
        .into_iter()
        .map(|(name, keys)| (name, keys.iter().map(|k| k.show()).collect()))
        .collect()
}

/// `make()` when the elements are written inline, else nothing.
fn inline_or_none<K>(inline: bool, make: impl FnOnce() -> Vec<K>) -> Vec<K> {
    if inline { make() } else { Vec::new() }
}

/// The elements of an interval set as nft writes them.
fn network_elements<K: Key>(ranges: impl Iterator<Item = (K, K)>) -> Vec<String> {
    ranges.map(|(a, b)| nft_element(a, b)).collect()
}

/// The shard's number as the key a masked source address has:
/// `0.0.0.7`, `::7`.
fn shard_key(family: Family, shard: u32) -> String {
    match family {
        Family::Ipv4 => std::net::Ipv4Addr::from(shard).to_string(),
        Family::Ipv6 => std::net::Ipv6Addr::from(u128::from(shard)).to_string(),
    }
}

/// The input rule of sharded single addresses: the source's low bits pick
/// the one chain (and set) that can hold it.
fn shard_dispatch(out: &mut String, family: Family, shards: u32, label: &str) {
    let _ = writeln!(
        out,
        "\t\t{} & {} vmap {{",
        saddr(family),
        shard_key(family, shards - 1)
    );
    let entries: Vec<String> = (0..shards)
        .map(|shard| {
            format!(
                "{} : jump {}",
                shard_key(family, shard),
                address_set_name(family, shard, shards)
            )
        })
        .collect();
    for line in entries.chunks(4) {
        let _ = writeln!(out, "\t\t\t{},", line.join(", "));
    }
    let _ = writeln!(out, "\t\t}} comment {}", quoted(label, 127));
}

/// One chain a shard, named as its set: the blocklist rule on that set.
fn shard_chains(out: &mut String, family: Family, shards: u32, rule: &Rule, target: Target) {
    out.push('\n');
    let names: Vec<String> = (0..shards)
        .map(|shard| address_set_name(family, shard, shards))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for (i, name) in names.iter().enumerate() {
        match shown(target, i, &names) {
            Shown::Whole => {
                let matches = format!("{} @{name}", saddr(family));
                let _ = writeln!(out, "\tchain {name} {{ {}; }}", with_action(matches, rule));
            }
            Shown::Folded(line) => out.push_str(&line),
            Shown::Not => {}
        }
    }
}

/// How the `i`th of alike shard lines `names` is written.
enum Shown {
    Whole,
    /// The one line that stands for the shards between the first and the last.
    Folded(String),
    Not,
}

/// [`Target::Summary`] writes the first and the last of more than
/// [`SHOWN_SHARDS`] alike shards, and one line for those between; every
/// other target writes them all.
fn shown(target: Target, i: usize, names: &[&str]) -> Shown {
    let n = names.len();
    if target != Target::Summary || n <= SHOWN_SHARDS as usize || i == 0 || i == n - 1 {
        return Shown::Whole;
    }
    if i > 1 {
        return Shown::Not;
    }
    Shown::Folded(format!(
        "\t# … {} more like it ({} to {})\n",
        n - 2,
        names[1],
        names[n - 2]
    ))
}

/// The most elements one boot file carries: the boot hook loads each file
/// with its own `nft -f`, so none holds the whole list (nft needs about 380
/// bytes per element while parsing).
pub(crate) const BATCH: usize = 50_000;

/// Boot files of at most [`BATCH`] elements each: `add element inet autofw
/// SET { ... }` commands for every non-empty set, a set's elements split
/// over files where a file fills up. What the boot hook loads after the
/// table (docs/persist.md).
pub(crate) fn element_batches(sets: &SetContents) -> Vec<String> {
    let mut named = shown_shards(Family::Ipv4, &sets.v4.addresses, sets.shards);
    named.push((
        set_name(Family::Ipv4, SetKind::Networks).to_string(),
        network_elements(sets.v4.networks.iter().copied()),
    ));
    named.extend(shown_shards(Family::Ipv6, &sets.v6.addresses, sets.shards));
    named.push((
        set_name(Family::Ipv6, SetKind::Networks).to_string(),
        network_elements(sets.v6.networks.iter().copied()),
    ));
    let mut out = Vec::new();
    let mut file = String::new();
    let mut room = BATCH;
    for (name, elements) in named {
        let mut rest = elements.as_slice();
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rest.len().min(room));
            let _ = writeln!(file, "add element inet autofw {name} {{");
            for e in chunk {
                let _ = writeln!(file, "\t{e},");
            }
            file.push_str("}\n");
            room -= chunk.len();
            rest = after;
            if room == 0 {
                out.push(std::mem::take(&mut file));
                room = BATCH;
            }
        }
    }
    if !file.is_empty() {
        out.push(file);
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
            if let Some(address) = bound.address {
                let family = match Family::of(&address) {
                    Family::Ipv4 => "ip",
                    Family::Ipv6 => "ip6",
                };
                m.push_str(&format!(
                    "ct original {family} daddr {} ",
                    address.to_canonical()
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::{FamilySets, SHARDS};

    fn sets(v4: Vec<u32>, networks: Vec<(u32, u32)>, shards: u32) -> SetContents {
        SetContents {
            v4: FamilySets {
                addresses: v4,
                networks,
            },
            shards,
            ..SetContents::default()
        }
    }

    /// Every element of the boot files, with the set it is added to.
    fn added(files: &[String]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut set = String::new();
        for line in files.iter().flat_map(|f| f.lines()) {
            if let Some(rest) = line.strip_prefix("add element inet autofw ") {
                set = rest.trim_end_matches(" {").to_string();
            } else if let Some(e) = line.strip_prefix('\t') {
                out.push((set.clone(), e.trim_end_matches(',').to_string()));
            }
        }
        out
    }

    #[test]
    fn boot_files_hold_at_most_a_batch_and_every_address_in_its_shard() {
        let v4: Vec<u32> = (0..120_001u32).map(|i| 0x0a00_0000 + 3 * i).collect();
        let files = element_batches(&sets(v4.clone(), vec![(0xc633_6400, 0xc633_64ff)], SHARDS));
        assert_eq!(files.len(), 3, "120,002 elements, 50,000 a file");
        let elements = added(&files);
        assert_eq!(elements.len(), 120_002);
        for f in &files {
            assert!(added(std::slice::from_ref(f)).len() <= BATCH);
        }
        for (set, e) in &elements {
            if set == "blocklist_net_v4" {
                assert_eq!(e, "198.51.100.0/24");
                continue;
            }
            let a: u32 = e.parse::<std::net::Ipv4Addr>().unwrap().into();
            assert_eq!(set, &format!("blocklist_v4_{:02}", a % 64), "{e}");
        }
        // Unsharded (a policy's few `addresses`): the one set.
        let files = element_batches(&sets(vec![0xc000_0203], vec![], 1));
        assert_eq!(added(&files), [("blocklist_v4".into(), "192.0.2.3".into())]);
    }

    #[test]
    fn the_vmap_sends_each_last_bits_value_to_the_chain_of_its_set() {
        let mut out = String::new();
        shard_dispatch(&mut out, Family::Ipv6, SHARDS, "blocklist");
        assert!(out.starts_with("\t\tip6 saddr & ::3f vmap {\n"), "{out}");
        assert!(out.contains("::2a : jump blocklist_v6_42,"), "{out}");
        assert_eq!(out.matches(": jump ").count(), SHARDS as usize);
        let mut out = String::new();
        shard_dispatch(&mut out, Family::Ipv4, SHARDS, "blocklist");
        assert!(out.contains("0.0.0.63 : jump blocklist_v4_63,"), "{out}");
    }
}
