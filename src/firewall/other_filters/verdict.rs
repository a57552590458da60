//! From the judge's probes to what the operator is told. Pure.
//!
//! A port is a foreign drop when autofw's rules alone let the probe in and
//! autofw's rules together with the host's other filters do not. Who drops
//! it: the filter that, loaded alone with autofw's rules, still stops it.

use std::collections::BTreeMap;

use super::filters::Foreign;
use crate::model::Proto;
use serde::{Deserialize, Serialize};

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Open,
    Rejected,
    Dropped,
}

/// One probe's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub proto: Proto,
    pub port: u16,
    pub v6: bool,
    pub verdict: Verdict,
}

/// Ports autofw's rules alone accept and the whole host does not.
pub fn suspects(alone: &[Outcome], together: &[Outcome]) -> Vec<Outcome> {
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
pub fn attribute(
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignDrop {
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
pub fn messages(foreign: &[Foreign], attributed: &[(Outcome, Option<usize>)]) -> Vec<ForeignDrop> {
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
pub fn legacy_note(summary: &[String], effect: &str) -> String {
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
        }
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
