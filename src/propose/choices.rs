//! The operator's choices: `--allow`/`--block` SPECs from the command line and
//! the TOML policy file (`--policy`, format in `docs/policy.md`), validated
//! into [`Choices`].
//!
//! Parsing is pure: the texts are passed in with the name of the place they
//! came from (`--allow`, `policy.toml:7`), so every error can say where the
//! problem is. Only [`Choices::from_args`] reads files.

use super::PolicyOptions;
use crate::error::bad_input;
use crate::model::{Listener, Proto};
use crate::services::ServiceTable;
use anyhow::Context;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use toml::Spanned;

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
                    "unknown protocol `{other}` in `{text}`; use `/tcp` or `/udp`"
                ));
            }
            None => (text, None),
        };
        if head.bytes().all(|b| b.is_ascii_digit()) {
            // All digits: a port. Parse wide so that 70000 says "over 65535".
            let port: u64 = head
                .parse()
                .map_err(|_| format!("port `{head}` is out of range; ports are 1 to 65535"))?;
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
                "`{text}`: a protocol goes with a port number (`8443/tcp`), not a service name"
            ));
        }
        if table.ports_of(head).is_none() {
            return Err(format!(
                "unknown service `{head}`; use a name from /etc/services (`https`, `ssh`) or `PORT[/tcp|udp]`"
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

    /// Does it name this listener (by the service scan gave it, or its port)?
    pub fn matches_listener(&self, listener: &Listener, table: &ServiceTable) -> bool {
        self.matches(listener.proto, listener.port, &listener.service, table)
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

/// A spec and where the operator gave it (`--allow`, `policy.toml:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub place: String,
}

/// A rate: `count` per `per`, with a burst. Written `10/minute` in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    pub count: u32,
    pub per: Per,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Second => "second",
            Per::Minute => "minute",
            Per::Hour => "hour",
        }
    }
}

impl Rate {
    /// What `limit = true` means: like `ufw limit`, which denies a source's
    /// sixth new connection within 30 s: a burst of 5, then 10 a minute.
    pub const UFW_LIKE: Rate = Rate {
        count: 10,
        per: Per::Minute,
        burst: 5,
    };

    /// Parse `N/second|minute|hour` (also `N/s`, `N/min`, `N/h`).
    pub fn parse(text: &str, burst: u32) -> Result<Rate, String> {
        let bad = || {
            format!(
                "bad rate `{text}`; write it as `N/second`, `N/minute` or `N/hour`, e.g. `10/minute`"
            )
        };
        let (count, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!(
                "rate `{text}` is zero; it would refuse every connection"
            ));
        }
        let per = match per.trim() {
            "second" | "sec" | "s" => Per::Second,
            "minute" | "min" | "m" => Per::Minute,
            "hour" | "h" => Per::Hour,
            _ => return Err(bad()),
        };
        Ok(Rate { count, per, burst })
    }
}

/// What the policy says about one service: who may reach it, how fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicy {
    /// The `[service.NAME]` key, parsed.
    pub spec: Spec,
    /// Only these networks may connect; `None` means anyone.
    pub sources: Option<Vec<IpNet>>,
    /// New connections per source address above this rate are dropped.
    pub limit: Option<Rate>,
    /// Where it was written, for messages.
    pub place: String,
}

/// The operator's validated choices, command line and policy file merged.
#[derive(Debug, Clone)]
pub struct Choices {
    /// Open these even when nothing listens, and even when scan flagged them risky.
    pub allow: Vec<Given<Spec>>,
    /// Keep these closed even when they listen. Block wins over allow.
    pub block: Vec<Given<Spec>>,
    /// Per-service source restrictions and rate limits, in file order.
    pub services: Vec<ServicePolicy>,
    /// Addresses and networks whose packets are all dropped.
    pub blocklist: Vec<IpNet>,
    /// Names ↔ ports, for specs.
    pub table: ServiceTable,
}

impl Default for Choices {
    fn default() -> Self {
        Choices {
            allow: Vec::new(),
            block: Vec::new(),
            services: Vec::new(),
            blocklist: Vec::new(),
            table: ServiceTable::builtin(),
        }
    }
}

/// The policy file as written: unknown keys are errors (a misspelt
/// `sources` must not silently open a service to everyone).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    block: Vec<Spanned<String>>,
    #[serde(default)]
    blocklist: BlocklistSection,
    #[serde(default)]
    service: BTreeMap<String, Spanned<ServiceSection>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BlocklistSection {
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    /// Files of one address or network a line (`#` comments), relative to
    /// the policy file: for lists too long to keep inline.
    #[serde(default)]
    files: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSection {
    sources: Option<Vec<Spanned<String>>>,
    limit: Option<Spanned<toml::Value>>,
    limit_burst: Option<Spanned<u32>>,
}

/// Line number (1-based) of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .unwrap_or(text)
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Parse an address (`198.51.100.7`, a host) or network (`203.0.113.0/24`).
/// Host bits under the mask are an error: `203.0.113.5/24` is almost always
/// a typo, and silently widening it would block or admit more than meant.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!("`{text}` is not an IP address or network (expected e.g. `198.51.100.7`, `203.0.113.0/24`, `2001:db8::/32`)")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set under its /{} mask; did you mean `{}`?",
            net.prefix_len(),
            net.trunc()
        ));
    }
    Ok(net)
}

/// Parse a blocklist file: one address or network a line, `#` comments,
/// blank lines ignored. `origin` names the file in errors (`file:line`).
pub fn parse_blocklist_text(text: &str, origin: &str) -> anyhow::Result<Vec<IpNet>> {
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let net = parse_net(entry).map_err(|e| bad_input(format!("{origin}:{}: {e}", i + 1)))?;
        nets.push(net);
    }
    Ok(nets)
}

/// Where a service's policy was written, when its settings come from more
/// than one place (`policy.toml:7, --limit ssh`).
fn joined_place(old: &str, new: &str) -> String {
    if old == new {
        old.to_string()
    } else {
        format!("{old}, {new}")
    }
}

/// A policy file, parsed but with its blocklist files not yet read.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: Vec<Given<Spec>>,
    pub block: Vec<Given<Spec>>,
    pub services: Vec<ServicePolicy>,
    pub blocklist: Vec<IpNet>,
    /// `[blocklist] files`, as written (relative to the policy file).
    pub blocklist_files: Vec<Given<String>>,
}

/// Parse the text of a policy file; `origin` names it in errors.
pub fn parse_policy(text: &str, origin: &str, table: &ServiceTable) -> anyhow::Result<Policy> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        // toml's message names line and column; keep it, lead with the file.
        bad_input(format!(
            "policy file {origin}: {}",
            e.to_string().trim_end()
        ))
    })?;
    let at = |span: std::ops::Range<usize>| format!("{origin}:{}", line_of(text, span.start));
    let spec = |s: &Spanned<String>, key: &str| -> anyhow::Result<Given<Spec>> {
        let place = at(s.span());
        let value = Spec::parse(s.get_ref(), table)
            .map_err(|e| bad_input(format!("{place}: in `{key}`: {e}")))?;
        Ok(Given { value, place })
    };
    let mut policy = Policy::default();
    for s in &file.allow {
        policy.allow.push(spec(s, "allow")?);
    }
    for s in &file.block {
        policy.block.push(spec(s, "block")?);
    }
    for s in &file.blocklist.addresses {
        let net = parse_net(s.get_ref())
            .map_err(|e| bad_input(format!("{}: in `blocklist.addresses`: {e}", at(s.span()))))?;
        policy.blocklist.push(net);
    }
    for s in &file.blocklist.files {
        policy.blocklist_files.push(Given {
            value: s.get_ref().clone(),
            place: at(s.span()),
        });
    }
    for (key, section) in &file.service {
        let place = at(section.span());
        let spec = Spec::parse(key, table)
            .map_err(|e| bad_input(format!("{place}: in `[service.{key}]`: {e}")))?;
        let section = section.get_ref();
        let sources = match &section.sources {
            None => None,
            Some(list) => {
                let mut nets = Vec::new();
                for s in list {
                    nets.push(parse_net(s.get_ref()).map_err(|e| {
                        bad_input(format!(
                            "{}: in `[service.{key}] sources`: {e}",
                            at(s.span())
                        ))
                    })?);
                }
                if nets.is_empty() {
                    return Err(bad_input(format!(
                        "{place}: `[service.{key}] sources` is empty, which would admit no one; \
                         list networks, or use `block = [\"{key}\"]` to close it"
                    )));
                }
                Some(nets)
            }
        };
        let burst = match &section.limit_burst {
            Some(b) if *b.get_ref() == 0 => {
                return Err(bad_input(format!(
                    "{}: `[service.{key}] limit_burst` must be at least 1",
                    at(b.span())
                )));
            }
            Some(b) => Some(*b.get_ref()),
            None => None,
        };
        let limit = match &section.limit {
            None => None,
            Some(value) => {
                let where_ = at(value.span());
                match value.get_ref() {
                    toml::Value::Boolean(false) => None,
                    toml::Value::Boolean(true) => Some(Rate {
                        burst: burst.unwrap_or(Rate::UFW_LIKE.burst),
                        ..Rate::UFW_LIKE
                    }),
                    toml::Value::String(rate) => Some(
                        Rate::parse(rate, burst.unwrap_or(Rate::UFW_LIKE.burst)).map_err(|e| {
                            bad_input(format!("{where_}: in `[service.{key}] limit`: {e}"))
                        })?,
                    ),
                    _ => {
                        return Err(bad_input(format!(
                            "{where_}: `[service.{key}] limit` must be true, false or a rate like \"10/minute\""
                        )));
                    }
                }
            }
        };
        policy.services.push(ServicePolicy {
            spec,
            sources,
            limit,
            place,
        });
    }
    Ok(policy)
}

impl Choices {
    /// Merge command-line specs and a parsed policy. Pure.
    pub fn merge(
        cli_allow: &[String],
        cli_block: &[String],
        policy: Policy,
        table: ServiceTable,
    ) -> anyhow::Result<Choices> {
        let mut allow = Vec::new();
        let mut block = Vec::new();
        for (texts, flag, out) in [
            (cli_allow, "--allow", &mut allow),
            (cli_block, "--block", &mut block),
        ] {
            for text in texts {
                let value = Spec::parse(text, &table)
                    .map_err(|e| bad_input(format!("{flag} {text}: {e}")))?;
                out.push(Given {
                    value,
                    place: format!("{flag} {text}"),
                });
            }
        }
        allow.extend(policy.allow);
        block.extend(policy.block);
        Ok(Choices {
            allow,
            block,
            services: policy.services,
            blocklist: policy.blocklist,
            table,
        })
    }

    /// Read the policy file (and its blocklist files) named on the command
    /// line and merge it with the flags. The only part that reads files.
    pub fn from_args(args: &PolicyOptions, table: ServiceTable) -> anyhow::Result<Choices> {
        let mut policy = Policy::default();
        if let Some(path) = &args.policy {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad_input(format!("cannot read policy file {}: {e}", path.display()))
            })?;
            let origin = path.display().to_string();
            policy = parse_policy(&text, &origin, &table)?;
            let base = path.parent().unwrap_or(Path::new("."));
            for file in std::mem::take(&mut policy.blocklist_files) {
                let list_path = base.join(&file.value);
                let text = std::fs::read_to_string(&list_path).map_err(|e| {
                    bad_input(format!(
                        "{}: cannot read blocklist file {}: {e}",
                        file.place,
                        list_path.display()
                    ))
                })?;
                let nets = parse_blocklist_text(&text, &list_path.display().to_string())
                    .with_context(|| format!("blocklist file named at {}", file.place))?;
                policy.blocklist.extend(nets);
            }
        }
        let mut choices = Choices::merge(&args.allow, &args.block, policy, table)?;
        choices.add_command_line(&args.limit, &args.source, &args.blocklist)?;
        Ok(choices)
    }

    /// Add `--limit SPEC[=RATE]`, `--source SPEC=NET[,NET...]` and
    /// `--blocklist NET`: the policy file's `[service.SPEC]` and
    /// `[blocklist]` on the command line. Pure. A setting given both here and
    /// in the file for the same SPEC is an error naming both places: which
    /// one should win is the operator's call, not ours.
    pub fn add_command_line(
        &mut self,
        limits: &[String],
        sources: &[String],
        blocklist: &[String],
    ) -> anyhow::Result<()> {
        for text in limits {
            let place = format!("--limit {text}");
            let (spec, rate) = match text.split_once('=') {
                Some((spec, rate)) => (spec, Some(rate)),
                None => (text.as_str(), None),
            };
            let rate = match rate {
                None => Rate::UFW_LIKE,
                Some(rate) => Rate::parse(rate, Rate::UFW_LIKE.burst)
                    .map_err(|e| bad_input(format!("{place}: {e}")))?,
            };
            self.set_from_flag(spec, &place, "a limit", |p| &mut p.limit, rate)?;
        }
        for text in sources {
            let place = format!("--source {text}");
            let (spec, nets) = text.split_once('=').ok_or_else(|| {
                bad_input(format!(
                    "{place}: expected SPEC=NET[,NET...], e.g. `ssh=192.0.2.0/24`"
                ))
            })?;
            let nets = nets
                .split(',')
                .map(parse_net)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad_input(format!("{place}: {e}")))?;
            self.set_from_flag(spec, &place, "sources", |p| &mut p.sources, nets)?;
        }
        for text in blocklist {
            let net = parse_net(text).map_err(|e| bad_input(format!("--blocklist {text}: {e}")))?;
            self.blocklist.push(net);
        }
        Ok(())
    }

    /// Set one setting of the policy of `spec` from the flag at `place`,
    /// unless the file or an earlier flag already set it.
    fn set_from_flag<T>(
        &mut self,
        spec: &str,
        place: &str,
        what: &str,
        setting: impl FnOnce(&mut ServicePolicy) -> &mut Option<T>,
        value: T,
    ) -> anyhow::Result<()> {
        let spec =
            Spec::parse(spec, &self.table).map_err(|e| bad_input(format!("{place}: {e}")))?;
        let policy = self.service_policy(spec, place);
        let earlier = policy.place.clone();
        let slot = setting(policy);
        if slot.is_some() {
            return Err(bad_input(format!(
                "{place}: {what} for this service is also given at {earlier}; keep one"
            )));
        }
        *slot = Some(value);
        policy.place = joined_place(&earlier, place);
        Ok(())
    }

    /// The policy of exactly this spec, made (empty, at `place`) if there is
    /// none yet.
    fn service_policy(&mut self, spec: Spec, place: &str) -> &mut ServicePolicy {
        let i = match self.services.iter().position(|s| s.spec == spec) {
            Some(i) => i,
            None => {
                self.services.push(ServicePolicy {
                    spec,
                    sources: None,
                    limit: None,
                    place: place.to_string(),
                });
                self.services.len() - 1
            }
        };
        &mut self.services[i]
    }

    /// The blocklist, merged into the fewest non-overlapping networks per
    /// family, sorted: nft rejects overlapping interval elements, and the
    /// output must not depend on the order the operator listed them in.
    pub fn blocklist_by_family(&self) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in &self.blocklist {
            match net {
                IpNet::V4(n) => v4.push(*n),
                IpNet::V6(n) => v6.push(*n),
            }
        }
        (Ipv4Net::aggregate(&v4), Ipv6Net::aggregate(&v6))
    }
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
        assert!(err("htps").contains("unknown service `htps`"));
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

    #[test]
    fn policy_file_parses_every_section() {
        let text = r#"
allow = ["https", "8443/tcp"]
block = ["ftp"]

[blocklist]
addresses = ["198.51.100.7", "203.0.113.0/24", "2001:db8:bad::/48"]

[service.ssh]
sources = ["192.0.2.0/24", "2001:db8:1::/48"]
limit = true

[service."5432/tcp"]
sources = ["10.0.0.0/8"]
limit = "3/second"
limit_burst = 9
"#;
        let p = parse_policy(text, "p.toml", &table()).unwrap();
        assert_eq!(p.allow.len(), 2);
        assert_eq!(p.allow[1].place, "p.toml:2");
        assert_eq!(p.block[0].value, Spec::Name("ftp".into()));
        assert_eq!(p.blocklist.len(), 3);
        let pg = p
            .services
            .iter()
            .find(|s| s.spec.to_string() == "5432/tcp")
            .unwrap();
        assert_eq!(
            pg.limit,
            Some(Rate {
                count: 3,
                per: Per::Second,
                burst: 9
            })
        );
        let ssh = p
            .services
            .iter()
            .find(|s| s.spec.to_string() == "ssh")
            .unwrap();
        assert_eq!(ssh.limit, Some(Rate::UFW_LIKE));
        assert_eq!(ssh.sources.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn policy_errors_name_file_line_and_problem() {
        let t = table();
        let err = |text: &str| format!("{:#}", parse_policy(text, "p.toml", &t).unwrap_err());
        let e = err("allow = [\"ssh\"]\nalow = [\"x\"]\n");
        assert!(
            e.contains("p.toml") && e.contains("line 2") && e.contains("unknown field `alow`"),
            "{e}"
        );
        let e = err("[service.ssh]\nsource = [\"192.0.2.0/24\"]\n");
        assert!(
            e.contains("unknown field `source`") && e.contains("line 2"),
            "{e}"
        );
        let e = err("allow = [\"ssh\",\n  \"nosuch\"]\n");
        assert!(
            e.contains("p.toml:2") && e.contains("unknown service `nosuch`"),
            "{e}"
        );
        let e = err("[blocklist]\naddresses = [\n\"192.0.2.1\",\n\"192.0.2.300\"]\n");
        assert!(e.contains("p.toml:4") && e.contains("`192.0.2.300`"), "{e}");
        let e = err("[service.ssh]\nlimit = \"often\"\n");
        assert!(
            e.contains("p.toml:2") && e.contains("bad rate `often`"),
            "{e}"
        );
        let e = err("[service.ssh]\nsources = []\n");
        assert!(e.contains("admit no one"), "{e}");
        let e = err("[service.70000]\n");
        assert!(
            e.contains("[service.70000]") && e.contains("out of range"),
            "{e}"
        );
        let e = err("[blocklist]\nfile = \"x\"\n");
        assert!(e.contains("unknown field `file`"), "{e}");
    }

    #[test]
    fn blocklist_files_report_their_line() {
        let nets = parse_blocklist_text("# list\n198.51.100.7\n\n203.0.113.0/24 # net\n", "b.txt")
            .unwrap();
        assert_eq!(nets.len(), 2);
        let e = format!(
            "{:#}",
            parse_blocklist_text("198.51.100.7\nnot-an-ip\n", "b.txt").unwrap_err()
        );
        assert!(e.starts_with("b.txt:2: `not-an-ip`"), "{e}");
    }

    #[test]
    fn cli_specs_are_validated_with_their_flag() {
        let e = Choices::merge(&["htps".into()], &[], Policy::default(), table()).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("--allow htps: unknown service"),
            "{e:#}"
        );
        let e = Choices::merge(&[], &["0/tcp".into()], Policy::default(), table()).unwrap_err();
        assert!(format!("{e:#}").contains("--block 0/tcp: port 0"), "{e:#}");
    }

    #[test]
    fn command_line_limits_sources_and_blocklist() {
        let mut c = Choices::default();
        c.add_command_line(
            &["ssh".into(), "53/udp=20/second".into()],
            &["ssh=192.0.2.0/24,2001:db8:1::/48".into()],
            &["198.51.100.7".into()],
        )
        .unwrap();
        let ssh = c
            .services
            .iter()
            .find(|s| s.spec == Spec::Name("ssh".into()))
            .unwrap();
        assert_eq!(ssh.limit, Some(Rate::UFW_LIKE));
        assert_eq!(
            ssh.sources,
            Some(vec![
                parse_net("192.0.2.0/24").unwrap(),
                parse_net("2001:db8:1::/48").unwrap()
            ])
        );
        let dns = c
            .services
            .iter()
            .find(|s| s.place == "--limit 53/udp=20/second")
            .unwrap();
        assert_eq!(dns.limit.map(|r| (r.count, r.per)), Some((20, Per::Second)));
        assert_eq!(c.blocklist, vec![parse_net("198.51.100.7").unwrap()]);
    }

    #[test]
    fn command_line_policies_say_what_is_wrong_and_where() {
        let err = |limits: &[&str], sources: &[&str], blocklist: &[&str]| {
            let mut c = Choices::merge(
                &[],
                &[],
                parse_policy("[service.ssh]\nlimit = true\n", "p.toml", &table()).unwrap(),
                table(),
            )
            .unwrap();
            let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let e = c
                .add_command_line(&owned(limits), &owned(sources), &owned(blocklist))
                .unwrap_err();
            format!("{e:#}")
        };
        assert!(err(&["htps"], &[], &[]).starts_with("--limit htps: unknown service"));
        assert!(err(&["ssh=fast"], &[], &[]).contains("--limit ssh=fast: bad rate"));
        let twice = err(&["ssh"], &[], &[]);
        assert!(twice.contains("also given at p.toml:1"), "{twice}");
        assert!(err(&[], &["ssh"], &[]).contains("expected SPEC=NET"));
        assert!(err(&[], &["ssh=192.0.2.999"], &[]).contains("is not an IP address"));
        assert!(err(&[], &[], &["203.0.113.5/24"]).contains("did you mean `203.0.113.0/24`"));
    }

    #[test]
    fn blocklist_is_merged_and_sorted() {
        let mut c = Choices::default();
        for n in [
            "203.0.113.0/25",
            "203.0.113.128/25",
            "198.51.100.7",
            "2001:db8::1",
            "2001:db8::/64",
        ] {
            c.blocklist.push(parse_net(n).unwrap());
        }
        let (v4, v6) = c.blocklist_by_family();
        let v4: Vec<_> = v4.iter().map(ToString::to_string).collect();
        assert_eq!(v4, ["198.51.100.7/32", "203.0.113.0/24"]);
        assert_eq!(v6.len(), 1);
    }
}
