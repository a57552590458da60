//! Forwarded ports: what the host DNATs to somewhere else (Docker's and
//! podman's published ports, libvirt/LXD port forwards, a hand-written
//! `dnat to`). Such packets never reach INPUT: they are rewritten in the nat
//! prerouting hook and cross FORWARD, so a scan of listening sockets misses
//! them (Docker with `userland-proxy: false` has no listener at all). This
//! module reads the DNAT rules the kernel holds and joins them to the
//! listeners, so that `propose` governs them like any other port.
//!
//! Pure: the texts of `nft -j list ruleset` and `iptables-save -t nat` (and
//! the container list of Docker's API) come in as strings from
//! [`super::nat`], so every rule here is tested on `fixtures/nat/`.
//!
//! What counts: a DNAT in a chain that a nat `prerouting` hook reaches
//! (directly or by jump/goto), matching a destination port. Native nft rules
//! come from `nft -j`; iptables-nft rules show there only as an opaque `xt`
//! target without their destination, so they are read from `iptables-save`.
//! REDIRECT (to this host) is left out: it lands in INPUT, where the listener
//! it redirects to is seen and governed already.

use super::core::classify;
use crate::model::{Exposure, Listener, Proto};
use crate::services::{ServiceTable, is_risky};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Port ranges wider than this are not expanded into one entry per port
/// (a `1:65535` DNAT forwards a whole address, which no per-port list says well).
const MAX_RANGE: u32 = 1024;

/// One port the host forwards: `proto` `address`:`port` → `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Forward {
    pub proto: Proto,
    /// The destination address the rule matches, or the family's wildcard
    /// (`0.0.0.0`, `::`) when it matches any.
    pub address: IpAddr,
    pub port: u16,
    /// Where it goes: `172.17.0.2:80`, `[fd00::5]:443`.
    pub to: String,
}

/// A port that a container engine (Docker, podman) says it publishes, with
/// the container's name and image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub proto: Proto,
    pub port: u16,
    pub container: String,
    pub image: String,
}

/// `ip:port`, with brackets for IPv6.
fn target(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn wildcard(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// A list of destination ports, each port of `a:b` / `a-b` ranges.
fn ports_of(spec: &str) -> Option<Vec<u16>> {
    let mut ports = Vec::new();
    for part in spec.split(',') {
        let (low, high) = match part.split_once([':', '-']) {
            Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
            None => {
                let p = part.parse::<u16>().ok()?;
                (p, p)
            }
        };
        if high < low || u32::from(high - low) >= MAX_RANGE {
            return None;
        }
        ports.extend(low..=high);
    }
    Some(ports)
}

/// Where a DNAT sends a packet that came to `port`: the target address and
/// its port (the same port when the rule names none; the matching offset
/// into a target range `p1-p2`).
fn forward_target(addr: IpAddr, to_ports: Option<(u16, u16)>, port: u16, first: u16) -> String {
    let to_port = match to_ports {
        None => port,
        Some((low, high)) if high > low => low.saturating_add(port - first).min(high),
        Some((low, _)) => low,
    };
    target(addr, to_port)
}

// ---------------------------------------------------------------- iptables

/// Split one `iptables-save` line into words, as the shell would: quoted
/// comments (`--comment "a \"b\""`) stay one word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

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

/// The forwarded ports of one `iptables-save -t nat` (or `ip6tables-save`)
/// text: DNAT rules in chains that PREROUTING reaches.
pub fn parse_iptables_nat(save: &str) -> Vec<Forward> {
    let mut in_nat = false;
    let mut rules: Vec<Vec<String>> = Vec::new();
    let mut v6 = false;
    for line in save.lines().map(str::trim) {
        if line.starts_with('*') {
            in_nat = line == "*nat";
            continue;
        }
        if in_nat && line.starts_with("-A ") {
            let w = words(line);
            v6 |= w.iter().any(|t| t.starts_with('[') || t.contains("::"));
            rules.push(w);
        }
    }
    let reached = reachable(&rules, "PREROUTING");
    let mut forwards = Vec::new();
    for rule in &rules {
        if reached.contains(rule[1].as_str()) {
            forwards.extend(iptables_dnat(rule, v6));
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
    let v6 = daddr.map_or(v6_table || to_addr.is_ipv6(), |a| a.is_ipv6());
    let address = daddr.unwrap_or(wildcard(v6));
    let first = ports.first().copied().unwrap_or(0);
    ports
        .into_iter()
        .map(|port| Forward {
            proto,
            address,
            port,
            to: forward_target(to_addr, to_ports, port, first),
        })
        .collect()
}

// --------------------------------------------------------------------- nft

/// The forwarded ports of `nft -j list ruleset`: `dnat` statements in nat
/// chains hooked at prerouting, or reached from one. iptables-nft rules (an
/// opaque `xt` DNAT) are left to [`parse_iptables_nat`].
pub fn parse_nft_ruleset(json: &str) -> Result<Vec<Forward>, String> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| format!("cannot parse `nft -j list ruleset`: {e}"))?;
    let items = value["nftables"].as_array().cloned().unwrap_or_default();
    // (family, table) → chain → rules' expression lists.
    let mut rules: BTreeMap<(String, String), BTreeMap<String, Vec<Vec<Value>>>> = BTreeMap::new();
    let mut starts: Vec<(String, String, String)> = Vec::new();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    for item in &items {
        if let Some(chain) = item.get("chain") {
            let key = (text(&chain["family"]), text(&chain["table"]));
            rules
                .entry(key.clone())
                .or_default()
                .entry(text(&chain["name"]))
                .or_default();
            if chain["hook"] == "prerouting" && chain["type"] == "nat" {
                starts.push((key.0, key.1, text(&chain["name"])));
            }
        }
        if let Some(rule) = item.get("rule") {
            let key = (text(&rule["family"]), text(&rule["table"]));
            let expr = rule["expr"].as_array().cloned().unwrap_or_default();
            rules
                .entry(key)
                .or_default()
                .entry(text(&rule["chain"]))
                .or_default()
                .push(expr);
        }
    }
    let mut forwards = Vec::new();
    for (family, table, start) in starts {
        let chains = &rules[&(family.clone(), table)];
        let mut seen = BTreeSet::from([start.clone()]);
        let mut queue = vec![start];
        while let Some(chain) = queue.pop() {
            for expr in chains.get(&chain).into_iter().flatten() {
                for e in expr {
                    for verdict in ["jump", "goto"] {
                        if let Some(t) = e[verdict]["target"].as_str()
                            && seen.insert(t.to_string())
                        {
                            queue.push(t.to_string());
                        }
                    }
                }
                forwards.extend(nft_dnat(expr, &family));
            }
        }
    }
    forwards.sort();
    forwards.dedup();
    Ok(forwards)
}

/// Ports of an nft match's right side: `8080`, `{"set": [..]}`, `{"range": [a, b]}`.
fn nft_ports(right: &Value) -> Option<Vec<u16>> {
    if let Some(p) = right.as_u64() {
        return u16::try_from(p).ok().map(|p| vec![p]);
    }
    if let Some(set) = right["set"].as_array() {
        let mut all = Vec::new();
        for item in set {
            all.extend(nft_ports(item)?);
        }
        return Some(all);
    }
    if let Some([a, b]) = right["range"].as_array().map(Vec::as_slice) {
        let (a, b) = (
            u16::try_from(a.as_u64()?).ok()?,
            u16::try_from(b.as_u64()?).ok()?,
        );
        return ports_of(&format!("{a}-{b}"));
    }
    None
}

fn nft_proto(name: &str) -> Option<Proto> {
    match name {
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        _ => None,
    }
}

/// The forwards of one native nft rule in a table of `family`.
fn nft_dnat(expr: &[Value], family: &str) -> Vec<Forward> {
    let mut proto = None;
    let mut daddr = None;
    let mut ports = None;
    let mut nat = None;
    for e in expr {
        if e.get("xt").is_some() {
            return Vec::new(); // iptables-nft: read from iptables-save
        }
        if let Some(m) = e.get("match") {
            let (left, right, op) = (&m["left"], &m["right"], m["op"].as_str().unwrap_or("=="));
            let equal = op == "==" || op == "in";
            if let Some(key) = left["meta"]["key"].as_str() {
                if key == "l4proto" && equal {
                    proto = right.as_str().and_then(nft_proto);
                }
                continue;
            }
            let payload = &left["payload"];
            let (Some(protocol), Some(field)) =
                (payload["protocol"].as_str(), payload["field"].as_str())
            else {
                continue;
            };
            match (protocol, field) {
                ("ip" | "ip6", "daddr") if equal => {
                    daddr = right.as_str().and_then(|a| a.parse().ok())
                }
                (_, "dport") => {
                    if !equal {
                        return Vec::new();
                    }
                    if let Some(p) = nft_proto(protocol) {
                        proto = Some(p);
                    }
                    ports = nft_ports(right);
                }
                _ => {}
            }
        }
        if let Some(d) = e.get("dnat") {
            nat = Some(d.clone());
        }
    }
    let (Some(proto), Some(ports), Some(nat)) = (proto, ports, nat) else {
        return Vec::new();
    };
    let Some(to_addr) = nat["addr"].as_str().and_then(|a| a.parse::<IpAddr>().ok()) else {
        return Vec::new(); // a map or an expression: not a fixed target
    };
    let to_ports = match &nat["port"] {
        Value::Number(n) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .map(|p| (p, p)),
        other => other["range"].as_array().and_then(|r| {
            Some((
                u16::try_from(r.first()?.as_u64()?).ok()?,
                u16::try_from(r.get(1)?.as_u64()?).ok()?,
            ))
        }),
    };
    let v6 = daddr.map_or(family == "ip6" || to_addr.is_ipv6(), |a: IpAddr| {
        a.is_ipv6()
    });
    let address = daddr.unwrap_or(wildcard(v6));
    let first = ports.first().copied().unwrap_or(0);
    ports
        .into_iter()
        .map(|port| Forward {
            proto,
            address,
            port,
            to: forward_target(to_addr, to_ports, port, first),
        })
        .collect()
}

// -------------------------------------------------------------- containers

/// The ports Docker's (or podman's Docker-compatible) `GET /containers/json`
/// says are published. Anything unexpected gives an empty list: container
/// names are a courtesy, never a reason to fail a scan.
pub fn parse_containers(json: &str) -> Vec<Published> {
    let Ok(Value::Array(containers)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in &containers {
        let name = c["Names"][0]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let image = c["Image"].as_str().unwrap_or_default().to_string();
        for p in c["Ports"].as_array().into_iter().flatten() {
            let (Some(port), Some(proto)) = (
                p["PublicPort"].as_u64().and_then(|p| u16::try_from(p).ok()),
                p["Type"].as_str().and_then(nft_proto),
            ) else {
                continue;
            };
            out.push(Published {
                proto,
                port,
                container: name.clone(),
                image: image.clone(),
            });
        }
    }
    out.sort_by(|a, b| (a.proto, a.port, &a.container).cmp(&(b.proto, b.port, &b.container)));
    out.dedup();
    out
}

/// `docker.io/library/redis:7-alpine` → `redis`.
fn image_base(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// The service a published port is, by what the container runs: a known
/// service name as image or container name (`redis`, `postgres` → as its
/// program), else the port's name.
fn container_service(
    names: &ServiceTable,
    proto: Proto,
    port: u16,
    published: &Published,
) -> String {
    let by_port = names.name_listener(proto, port, &[]);
    for candidate in [image_base(&published.image), published.container.as_str()] {
        if names.ports_of(candidate).is_some() {
            return candidate.to_string();
        }
        // A program's name (`postgres`, `redis-server`) names its service.
        let by_program = names.name_listener(proto, port, &[candidate]);
        if by_program != by_port {
            return by_program;
        }
    }
    by_port
}

// -------------------------------------------------------------------- join

/// Join forwarded ports to the listeners: a listener on the same (proto,
/// port) and address, or the `docker-proxy` on the family's wildcard that
/// stands in for a wildcard forward, gets `forwarded_to` (one entry, not
/// two); the others become listeners of their own, with no process. Every
/// forwarded port that an engine publishes gets the container's name, and
/// the service the container runs. Sorted as [`super::core::listeners`] sorts.
pub fn join(
    mut listeners: Vec<Listener>,
    forwards: &[Forward],
    published: &[Published],
    names: &ServiceTable,
) -> Vec<Listener> {
    // One target per (proto, address, port): the first rule wins, as in the kernel.
    let mut firsts: BTreeMap<(Proto, u16, IpAddr), &Forward> = BTreeMap::new();
    for f in forwards {
        firsts.entry((f.proto, f.port, f.address)).or_insert(f);
    }
    for ((proto, port, address), forward) in firsts {
        let engine = published
            .iter()
            .find(|p| p.proto == proto && p.port == port);
        let index = listeners
            .iter()
            .position(|l| l.proto == proto && l.port == port && l.address == address);
        let listener = match index {
            Some(i) => &mut listeners[i],
            None => {
                let exposure = classify(address);
                listeners.push(Listener {
                    proto,
                    address,
                    port,
                    exposure,
                    service: names.name_listener(proto, port, &[]),
                    process: String::new(),
                    pids: Vec::new(),
                    risky: false,
                    forwarded_to: None,
                    container: None,
                });
                listeners.last_mut().expect("just pushed")
            }
        };
        listener.forwarded_to = Some(forward.to.clone());
        if let Some(engine) = engine {
            listener.container = Some(engine.container.clone());
            listener.service = container_service(names, proto, port, engine);
        }
        listener.risky = listener.exposure != Exposure::Loopback && is_risky(&listener.service);
    }
    listeners.sort_by(|a, b| (a.proto, a.port, a.address).cmp(&(b.proto, b.port, b.address)));
    listeners
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> &'static str {
        match name {
            "iptables-docker.save" => include_str!("../../fixtures/nat/iptables-docker.save"),
            "ip6tables.save" => include_str!("../../fixtures/nat/ip6tables.save"),
            "nft-mixed.json" => include_str!("../../fixtures/nat/nft-mixed.json"),
            other => panic!("no fixture {other}"),
        }
    }

    fn show(forwards: &[Forward]) -> Vec<String> {
        forwards
            .iter()
            .map(|f| format!("{} {} {} -> {}", f.proto, f.address, f.port, f.to))
            .collect()
    }

    #[test]
    fn iptables_docker_and_hand_written_forwards() {
        let got = show(&parse_iptables_nat(fixture("iptables-docker.save")));
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
        let got = show(&parse_iptables_nat(fixture("ip6tables.save")));
        assert_eq!(
            got,
            [
                "tcp :: 8443 -> [fd00::5]:443",
                "udp 2001:db8::10 51820 -> [fd00::6]:51820"
            ]
        );
        assert_eq!(parse_iptables_nat(""), []);
        assert_eq!(
            parse_iptables_nat("*filter\n-A INPUT -j DNAT\nCOMMIT\n"),
            []
        );
    }

    #[test]
    fn nft_native_forwards_skip_iptables_nft_rules() {
        let got = show(&parse_nft_ruleset(fixture("nft-mixed.json")).unwrap());
        assert_eq!(
            got,
            [
                "tcp 0.0.0.0 8080 -> 10.0.0.2:80",
                "tcp 203.0.113.10 2222 -> 10.0.0.3:2222",
                "tcp 203.0.113.10 2223 -> 10.0.0.3:2223",
                "tcp :: 7000 -> [fd00::2]:70",
                "tcp 2001:db8::1 443 -> [fd00::3]:443",
                "udp 0.0.0.0 5000 -> 10.0.0.4:6000",
                "udp 0.0.0.0 5001 -> 10.0.0.4:6000",
                "udp 0.0.0.0 5002 -> 10.0.0.4:6000",
            ],
            "not: the output hook, the opaque xt DNATs of iptables-nft"
        );
        assert!(parse_nft_ruleset("not json").is_err());
        assert_eq!(parse_nft_ruleset(r#"{"nftables": []}"#).unwrap(), []);
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

    fn listener(proto: Proto, address: &str, port: u16, process: &str) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        Listener {
            proto,
            address,
            port,
            exposure: classify(address),
            service: "unknown".into(),
            process: process.into(),
            pids: vec![42],
            risky: false,
            forwarded_to: None,
            container: None,
        }
    }

    #[test]
    fn join_merges_docker_proxy_and_names_containers() {
        let names = ServiceTable::builtin();
        let listeners = vec![
            listener(Proto::Tcp, "0.0.0.0", 8080, "docker-proxy"),
            listener(Proto::Tcp, "::", 8080, "docker-proxy"),
        ];
        let forwards = [
            Forward {
                proto: Proto::Tcp,
                address: "0.0.0.0".parse().unwrap(),
                port: 8080,
                to: "172.17.0.2:80".into(),
            },
            Forward {
                proto: Proto::Tcp,
                address: "0.0.0.0".parse().unwrap(),
                port: 6379,
                to: "172.17.0.3:6379".into(),
            },
            Forward {
                proto: Proto::Tcp,
                address: "0.0.0.0".parse().unwrap(),
                port: 9000,
                to: "172.17.0.4:9000".into(),
            },
        ];
        let published = parse_containers(
            r#"[{"Names": ["/web"], "Image": "local/busybox:latest", "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 81, "Type": "tcp"}]},
                {"Names": ["/cache"], "Image": "docker.io/library/redis:7", "Ports": [{"IP": "0.0.0.0", "PrivatePort": 6379, "PublicPort": 6379, "Type": "tcp"}]},
                {"Names": ["/pg"], "Image": "postgres@sha256:00", "Ports": [{"PrivatePort": 5432, "PublicPort": 9000, "Type": "tcp"}]}]"#,
        );
        assert_eq!(published.len(), 3);
        let got: Vec<String> = join(listeners, &forwards, &published, &names)
            .iter()
            .map(|l| {
                format!(
                    "{} {} {} {} [{}] {:?} {:?} {}",
                    l.proto,
                    l.address,
                    l.port,
                    l.service,
                    l.process,
                    l.forwarded_to,
                    l.container,
                    l.risky
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                r#"tcp 0.0.0.0 6379 redis [] Some("172.17.0.3:6379") Some("cache") true"#,
                r#"tcp 0.0.0.0 8080 http-alt [docker-proxy] Some("172.17.0.2:80") Some("web") false"#,
                // The IPv6 proxy reaches the container through INPUT: a listener as before.
                "tcp :: 8080 unknown [docker-proxy] None None false",
                r#"tcp 0.0.0.0 9000 postgresql [] Some("172.17.0.4:9000") Some("pg") true"#,
            ]
        );
        assert_eq!(parse_containers("{\"message\": \"denied\"}"), []);
    }
}
