//! The TOML policy file (`--policy`, format in `docs/policy.md`) and its
//! blocklist files: parsed from text passed in with the name of the place it
//! came from, so every error can say `policy.toml:7`. Pure: `gather` reads
//! the files.

use super::choices::ServicePolicy;
use super::rate::Rate;
use super::spec::{Given, Spec, parse_net};
use crate::error::bad_input;
use crate::services::ServiceTable;
use crate::terminal::{excerpt, excerpt_of};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

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

/// toml's error, said as autofw says input errors: file, line and column,
/// what is wrong, and the line. toml's own text would quote the whole line
/// raw (a 10 MB line, escape sequences): its message and the line are
/// excerpts here.
fn toml_error(e: &toml::de::Error, text: &str, origin: &str) -> anyhow::Error {
    let message = excerpt_of(e.message().trim_end(), 240);
    let Some(span) = e.span() else {
        return bad_input(format!("policy file {origin}: {message}"));
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let column = text[line_start..start].chars().count() + 1;
    bad_input(format!(
        "policy file {origin}, line {}, column {column}: {message}; the line: `{}`",
        line_of(text, start),
        excerpt(text[line_start..line_end].trim_end_matches('\r'))
    ))
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

/// A policy file, parsed but with its blocklist files not yet read.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow: Vec<Given<Spec>>,
    pub block: Vec<Given<Spec>>,
    pub services: Vec<ServicePolicy>,
    pub blocklist: Vec<Given<IpNet>>,
    /// `[blocklist] files`, as written (relative to the policy file).
    pub blocklist_files: Vec<Given<String>>,
}

/// Parse the text of a policy file; `origin` names it in errors.
pub(crate) fn parse_policy(
    text: &str,
    origin: &str,
    table: &ServiceTable,
) -> anyhow::Result<Policy> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
    // Where each line starts, found once: counting the newlines before each
    // value made a policy of 55,000 inline addresses take 7.6 s (issue 21).
    let newlines: Vec<usize> = text
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let at = |span: std::ops::Range<usize>| {
        format!(
            "{origin}:{}",
            newlines.partition_point(|&nl| nl < span.start) + 1
        )
    };
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
        policy.blocklist.push(Given {
            value: net,
            place: at(s.span()),
        });
    }
    for s in &file.blocklist.files {
        policy.blocklist_files.push(Given {
            value: s.get_ref().clone(),
            place: at(s.span()),
        });
    }
    for (key, section) in &file.service {
        let shown_key = excerpt(key);
        let place = at(section.span());
        let spec = Spec::parse(key, table)
            .map_err(|e| bad_input(format!("{place}: in `[service.{shown_key}]`: {e}")))?;
        let section = section.get_ref();
        let sources_place = section
            .sources
            .as_ref()
            .and_then(|list| list.first())
            .map(|s| at(s.span()));
        let sources = match &section.sources {
            None => None,
            Some(list) => {
                let mut nets = Vec::new();
                for s in list {
                    nets.push(parse_net(s.get_ref()).map_err(|e| {
                        bad_input(format!(
                            "{}: in `[service.{shown_key}] sources`: {e}",
                            at(s.span())
                        ))
                    })?);
                }
                if nets.is_empty() {
                    return Err(bad_input(format!(
                        "{place}: `[service.{shown_key}] sources` is empty, which would admit no one; \
                         list networks, or use `block = [\"{shown_key}\"]` to close it"
                    )));
                }
                Some(nets)
            }
        };
        let burst = match &section.limit_burst {
            Some(b) => Some(Rate::check_burst(*b.get_ref()).map_err(|e| {
                bad_input(format!(
                    "{}: `[service.{shown_key}] limit_burst` {e}",
                    at(b.span())
                ))
            })?),
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
                            bad_input(format!("{where_}: in `[service.{shown_key}] limit`: {e}"))
                        })?,
                    ),
                    _ => {
                        return Err(bad_input(format!(
                            "{where_}: `[service.{shown_key}] limit` must be true, false or a rate like \"10/minute\""
                        )));
                    }
                }
            }
        };
        policy.services.push(ServicePolicy {
            spec,
            sources,
            sources_place,
            limit,
            place,
        });
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::rate::Per;

    fn table() -> ServiceTable {
        ServiceTable::builtin()
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
    fn a_policy_of_50000_inline_addresses_is_read_in_linear_time() {
        let mut text = "[blocklist]\naddresses = [\n".to_string();
        for i in 0..50_000u32 {
            text.push_str(&format!(
                "\"10.{}.{}.{}\",\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
        text.push_str("\"10.255.255.300\"]\n");
        let started = std::time::Instant::now();
        let e = format!("{:#}", parse_policy(&text, "p.toml", &table()).unwrap_err());
        let took = started.elapsed();
        assert!(e.starts_with("p.toml:50003: "), "{e}");
        // Counting lines from the start for every value took 7.6 s in release.
        let limit = if cfg!(debug_assertions) { 10.0 } else { 1.0 };
        assert!(took.as_secs_f64() < limit, "{took:?}");
    }

    #[test]
    fn toml_errors_quote_the_line_escaped_and_short() {
        let t = table();
        let err = |text: &str| format!("{:#}", parse_policy(text, "p.toml", &t).unwrap_err());
        let e = err(&format!(
            "allow = [\"ssh\"]\n\u{feff}x\x1b[2J = 1{}\n",
            "y".repeat(1 << 20)
        ));
        assert!(e.starts_with("policy file p.toml, line 2, column "), "{e}");
        assert!(
            e.contains("\\u{feff}x\\x1b[2J") && e.len() < 1_000,
            "{} bytes: {e}",
            e.len()
        );
        assert!(!e.contains('\x1b') && !e.contains('\u{feff}'), "{e}");
        // A value toml decodes (an escape in a string) is quoted escaped.
        let e = err("allow = [\"\\u001b[2J\\u202e\"]\n");
        assert!(e.contains("unknown service `\\x1b[2J\\u{202e}`"), "{e}");
        let e = err("[service.\"\\u001b[31m\"]\nlimit = true\n");
        assert!(!e.contains('\x1b') && e.contains("\\x1b[31m"), "{e}");
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
}
