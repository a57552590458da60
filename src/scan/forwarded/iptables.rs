//! DNATs in `iptables-save -t nat` text (iptables-nft and iptables-legacy
//! alike): `-j DNAT` rules with destination ports, in chains PREROUTING
//! reaches by `-j`/`-g`. Pure.

use super::{Forward, forwards_of_rule, ports_of};
use crate::iptables_save::words;
use crate::model::Proto;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// `172.17.0.2:80`, `10.1.0.6:3000-3001`, `[fd00::5]:443`, `fd00::6`.
fn parse_to_destination(text: &str) -> Option<(IpAddr, Option<(u16, u16)>)> {
    let (addr, ports) = if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        (addr, after.strip_prefix(':'))
    } else if text.matches(':').count() > 1 {
        (text, None) // a bare IPv6 address
    } else {
        match text.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        }
    };
    // A range of target addresses (`a-b`): the first stands for them.
    let addr: IpAddr = addr.split('-').next()?.parse().ok()?;
    let ports = match ports {
        None => None,
        Some(p) => Some(match p.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let one = p.parse().ok()?;
                (one, one)
            }
        }),
    };
    Some((addr, ports))
}

/// The forwarded ports of one `iptables-save -t nat` (or, with `ipv6`,
/// `ip6tables-save -t nat`) text: DNAT rules in chains that PREROUTING
/// reaches. `ipv6` gives the wildcard of a rule that matches any address.
pub(crate) fn parse_iptables_nat(save: &str, ipv6: bool) -> Vec<Forward> {
    let mut in_nat = false;
    let mut rules: Vec<Vec<String>> = Vec::new();
    for line in save.lines().map(str::trim) {
        if line.starts_with('*') {
            in_nat = line == "*nat";
            continue;
        }
        if in_nat && line.starts_with("-A ") {
            rules.push(words(line));
        }
    }
    let reached = reachable(&rules, "PREROUTING");
    let mut forwards = Vec::new();
    for rule in &rules {
        if reached.contains(rule[1].as_str()) {
            forwards.extend(iptables_dnat(rule, ipv6));
        }
    }
    forwards.sort();
    forwards.dedup();
    forwards
}

/// Chains reachable from `start` by `-j`/`-g` (iptables-save words).
fn reachable<'a>(rules: &'a [Vec<String>], start: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([start]);
    let mut queue = vec![start];
    while let Some(chain) = queue.pop() {
        for rule in rules
            .iter()
            .filter(|r| r.get(1).map(String::as_str) == Some(chain))
        {
            for pair in rule.windows(2) {
                if (pair[0] == "-j" || pair[0] == "-g") && seen.insert(pair[1].as_str()) {
                    queue.push(pair[1].as_str());
                }
            }
        }
    }
    seen
}

/// The forwards of one `-A CHAIN ...` rule: none unless it is a DNAT on
/// destination ports that are not negated.
fn iptables_dnat(rule: &[String], v6_table: bool) -> Vec<Forward> {
    let mut proto = None;
    let mut daddr = None;
    let mut ports = None;
    let mut to = None;
    let mut dnat = false;
    let mut negated = false;
    let mut i = 2;
    while i < rule.len() {
        let word = rule[i].as_str();
        let next = rule.get(i + 1).map(String::as_str);
        match (word, next) {
            ("!", _) => {
                negated = true;
                i += 1;
                continue;
            }
            ("-p" | "--protocol", Some(p)) if !negated => {
                proto = match p {
                    "tcp" | "6" => Some(Proto::Tcp),
                    "udp" | "17" => Some(Proto::Udp),
                    _ => return Vec::new(),
                };
            }
            ("-d" | "--destination", Some(d)) if !negated => {
                let addr = d.split('/').next().unwrap_or(d);
                daddr = addr.parse::<IpAddr>().ok();
            }
            ("--dport" | "--destination-port" | "--dports" | "--destination-ports", Some(p)) => {
                if negated {
                    return Vec::new(); // every port but some: not a port forward
                }
                ports = ports_of(p);
            }
            ("-j", Some(t)) => dnat = t == "DNAT",
            ("--to-destination", Some(t)) => to = parse_to_destination(t),
            _ => {}
        }
        // An option and its value; a lone flag advances by one next round.
        i += if next.is_some_and(|n| !n.starts_with('-') || n == "-") {
            2
        } else {
            1
        };
        negated = false;
    }
    let (Some(proto), Some(ports), Some((to_addr, to_ports)), true) = (proto, ports, to, dnat)
    else {
        return Vec::new();
    };
    forwards_of_rule(proto, daddr, v6_table, ports, to_addr, to_ports)
}

#[cfg(test)]
mod tests {
    use super::super::shown;
    use super::*;

    const IPTABLES_DOCKER: &str = include_str!("../../../fixtures/nat/iptables-docker.save");
    const IP6TABLES: &str = include_str!("../../../fixtures/nat/ip6tables.save");

    #[test]
    fn iptables_docker_and_hand_written_forwards() {
        let got = shown(&parse_iptables_nat(IPTABLES_DOCKER, false));
        assert_eq!(
            got,
            [
                "tcp 0.0.0.0 3000 -> 10.1.0.6:3000",
                "tcp 0.0.0.0 3001 -> 10.1.0.6:3001",
                "tcp 0.0.0.0 8080 -> 172.17.0.2:80",
                "tcp 127.0.0.1 6380 -> 172.17.0.4:6379",
                "udp 0.0.0.0 500 -> 10.1.0.5:500",
                "udp 0.0.0.0 4500 -> 10.1.0.5:4500",
                "udp 203.0.113.10 5353 -> 172.17.0.5:53",
            ],
            "not: REDIRECT (lands in INPUT), OUTPUT-only, an unreachable chain, `! --dport`"
        );
        let got = shown(&parse_iptables_nat(IP6TABLES, true));
        assert_eq!(
            got,
            [
                "tcp :: 8443 -> [fd00::5]:443",
                "udp 2001:db8::10 51820 -> [fd00::6]:51820"
            ]
        );
        assert_eq!(parse_iptables_nat("", false), []);
        assert_eq!(
            parse_iptables_nat("*filter\n-A INPUT -j DNAT\nCOMMIT\n", false),
            []
        );
    }

    #[test]
    fn to_destination_forms() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_to_destination("172.17.0.2:80"),
            Some((ip("172.17.0.2"), Some((80, 80))))
        );
        assert_eq!(
            parse_to_destination("10.0.0.1"),
            Some((ip("10.0.0.1"), None))
        );
        assert_eq!(
            parse_to_destination("[fd00::5]:443"),
            Some((ip("fd00::5"), Some((443, 443))))
        );
        assert_eq!(parse_to_destination("fd00::6"), Some((ip("fd00::6"), None)));
        assert_eq!(
            parse_to_destination("10.0.0.1-10.0.0.3:80-81"),
            Some((ip("10.0.0.1"), Some((80, 81))))
        );
        assert_eq!(parse_to_destination("nonsense"), None);
        assert_eq!(ports_of("1:65535"), None, "too wide to list");
    }
}
