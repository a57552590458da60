//! DNATs in `nft -j -t list ruleset` (serde_json): native `dnat` statements in
//! nat chains hooked at prerouting or reached from one. iptables-nft rules
//! show there as an opaque `xt` DNAT without their target and are skipped:
//! [`super::iptables`] reads them from `iptables-save`. Pure.

use super::{Forward, forwards_of_rule, port_range};
use crate::model::Proto;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One table's chains, each with its rules' expression lists.
type Chains = BTreeMap<String, Vec<Vec<Value>>>;

/// The forwarded ports of `nft -j -t list ruleset`: `dnat` statements in nat
/// chains hooked at prerouting, or reached from one. iptables-nft rules (an
/// opaque `xt` DNAT) are left to [`parse_iptables_nat`].
pub(crate) fn parse_nft_ruleset(json: &str) -> Result<Vec<Forward>, String> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| format!("cannot parse `nft -j -t list ruleset`: {e}"))?;
    let items = value["nftables"].as_array().cloned().unwrap_or_default();
    // (family, table) → chain → rules' expression lists.
    let mut rules: BTreeMap<(String, String), Chains> = BTreeMap::new();
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
        return port_range(a, b).map(Iterator::collect);
    }
    None
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
                    proto = right.as_str().and_then(Proto::from_name);
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
                    if let Some(p) = Proto::from_name(protocol) {
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
    forwards_of_rule(proto, daddr, family == "ip6", ports, to_addr, to_ports)
}

#[cfg(test)]
mod tests {
    use super::super::shown;
    use super::*;

    const NFT_MIXED: &str = include_str!("../../../fixtures/nat/nft-mixed.json");

    #[test]
    fn nft_native_forwards_skip_iptables_nft_rules() {
        let got = shown(&parse_nft_ruleset(NFT_MIXED).unwrap());
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
}
