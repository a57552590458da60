//! Why the lockout guard refuses a ruleset, and what lets the operator in.
//!
//! "Open that port" is no advice when a `--source` list, a `--block` or a
//! blocklist entry is what drops the session: those win over `--allow`. So
//! the refusal names each cause where the operator gave it (the flag, or
//! the policy file and line, or the blocklist file and line) and a change
//! of the choices that removes it. Every fix is checked here: the causes
//! are found one at a time by drafting the ruleset again with the fixes so
//! far, until it admits the connection ([`Explanation::fixed`]); a fix
//! autofw cannot check is never suggested.

use super::choices::Choices;
use super::draft::build_ruleset;
use super::ruleset::{Action, Arrival, Match, Ruleset};
use super::spec::{Given, Spec};
use crate::blocklist::Listed;
use crate::model::{Proto, Scan};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

/// One reason the new rules drop the connection, and the change that
/// removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Cause {
    /// What drops it, and where it was given.
    pub cause: String,
    /// The change to the choices that removes this cause.
    pub fix: String,
}

/// The causes, in the order the rules meet them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Explanation {
    pub causes: Vec<Cause>,
    /// With every fix made, the drafted rules admit the connection.
    pub fixed: bool,
}

/// How many causes are looked for at most: a blocklist, a source list, a
/// block and a closed port are four; more means something autofw cannot
/// explain, and it stops rather than loop.
const MAX_STEPS: usize = 8;

/// Explain why the rules drafted from `scan` and `choices` drop `arrival`.
/// `listed`: the lines of the blocklist files that list its source (the
/// caller reads the files; [`crate::blocklist::lines_listing`]).
pub(crate) fn explain(
    scan: &Scan,
    choices: &Choices,
    arrival: Arrival<'_>,
    listed: &[Listed],
) -> Explanation {
    let mut choices = choices.clone();
    let mut causes = Vec::new();
    let client = arrival.source.to_canonical();
    for _ in 0..MAX_STEPS {
        let ruleset = build_ruleset(scan, &choices);
        let step = match ruleset.verdict(arrival) {
            Some(rule) if rule.action == Action::Accept => {
                return Explanation {
                    causes,
                    fixed: true,
                };
            }
            Some(rule) if matches!(rule.matches, Match::Blocklisted { .. }) => {
                unlist(&mut choices, client, listed)
            }
            // Dropped at the end of the chain: the port is not open to it.
            _ => open_port(&ruleset, &mut choices, arrival),
        };
        if step.is_empty() {
            break;
        }
        causes.extend(step);
    }
    Explanation {
        causes,
        fixed: false,
    }
}

/// The blocklist entries that list `client`, removed from `choices`.
fn unlist(choices: &mut Choices, client: IpAddr, listed: &[Listed]) -> Vec<Cause> {
    let mut causes = Vec::new();
    for given in choices
        .blocklist
        .iter()
        .filter(|g| g.value.contains(&client))
    {
        let net = net_text(&given.value);
        causes.push(match given.place.strip_prefix("--blocklist ") {
            Some(_) => Cause {
                cause: format!("`{}` lists {client}", given.place),
                fix: format!("drop `{}`", given.place),
            },
            None => Cause {
                cause: format!(
                    "`[blocklist] addresses` at {} lists {client} (\"{net}\")",
                    given.place
                ),
                fix: format!(
                    "remove \"{net}\" from `[blocklist] addresses` at {}",
                    given.place
                ),
            },
        });
    }
    choices.blocklist.retain(|g| !g.value.contains(&client));
    let lists = &mut choices.blocklist_lists;
    let before = lists.v4.len() + lists.v6.len();
    match client {
        IpAddr::V4(a) => lists.v4.retain(|&(s, e)| !(s..=e).contains(&u32::from(a))),
        IpAddr::V6(a) => lists.v6.retain(|&(s, e)| !(s..=e).contains(&u128::from(a))),
    }
    if lists.v4.len() + lists.v6.len() < before {
        for l in listed {
            causes.push(Cause {
                cause: format!(
                    "the blocklist file {} lists {client} at line {} (`{}`)",
                    l.file, l.line, l.entry
                ),
                fix: format!("remove line {} of {}", l.line, l.file),
            });
        }
        if listed.is_empty() {
            // The file changed since it was read: say so, suggest nothing.
            return Vec::new();
        }
    }
    causes
}

/// The port `arrival` is for is not open to it: its source list leaves the
/// client out, a block keeps it closed, or nothing opens it. The fix is
/// made in `choices`.
fn open_port(ruleset: &Ruleset, choices: &mut Choices, arrival: Arrival<'_>) -> Vec<Cause> {
    let (proto, port, client) = (arrival.proto, arrival.port, arrival.source.to_canonical());
    let what = format!("{proto}/{port}");
    // Services the rules give this port (a rule per listener and address).
    let opened: Vec<&str> = ruleset
        .input
        .iter()
        .filter(|r| r.action == Action::Accept)
        .filter_map(|r| match &r.matches {
            Match::Service {
                proto: p,
                port: q,
                service,
                ..
            } if *p == proto && *q == port => Some(service.as_str()),
            _ => None,
        })
        .collect();
    if !opened.is_empty() {
        let table = &choices.table;
        let Some(policy) = choices.services.iter_mut().find(|s| {
            s.sources
                .as_ref()
                .is_some_and(|nets| !nets.iter().any(|n| n.contains(&client)))
                && opened
                    .iter()
                    .any(|service| s.spec.matches(proto, port, service, table))
        }) else {
            // Open, but not to this connection for another reason (a
            // listener bound to another address): nothing to suggest.
            return Vec::new();
        };
        let Some(nets) = policy.sources.as_mut() else {
            return Vec::new();
        };
        let only = nets.iter().map(net_text).collect::<Vec<_>>().join(", ");
        nets.push(IpNet::from(client));
        let place = policy
            .sources_place
            .clone()
            .unwrap_or_else(|| policy.place.clone());
        let spec = policy.spec.to_string();
        return vec![match place.strip_prefix("--source ") {
            Some(_) => Cause {
                cause: format!("`{place}` admits only {only} to {what}"),
                fix: format!(
                    "give `--source {spec}={}` instead",
                    nets.iter().map(net_text).collect::<Vec<_>>().join(",")
                ),
            },
            None => Cause {
                cause: format!(
                    "`[service.{spec}] sources` at {place} admits only {only} to {what}"
                ),
                fix: format!(
                    "add \"{}\" to `[service.{spec}] sources` at {place}",
                    net_text(&IpNet::from(client))
                ),
            },
        }];
    }
    // The names this port goes by: what a block may have named it.
    let mut names: Vec<&str> = ruleset
        .closed
        .iter()
        .filter(|c| c.proto == proto && c.port == port)
        .map(|c| c.service.as_str())
        .collect();
    names.extend(choices.table.name_of_port(proto, port));
    names.push("unknown");
    if let Some(i) = choices.block.iter().position(|b| {
        names
            .iter()
            .any(|name| b.value.matches(proto, port, name, &choices.table))
    }) {
        let block = choices.block.remove(i);
        return vec![match block.place.strip_prefix("--block ") {
            Some(_) => Cause {
                cause: format!("`{}` keeps {what} closed", block.place),
                fix: format!("drop `{}`", block.place),
            },
            None => Cause {
                cause: format!(
                    "`block` at {} (\"{}\") keeps {what} closed",
                    block.place, block.value
                ),
                fix: format!("remove \"{}\" from `block` at {}", block.value, block.place),
            },
        }];
    }
    let flag = format!("--allow {port}/{proto}");
    let cause = match ruleset
        .closed
        .iter()
        .find(|c| c.proto == proto && c.port == port)
    {
        Some(closed) => format!("{what} is left closed: {}", closed.reason),
        None => format!(
            "nothing the scan found listens on {what} beyond loopback, and no --allow opens it"
        ),
    };
    choices.allow.push(Given {
        value: Spec::Port {
            port,
            proto: Some(proto),
        },
        place: flag.clone(),
    });
    vec![Cause {
        cause,
        fix: format!("add `{flag}`"),
    }]
}

/// An address as written (`203.0.113.5`), a network with its prefix.
fn net_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// The one connection the guard asks about: TCP to `port` from `client`.
pub(crate) fn ssh_arrival<'a>(
    port: u16,
    client: IpAddr,
    server: Option<IpAddr>,
    interface: Option<&'a str>,
) -> Arrival<'a> {
    Arrival {
        proto: Proto::Tcp,
        port,
        source: client,
        destination: server,
        interface,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocklist::{Collected, lines_listing, parse_list};
    use crate::propose::policy_file::parse_policy;
    use crate::services::ServiceTable;

    const CLIENT: &str = "203.0.113.5";

    /// sshd on 5622, both families, as a saved scan says it.
    fn scan() -> Scan {
        let listener = |address: &str| {
            format!(
                r#"{{"proto": "tcp", "address": "{address}", "port": 5622, "exposure": "public",
                "service": "ssh", "process": "sshd", "pids": [1], "risky": false, "uid": 0}}"#
            )
        };
        let text = format!(
            r#"{{"listeners": [{}, {}], "uid_min": 1000}}"#,
            listener("0.0.0.0"),
            listener("::")
        );
        crate::propose::parse_saved_scan(&text, "scan.json").unwrap()
    }

    fn arrival() -> Arrival<'static> {
        ssh_arrival(5622, CLIENT.parse().unwrap(), None, None)
    }

    /// Choices from flags (`--allow`, `--block`, `--source`, `--blocklist`)
    /// and a policy file's text.
    fn choices(
        allow: &[&str],
        block: &[&str],
        source: &[&str],
        blocklist: &[&str],
        policy: &str,
    ) -> Choices {
        let table = ServiceTable::builtin();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let policy = parse_policy(policy, "p.toml", &table).unwrap();
        let mut c = Choices::merge(&owned(allow), &owned(block), policy, table).unwrap();
        c.add_command_line(&[], &owned(source), &owned(blocklist))
            .unwrap();
        c
    }

    fn admitted(c: &Choices) -> bool {
        build_ruleset(&scan(), c).admits(arrival())
    }

    #[test]
    fn a_source_flag_is_named_and_widened_with_the_operators_address() {
        let c = choices(&["5622/tcp"], &[], &["ssh=192.0.2.0/24"], &[], "");
        assert!(!admitted(&c));
        let e = explain(&scan(), &c, arrival(), &[]);
        assert!(e.fixed);
        assert_eq!(
            e.causes,
            [Cause {
                cause: "`--source ssh=192.0.2.0/24` admits only 192.0.2.0/24 to tcp/5622".into(),
                fix: "give `--source ssh=192.0.2.0/24,203.0.113.5` instead".into(),
            }]
        );
        // The fix as the operator would type it passes the guard.
        let fixed = choices(
            &["5622/tcp"],
            &[],
            &["ssh=192.0.2.0/24,203.0.113.5"],
            &[],
            "",
        );
        assert!(admitted(&fixed));
    }

    #[test]
    fn a_source_flag_beside_a_policy_limit_is_named_as_the_flag() {
        let c = choices(
            &[],
            &[],
            &["ssh=192.0.2.0/24"],
            &[],
            "[service.ssh]\nlimit = true\n",
        );
        let e = explain(&scan(), &c, arrival(), &[]);
        assert!(e.fixed);
        assert_eq!(
            e.causes[0].fix,
            "give `--source ssh=192.0.2.0/24,203.0.113.5` instead"
        );
    }

    #[test]
    fn a_source_list_in_the_policy_is_named_by_file_and_line() {
        let policy = "# ssh from the office only\n[service.ssh]\nlimit = true\nsources = [\"192.0.2.0/24\"]\n";
        let c = choices(&[], &[], &[], &[], policy);
        let e = explain(&scan(), &c, arrival(), &[]);
        assert!(e.fixed);
        assert_eq!(
            e.causes[0].fix,
            "add \"203.0.113.5\" to `[service.ssh] sources` at p.toml:4"
        );
        assert!(
            e.causes[0]
                .cause
                .contains("at p.toml:4 admits only 192.0.2.0/24")
        );
        let fixed = policy.replace("\"192.0.2.0/24\"", "\"192.0.2.0/24\", \"203.0.113.5\"");
        assert!(admitted(&choices(&[], &[], &[], &[], &fixed)));
    }

    #[test]
    fn a_block_wins_over_allow_so_the_fix_drops_the_block() {
        // The old advice: `--allow 22/tcp`. With the block it still refuses.
        let c = choices(&["5622/tcp"], &["ssh"], &[], &[], "");
        assert!(!admitted(&c));
        let e = explain(&scan(), &c, arrival(), &[]);
        assert!(e.fixed);
        assert_eq!(e.causes.len(), 1, "{e:?}");
        assert_eq!(e.causes[0].fix, "drop `--block ssh`");
        assert!(admitted(&choices(&["5622/tcp"], &[], &[], &[], "")));

        let policy = "allow = [\"https\"]\nblock = [\"ftp\",\n  \"ssh\"]\n";
        let e = explain(
            &scan(),
            &choices(&[], &[], &[], &[], policy),
            arrival(),
            &[],
        );
        assert!(e.fixed);
        assert_eq!(e.causes[0].fix, "remove \"ssh\" from `block` at p.toml:3");
        assert!(admitted(&choices(
            &[],
            &[],
            &[],
            &[],
            "allow = [\"https\"]\nblock = [\"ftp\"]\n"
        )));
    }

    #[test]
    fn blocklist_entries_are_named_where_they_were_given() {
        // The flag, the policy's addresses, and a file's line: all three.
        let list = "# bad actors\n198.51.100.7\n203.0.113.0/24 ; SBL1\n";
        let listed = lines_listing(list, "/etc/autofw/drop.txt", CLIENT.parse().unwrap());
        let policy = "[blocklist]\naddresses = [\"198.51.100.9\",\n  \"203.0.113.4/30\"]\n";
        let mut c = choices(&[], &[], &[], &["203.0.113.5"], policy);
        let mut lists = Collected::default();
        parse_list(list, "/etc/autofw/drop.txt", false, &mut lists).unwrap();
        c.blocklist_lists = lists;
        c.blocklist_files_named = true;
        assert!(!admitted(&c));
        let e = explain(&scan(), &c, arrival(), &listed);
        assert!(e.fixed, "{e:?}");
        let fixes: Vec<&str> = e.causes.iter().map(|c| c.fix.as_str()).collect();
        assert_eq!(
            fixes,
            [
                "remove \"203.0.113.4/30\" from `[blocklist] addresses` at p.toml:3",
                "drop `--blocklist 203.0.113.5`",
                "remove line 3 of /etc/autofw/drop.txt",
            ]
        );
        assert_eq!(
            e.causes[2].cause,
            "the blocklist file /etc/autofw/drop.txt lists 203.0.113.5 at line 3 (`203.0.113.0/24`)"
        );
        // Made by hand, the fixes pass the guard.
        let policy = "[blocklist]\naddresses = [\"198.51.100.9\"]\n";
        let mut c = choices(&[], &[], &[], &[], policy);
        parse_list(
            "# bad actors\n198.51.100.7\n",
            "drop.txt",
            false,
            &mut c.blocklist_lists,
        )
        .unwrap();
        c.blocklist_files_named = true;
        assert!(admitted(&c));
    }

    #[test]
    fn causes_stack_blocklist_then_source_then_block() {
        let c = choices(
            &[],
            &["ssh"],
            &["ssh=192.0.2.0/24"],
            &["203.0.113.0/24"],
            "",
        );
        let e = explain(&scan(), &c, arrival(), &[]);
        assert!(e.fixed, "{e:?}");
        let fixes: Vec<&str> = e.causes.iter().map(|c| c.fix.as_str()).collect();
        assert_eq!(
            fixes,
            [
                "drop `--blocklist 203.0.113.0/24`",
                "drop `--block ssh`",
                "give `--source ssh=192.0.2.0/24,203.0.113.5` instead"
            ]
        );
        assert!(admitted(&choices(
            &[],
            &[],
            &["ssh=192.0.2.0/24,203.0.113.5"],
            &[],
            ""
        )));
    }

    #[test]
    fn a_port_nothing_opens_gets_allow_by_port() {
        // The session came in on 2222, which the scan does not show.
        let a = ssh_arrival(2222, CLIENT.parse().unwrap(), None, None);
        let c = choices(&[], &[], &[], &[], "");
        let e = explain(&scan(), &c, a, &[]);
        assert!(e.fixed);
        assert_eq!(e.causes[0].fix, "add `--allow 2222/tcp`");
        assert!(
            e.causes[0]
                .cause
                .contains("nothing the scan found listens on tcp/2222")
        );
        assert!(build_ruleset(&scan(), &choices(&["2222/tcp"], &[], &[], &[], "")).admits(a));
    }
}
