//! The `--allow`/`--block` grammar: a SPEC names a service (`https`) or a
//! port (`8443/tcp`, `53`), and a NET an address or network. Pure.

use crate::model::Proto;
use crate::services::ServiceTable;
use crate::terminal::excerpt;
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// What `--allow`/`--block` name: a service by name, or a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Spec {
    /// A service name (`ssh`, `https`): the listeners scan named so, or, when
    /// none listens, the ports the service table gives for the name.
    Name(String),
    /// `PORT/tcp`, `PORT/udp`, or a bare `PORT` meaning both (as `ufw` does).
    Port { port: u16, proto: Option<Proto> },
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Name(name) => f.write_str(name),
            Spec::Port {
                port,
                proto: Some(proto),
            } => write!(f, "{port}/{proto}"),
            Spec::Port { port, proto: None } => write!(f, "{port}"),
        }
    }
}

impl Spec {
    /// Parse `name` or `PORT[/tcp|udp]`. Names must be known to `table`, so a
    /// typo (`--allow htps`) is an error rather than a silent no-op.
    pub fn parse(text: &str, table: &ServiceTable) -> Result<Spec, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty service spec; give a name (`https`) or `PORT[/tcp|udp]`".into());
        }
        let (head, proto) = match text.split_once('/') {
            Some((head, "tcp")) => (head, Some(Proto::Tcp)),
            Some((head, "udp")) => (head, Some(Proto::Udp)),
            Some((_, other)) => {
                return Err(format!(
                    "unknown protocol `{}` in `{}`; use `/tcp` or `/udp`",
                    excerpt(other),
                    excerpt(text)
                ));
            }
            None => (text, None),
        };
        if head.bytes().all(|b| b.is_ascii_digit()) {
            // All digits: a port. Parse wide so that 70000 says "over 65535".
            let port: u64 = head.parse().map_err(|_| {
                format!(
                    "port `{}` is out of range; ports are 1 to 65535",
                    excerpt(head)
                )
            })?;
            if port == 0 || port > 65535 {
                return Err(format!("port {port} is out of range; ports are 1 to 65535"));
            }
            return Ok(Spec::Port {
                port: port as u16,
                proto,
            });
        }
        if proto.is_some() {
            return Err(format!(
                "`{}`: a protocol goes with a port number (`8443/tcp`), not a service name",
                excerpt(text)
            ));
        }
        if table.ports_of(head).is_none() {
            let hint = match closest_name(head, table) {
                Some(name) => format!(" (did you mean `{name}`?)"),
                None => String::new(),
            };
            return Err(format!(
                "unknown service `{}`{hint}; use a name from /etc/services (`https`, `ssh`) or `PORT[/tcp|udp]`",
                excerpt(head)
            ));
        }
        Ok(Spec::Name(head.to_string()))
    }

    /// Does this spec name the listener's (proto, port)? A name matches the
    /// service scan gave the listener, and the name's well-known ports.
    pub fn matches(&self, proto: Proto, port: u16, service: &str, table: &ServiceTable) -> bool {
        match self {
            Spec::Name(name) => {
                name == service
                    || table
                        .ports_of(name)
                        .is_some_and(|ports| ports.contains(&(proto, port)))
            }
            Spec::Port { port: p, proto: pr } => *p == port && pr.is_none_or(|pr| pr == proto),
        }
    }

    /// The ports the spec opens when nothing that listens matches it.
    pub fn default_ports(&self, table: &ServiceTable) -> Vec<(Proto, u16)> {
        match self {
            Spec::Name(name) => table.ports_of(name).map(<[_]>::to_vec).unwrap_or_default(),
            Spec::Port {
                port,
                proto: Some(proto),
            } => vec![(*proto, *port)],
            Spec::Port { port, proto: None } => vec![(Proto::Tcp, *port), (Proto::Udp, *port)],
        }
    }
}

/// The known service name nearest to a mistyped one: at most two edits
/// away (one for names of four letters or fewer, so `ftp` does not become
/// `tftp` and `ssh` is not suggested for `ssl`), the nearest first, then one
/// that starts as typed (`htps` is `https`, not `ftps`: people rarely slip
/// on the first letter), then the shortest, then alphabetical, so the hint
/// is the same on every run.
fn closest_name<'t>(typed: &str, table: &'t ServiceTable) -> Option<&'t str> {
    let typed_len = typed.chars().count();
    let most = if typed_len <= 4 { 1 } else { 2 };
    table
        .names()
        // The distance is at least the difference in length: a name that
        // far off is skipped unmeasured, so a 100 KB value costs no
        // 100 KB × name matrices (issue 21: 20 s for `--allow` of 100 KB).
        .filter(|name| name.chars().count().abs_diff(typed_len) <= most)
        // Levenshtein with a swap of two neighbours counting one (`htpts`):
        // typing slips (strsim's optimal string alignment, as clap uses).
        .map(|name| (strsim::osa_distance(typed, name), name))
        .filter(|&(d, _)| d <= most)
        .min_by_key(|&(d, name)| (d, !same_start(typed, name), name.len(), name))
        .map(|(_, name)| name)
}

fn same_start(a: &str, b: &str) -> bool {
    a.chars().next() == b.chars().next()
}

/// SPEC arguments that may each be a comma list (`--allow ssh,http`), one
/// spec each, as ufw and firewall-cmd take them.
pub(crate) fn split_specs(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A spec and where the operator gave it (`--allow`, `policy.toml:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub place: String,
}

/// Parse an address (`198.51.100.7`, a host) or network (`203.0.113.0/24`).
/// Host bits under the mask are an error: `203.0.113.5/24` is almost always
/// a typo, and silently widening it would block or admit more than meant.
pub(crate) fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!(
            "`{}` is not an IP address or network (expected e.g. `198.51.100.7`, `203.0.113.0/24`, `2001:db8::/32`)",
            excerpt(text)
        )
    })?;
    if net.trunc() != net {
        return Err(format!(
            "`{}` has host bits set under its /{} mask; did you mean `{}`?",
            excerpt(text),
            net.prefix_len(),
            net.trunc()
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ServiceTable {
        ServiceTable::builtin()
    }

    #[test]
    fn specs_parse_names_and_ports() {
        let t = table();
        assert_eq!(Spec::parse("ssh", &t), Ok(Spec::Name("ssh".into())));
        assert_eq!(
            Spec::parse("8443/tcp", &t),
            Ok(Spec::Port {
                port: 8443,
                proto: Some(Proto::Tcp)
            })
        );
        assert_eq!(
            Spec::parse("53", &t),
            Ok(Spec::Port {
                port: 53,
                proto: None
            })
        );
        assert_eq!(
            Spec::parse("65535/udp", &t).unwrap().to_string(),
            "65535/udp"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let t = table();
        let err = |s| Spec::parse(s, &t).unwrap_err();
        assert!(err("0").contains("port 0 is out of range"), "{}", err("0"));
        assert!(err("65536/tcp").contains("port 65536 is out of range"));
        assert!(err("99999999999999999999").contains("out of range"));
        assert!(err("htps").contains("unknown service `htps` (did you mean `https`?)"));
        assert!(
            err("sshh").contains("(did you mean `ssh`?)"),
            "{}",
            err("sshh")
        );
        assert!(
            err("postgress").contains("(did you mean `postgresql`?)"),
            "{}",
            err("postgress")
        );
        assert!(
            err("htpts").contains("(did you mean `https`?)"),
            "{}",
            err("htpts")
        );
        // With /etc/services' `ftps` as near as `https`, the one that
        // starts as typed.
        let etc = ServiceTable::with_etc_services("ftps 990/tcp\n");
        assert!(
            Spec::parse("htps", &etc)
                .unwrap_err()
                .contains("(did you mean `https`?)")
        );
        // Nothing near: no guess.
        assert!(
            !err("frobnicate").contains("did you mean"),
            "{}",
            err("frobnicate")
        );
        assert!(err("80/sctp").contains("unknown protocol `sctp`"));
        assert!(err("ssh/tcp").contains("goes with a port number"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn nets_parse_and_host_bits_are_caught() {
        assert_eq!(
            parse_net("198.51.100.7").unwrap().to_string(),
            "198.51.100.7/32"
        );
        assert_eq!(
            parse_net("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!(
            parse_net("203.0.113.5/24")
                .unwrap_err()
                .contains("203.0.113.0/24")
        );
        assert!(
            parse_net("300.1.2.3")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(parse_net("10.0.0.0/33").is_err());
    }
}
