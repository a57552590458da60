//! From the judge's probes to what the operator is told. Pure.
//!
//! A port is a foreign drop when autofw's rules alone let the probe in and
//! autofw's rules together with the host's other filters do not. Who drops
//! it: the filter that, loaded alone with autofw's rules, still stops it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::filters::Foreign;
use crate::model::Proto;
use crate::propose::ruleset::Family;
use crate::record::Opening;
use serde::{Deserialize, Serialize};

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Verdict {
    Open,
    Rejected,
    Dropped,
}

/// One probe's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub proto: Proto,
    pub port: u16,
    pub v6: bool,
    pub verdict: Verdict,
    /// Milliseconds from the probe's start to its answer; for a drop
    /// (silence), the judge's deadline.
    #[serde(default)]
    pub after_ms: u32,
}

/// One port in one family to probe: (proto, port, IPv6).
pub(crate) type Probe = (Proto, u16, bool);

/// How the judge decided one opened port in one family: what `status
/// --json` and `apply --json` show as `other_filters.ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortJudgement {
    pub proto: Proto,
    pub port: u16,
    pub family: Family,
    /// `probed` in the scratch namespace, or `by-rule`: not probed, because
    /// autofw's own rule admits it only where no probe from the scratch
    /// address can come from (`rule` says where).
    pub judged: Judging,
    /// The probe's answer, with everything loaded (`probed` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Milliseconds until that answer; for `dropped`, the judge's deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u32>,
    /// Where autofw's rule admits it (`by-rule` only): "to 192.168.122.1
    /// on virbr0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// See [`PortJudgement::judged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Judging {
    Probed,
    ByRule,
}

impl PortJudgement {
    pub(crate) fn probed(o: &Outcome) -> PortJudgement {
        PortJudgement {
            proto: o.proto,
            port: o.port,
            family: family(o.v6),
            judged: Judging::Probed,
            verdict: Some(o.verdict),
            after_ms: Some(o.after_ms),
            rule: None,
        }
    }
}

fn family(v6: bool) -> Family {
    if v6 { Family::Ipv6 } else { Family::Ipv4 }
}

/// Which opened ports a probe from the scratch namespace's client (`client`
/// per family, arriving on `interface` at `server`) can reach through
/// autofw's own rules, and which autofw's rules keep from it: a port whose
/// every opening names another destination address, interface, source
/// network or family. Those are judged by the rule and not probed: a probe
/// would only wait out the deadline, and autofw's rules alone would drop it
/// as well, so no other filter could be blamed for it.
pub(crate) fn scratch_reach(
    openings: &[Opening],
    interface: &str,
    client: [IpAddr; 2],
    server: [IpAddr; 2],
) -> (Vec<Probe>, Vec<PortJudgement>) {
    let mut ports: Vec<(Proto, u16)> = openings.iter().map(|o| (o.proto, o.port)).collect();
    ports.sort_by_key(|&(proto, port)| (port, proto));
    ports.dedup();
    let (mut probes, mut by_rule) = (Vec::new(), Vec::new());
    for (proto, port) in ports {
        for v6 in [false, true] {
            let i = usize::from(v6);
            let (from, to) = (client[i], server[i]);
            let mine: Vec<&Opening> = openings
                .iter()
                .filter(|o| (o.proto, o.port) == (proto, port))
                .filter(|o| o.family.is_none_or(|f| f == family(v6)))
                .collect();
            let reaches = |o: &&Opening| {
                (o.sources.is_empty() || o.sources.iter().any(|n| n.contains(&from)))
                    && o.bound.as_ref().is_none_or(|b| {
                        b.address.is_none_or(|a| a.to_canonical() == to)
                            && b.interface.as_deref().is_none_or(|n| n == interface)
                    })
            };
            if mine.iter().any(reaches) {
                probes.push((proto, port, v6));
            } else if !mine.is_empty() {
                by_rule.push(PortJudgement {
                    proto,
                    port,
                    family: family(v6),
                    judged: Judging::ByRule,
                    verdict: None,
                    after_ms: None,
                    rule: Some(mine.iter().map(|o| reach(o)).collect::<Vec<_>>().join("; ")),
                });
            }
        }
    }
    (probes, by_rule)
}

/// Where one opening admits: "to 192.168.122.1 on virbr0", "from
/// 10.0.0.0/8".
fn reach(o: &Opening) -> String {
    let mut parts = Vec::new();
    if let Some(b) = &o.bound {
        if let Some(address) = b.address {
            parts.push(format!("to {address}"));
        }
        if let Some(dev) = &b.interface {
            parts.push(format!("on {dev}"));
        }
    }
    if !o.sources.is_empty() {
        let nets: Vec<String> = o.sources.iter().map(ToString::to_string).collect();
        parts.push(format!("from {}", nets.join(", ")));
    }
    parts.join(" ")
}

/// The note that says which ports were judged by autofw's rule, not by a
/// probe: "tcp/53 (to 192.168.122.1 on virbr0), udp/67 (IPv4: on virbr0)".
pub(crate) fn by_rule_note(ports: &[PortJudgement]) -> Option<String> {
    let mut by_port: BTreeMap<(u16, Proto), Vec<&PortJudgement>> = BTreeMap::new();
    for p in ports.iter().filter(|p| p.judged == Judging::ByRule) {
        by_port.entry((p.port, p.proto)).or_default().push(p);
    }
    if by_port.is_empty() {
        return None;
    }
    let list: Vec<String> = by_port
        .iter()
        .map(|((port, proto), fams)| {
            let mut rules: Vec<&str> = fams.iter().filter_map(|p| p.rule.as_deref()).collect();
            rules.dedup();
            let only = match fams.as_slice() {
                [one] => format!("{}: ", one.family.pick("IPv4", "IPv6")),
                _ => String::new(),
            };
            format!("{proto}/{port} ({only}{})", rules.join("; "))
        })
        .collect();
    Some(format!(
        "the other filters were not probed on {}: autofw's own rules admit these only where no \
         probe from the scratch namespace comes from, so autofw's rule alone decides them there",
        list.join(", ")
    ))
}

/// Ports autofw's rules alone accept and the whole host does not.
pub(crate) fn suspects(alone: &[Outcome], together: &[Outcome]) -> Vec<Outcome> {
    together
        .iter()
        .filter(|o| o.verdict != Verdict::Open)
        .filter(|o| {
            alone.iter().any(|a| {
                (a.proto, a.port, a.v6) == (o.proto, o.port, o.v6) && a.verdict == Verdict::Open
            })
        })
        .copied()
        .collect()
}

/// Which foreign filter (index into the list) stops each suspect, from one
/// run per filter (`per_filter[i]`: filter `i` with autofw's rules). `None`
/// when no filter alone stops it (only their combination does).
pub(crate) fn attribute(
    suspects: &[Outcome],
    per_filter: &[Vec<Outcome>],
) -> Vec<(Outcome, Option<usize>)> {
    suspects
        .iter()
        .map(|s| {
            let by = per_filter.iter().position(|run| {
                run.iter().any(|o| {
                    (o.proto, o.port, o.v6) == (s.proto, s.port, s.v6) && o.verdict != Verdict::Open
                })
            });
            (*s, by)
        })
        .collect()
}

/// One thing to tell the operator: what stops which ports, and how to
/// resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ForeignDrop {
    pub message: String,
    pub fix: String,
    /// The filter is iptables-legacy's.
    pub legacy: bool,
}

/// Who stops packets (as said, and which filter: `None` for several
/// together), and the verb: one message each.
type Stopper = (String, Option<usize>, &'static str);

/// The families a (port, proto) was stopped in: (IPv4, IPv6).
type Families = (bool, bool);

/// The messages, one per filter and verdict: "iptables-nft's filter INPUT
/// (policy drop) drops tcp/80 that autofw opens".
pub(crate) fn messages(
    foreign: &[Foreign],
    attributed: &[(Outcome, Option<usize>)],
) -> Vec<ForeignDrop> {
    let mut groups: BTreeMap<Stopper, BTreeMap<(u16, Proto), Families>> = BTreeMap::new();
    for (o, by) in attributed {
        let who = match by {
            Some(i) => foreign[*i].dropper(o.v6),
            None => format!(
                "the other filters together ({})",
                foreign
                    .iter()
                    .map(Foreign::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let verb = if o.verdict == Verdict::Rejected {
            "rejects"
        } else {
            "drops"
        };
        let families = groups
            .entry((who, *by, verb))
            .or_default()
            .entry((o.port, o.proto))
            .or_default();
        if o.v6 {
            families.1 = true;
        } else {
            families.0 = true;
        }
    }
    groups
        .into_iter()
        .map(|((who, by, verb), ports)| {
            let list: Vec<String> = ports
                .iter()
                .map(|((port, proto), families)| {
                    let only = match families {
                        (true, false) if !who.starts_with("ip") => " (IPv4)",
                        (false, true) if !who.starts_with("ip") => " (IPv6)",
                        _ => "",
                    };
                    format!("{proto}/{port}{only}")
                })
                .collect();
            let what = list.join(", ");
            let legacy = matches!(by.map(|i| &foreign[i]), Some(Foreign::IptablesLegacy { .. }));
            // "the other filters together drop", not "drops".
            let verb = if by.is_none() { verb.trim_end_matches('s') } else { verb };
            let message = if legacy {
                format!(
                    "{who} {verb} {what} before autofw's rules see it: legacy tables filter \
                     packets too, and `nft list ruleset` does not show them"
                )
            } else {
                format!("{who} {verb} {what} that autofw opens")
            };
            let fix = match by {
                Some(i) => foreign[i].resolution(&what),
                None => format!(
                    "disable the other filters and let autofw alone decide, or open {what} in them too"
                ),
            };
            ForeignDrop { message, fix, legacy }
        })
        .collect()
}

/// "iptables-legacy tables hold rules (...): {effect}, but ... invisible".
pub(crate) fn legacy_note(summary: &[String], effect: &str) -> String {
    format!(
        "iptables-legacy tables hold rules ({}): {effect}, but they filter packets too, and \
         `nft list ruleset` does not show them (`iptables-legacy-save` does)",
        summary.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(port: u16, v6: bool, verdict: Verdict) -> Outcome {
        Outcome {
            proto: Proto::Tcp,
            port,
            v6,
            verdict,
            after_ms: 0,
        }
    }

    #[test]
    fn ports_autofw_scopes_away_from_the_scratch_address_are_judged_by_the_rule() {
        use crate::propose::ruleset::Bound;
        let client: [IpAddr; 2] = [
            "203.0.113.2".parse().unwrap(),
            "2001:db8:a0f::2".parse().unwrap(),
        ];
        let server: [IpAddr; 2] = [
            "203.0.113.1".parse().unwrap(),
            "2001:db8:a0f::1".parse().unwrap(),
        ];
        let bound = |addr: &str, dev: Option<&str>| {
            Some(Bound {
                address: Some(addr.parse().unwrap()),
                interface: dev.map(str::to_string),
            })
        };
        let openings = [
            Opening::anyone(Proto::Tcp, 22),
            // libvirt's dnsmasq: DNS on the bridge's address, DHCP on the bridge.
            Opening {
                family: Some(Family::Ipv4),
                bound: bound("192.168.122.1", Some("virbr0")),
                ..Opening::anyone(Proto::Tcp, 53)
            },
            Opening {
                family: Some(Family::Ipv4),
                bound: bound("192.168.122.1", Some("virbr0")),
                ..Opening::anyone(Proto::Udp, 53)
            },
            // Sources elsewhere, and a listener bound to the scratch address itself.
            Opening {
                sources: vec!["10.0.0.0/8".parse().unwrap()],
                ..Opening::anyone(Proto::Tcp, 5432)
            },
            Opening {
                family: Some(Family::Ipv4),
                bound: bound("203.0.113.1", None),
                ..Opening::anyone(Proto::Tcp, 8080)
            },
        ];
        let (probes, by_rule) = scratch_reach(&openings, "eth0", client, server);
        assert_eq!(
            probes,
            [
                (Proto::Tcp, 22, false),
                (Proto::Tcp, 22, true),
                (Proto::Tcp, 8080, false)
            ]
        );
        let judged: Vec<(Proto, u16, Family, Option<&str>)> = by_rule
            .iter()
            .map(|p| (p.proto, p.port, p.family, p.rule.as_deref()))
            .collect();
        assert_eq!(
            judged,
            [
                (
                    Proto::Tcp,
                    53,
                    Family::Ipv4,
                    Some("to 192.168.122.1 on virbr0")
                ),
                (
                    Proto::Udp,
                    53,
                    Family::Ipv4,
                    Some("to 192.168.122.1 on virbr0")
                ),
                (Proto::Tcp, 5432, Family::Ipv4, Some("from 10.0.0.0/8")),
                (Proto::Tcp, 5432, Family::Ipv6, Some("from 10.0.0.0/8")),
            ]
        );
        assert!(by_rule.iter().all(|p| p.judged == Judging::ByRule));
        assert_eq!(
            by_rule_note(&by_rule).unwrap(),
            "the other filters were not probed on tcp/53 (IPv4: to 192.168.122.1 on virbr0), \
             udp/53 (IPv4: to 192.168.122.1 on virbr0), tcp/5432 (from 10.0.0.0/8): autofw's own \
             rules admit these only where no probe from the scratch namespace comes from, so \
             autofw's rule alone decides them there"
        );
        // The same opening matched on the uplink's name is probed.
        let on_uplink = [Opening {
            bound: bound("203.0.113.1", Some("eth0")),
            ..Opening::anyone(Proto::Udp, 67)
        }];
        assert_eq!(
            scratch_reach(&on_uplink, "eth0", client, server).0,
            [(Proto::Udp, 67, false)]
        );
        assert_eq!(scratch_reach(&on_uplink, "ens3", client, server).0, []);
        // libvirt's DHCP: a wildcard bound to the bridge (`0.0.0.0%virbr0`),
        // both families, any address, that device only.
        let dhcp = [Opening {
            bound: Some(Bound {
                address: None,
                interface: Some("virbr0".into()),
            }),
            ..Opening::anyone(Proto::Udp, 67)
        }];
        let (probes, by_rule) = scratch_reach(&dhcp, "eth0", client, server);
        assert_eq!(probes, []);
        let rules: Vec<(Family, Option<&str>)> = by_rule
            .iter()
            .map(|p| (p.family, p.rule.as_deref()))
            .collect();
        assert_eq!(
            rules,
            [
                (Family::Ipv4, Some("on virbr0")),
                (Family::Ipv6, Some("on virbr0"))
            ]
        );
        assert_eq!(
            scratch_reach(&dhcp, "virbr0", client, server).0,
            [(Proto::Udp, 67, false), (Proto::Udp, 67, true)]
        );
    }

    const UFW_LEFTOVER: &str =
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";

    #[test]
    fn a_left_over_policy_drop_is_named_with_the_ports_it_stops() {
        let alone = [
            o(22, false, Verdict::Open),
            o(80, false, Verdict::Open),
            o(80, true, Verdict::Open),
        ];
        let together = [
            o(22, false, Verdict::Open),
            o(80, false, Verdict::Dropped),
            o(80, true, Verdict::Open),
        ];
        let s = suspects(&alone, &together);
        assert_eq!(s, [o(80, false, Verdict::Dropped)]);
        let foreign = [Foreign::IptablesNft {
            v4: UFW_LEFTOVER.into(),
            v6: String::new(),
        }];
        let drops = messages(&foreign, &attribute(&s, &[together.to_vec()]));
        assert_eq!(drops.len(), 1);
        assert_eq!(
            drops[0].message,
            "iptables-nft's filter INPUT (policy drop) drops tcp/80 that autofw opens"
        );
        assert!(drops[0].fix.contains("ufw disable"), "{}", drops[0].fix);
    }

    #[test]
    fn a_port_autofw_itself_drops_is_not_blamed_on_others() {
        let alone = [o(80, false, Verdict::Dropped)];
        let together = [o(80, false, Verdict::Dropped)];
        assert!(suspects(&alone, &together).is_empty());
    }

    #[test]
    fn legacy_drops_say_they_are_invisible_and_combinations_are_named() {
        let foreign = [
            Foreign::IptablesLegacy {
                v4: UFW_LEFTOVER.into(),
                v6: String::new(),
            },
            Foreign::NftTable {
                family: "inet".into(),
                name: "filter".into(),
                text: "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n".into(),
            },
        ];
        let drops = messages(
            &foreign,
            &[
                (o(80, false, Verdict::Dropped), Some(0)),
                (o(443, true, Verdict::Rejected), Some(1)),
                (o(8080, false, Verdict::Dropped), None),
            ],
        );
        let texts: Vec<&str> = drops.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            texts,
            [
                "iptables-legacy's filter INPUT (policy drop) drops tcp/80 before autofw's rules \
                 see it: legacy tables filter packets too, and `nft list ruleset` does not show them",
                "nftables' table inet filter chain input rejects tcp/443 (IPv6) that autofw opens",
                "the other filters together (iptables-legacy, nftables' table inet filter) drop \
                 tcp/8080 (IPv4) that autofw opens",
            ]
        );
        assert!(drops[0].legacy && !drops[1].legacy);
    }
}
