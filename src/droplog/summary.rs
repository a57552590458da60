//! The pure core of `autofw log`: kernel log lines of autofw's drop rule
//! (`autofw drop: IN=eth0 ... SRC=203.0.113.50 DST=192.0.2.10 ... PROTO=TCP
//! SPT=40532 DPT=3306 ...`, as the kernel's nf_log writes them for both nft
//! and iptables) → counts by destination port and by source address.
//!
//! Lines may come from `journalctl -k` (`Nov 28 03:12:01 host kernel: ...`),
//! `dmesg` (`[ 1234.5] ...`), /var/log/kern.log or /dev/kmsg (`4,812,...;`):
//! the prefix is searched anywhere in the line, so all of them read alike.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::human::count;
use crate::model::Proto;
use crate::propose::rules::LOG_PREFIX;
use crate::services::ServiceTable;

/// One logged drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub source: IpAddr,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or the kernel's word in lower case.
    pub proto: String,
    /// The destination port (tcp and udp only).
    pub port: Option<u16>,
}

/// One line, if it is a drop autofw logged and can be read.
/// `Err(())` for a line with the prefix that does not parse (counted, so a
/// format change shows instead of silently counting nothing).
pub(crate) fn parse_line(line: &str) -> Option<Result<Dropped, ()>> {
    let prefix = LOG_PREFIX.trim_end();
    let at = line.find(prefix)?;
    let fields: BTreeMap<&str, &str> = line[at + prefix.len()..]
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    let Some(source) = fields.get("SRC").and_then(|s| s.parse::<IpAddr>().ok()) else {
        return Some(Err(()));
    };
    let Some(proto) = fields.get("PROTO").map(|p| p.to_ascii_lowercase()) else {
        return Some(Err(()));
    };
    let port = match proto.as_str() {
        "tcp" | "udp" => match fields.get("DPT").map(|p| p.parse::<u16>()) {
            Some(Ok(port)) => Some(port),
            // A fragment carries no ports: counted by source only.
            None => None,
            Some(Err(_)) => return Some(Err(())),
        },
        _ => None,
    };
    Some(Ok(Dropped {
        source,
        proto,
        port,
    }))
}

/// What was dropped, most first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// Logged drops read.
    pub drops: usize,
    /// Lines with autofw's prefix that could not be read.
    pub unreadable: usize,
    pub ports: Vec<PortCount>,
    pub sources: Vec<SourceCount>,
    /// Packets the live drop rule counted since the rules were loaded
    /// (every one, not a sample); absent when not read (a `--file`, no
    /// rules loaded, not root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted: Option<u64>,
    /// Why nothing is logged although the rule drops, and the fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PortCount {
    pub proto: String,
    /// `null` for ICMP and fragments.
    pub port: Option<u16>,
    /// The service usually on that port (`/etc/services`), if known.
    pub service: Option<String>,
    pub drops: usize,
    /// How many different sources sent them.
    pub sources: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SourceCount {
    pub address: IpAddr,
    pub drops: usize,
    /// The ports it was dropped on, most first (`3306/tcp`, `icmp`).
    pub targets: Vec<String>,
}

fn target(d: &Dropped) -> String {
    match d.port {
        Some(port) => format!("{port}/{}", d.proto),
        None => d.proto.clone(),
    }
}

/// Count `lines` (any text; lines without the prefix are skipped) and keep
/// the `top` ports and sources. Ties are broken by port, then address, so
/// the output is stable.
pub(crate) fn summarise<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    top: usize,
    services: &ServiceTable,
) -> Summary {
    let mut drops = Vec::new();
    let mut unreadable = 0;
    for line in lines {
        match parse_line(line) {
            Some(Ok(d)) => drops.push(d),
            Some(Err(())) => unreadable += 1,
            None => {}
        }
    }
    let mut by_port: BTreeMap<(String, Option<u16>), (usize, BTreeSet<IpAddr>)> = BTreeMap::new();
    let mut by_source: BTreeMap<IpAddr, BTreeMap<String, usize>> = BTreeMap::new();
    for d in &drops {
        let entry = by_port.entry((d.proto.clone(), d.port)).or_default();
        entry.0 += 1;
        entry.1.insert(d.source);
        *by_source
            .entry(d.source)
            .or_default()
            .entry(target(d))
            .or_default() += 1;
    }
    let mut ports: Vec<PortCount> = by_port
        .into_iter()
        .map(|((proto, port), (count, sources))| PortCount {
            service: port.and_then(|p| {
                services
                    .name_of_port(Proto::from_name(&proto)?, p)
                    .map(str::to_string)
            }),
            proto,
            port,
            drops: count,
            sources: sources.len(),
        })
        .collect();
    ports.sort_by_key(|p| std::cmp::Reverse(p.drops));
    ports.truncate(top);
    let mut sources: Vec<SourceCount> = by_source
        .into_iter()
        .map(|(address, targets)| {
            let mut targets: Vec<(String, usize)> = targets.into_iter().collect();
            targets.sort_by_key(|t| std::cmp::Reverse(t.1));
            SourceCount {
                address,
                drops: targets.iter().map(|t| t.1).sum(),
                targets: targets.into_iter().map(|t| t.0).collect(),
            }
        })
        .collect();
    sources.sort_by_key(|s| std::cmp::Reverse(s.drops));
    sources.truncate(top);
    Summary {
        drops: drops.len(),
        unreadable,
        ports,
        sources,
        counted: None,
        note: None,
    }
}

/// The summary for people: two short tables.
pub(crate) fn text(summary: &Summary, read_from: &str) -> String {
    let mut out = String::new();
    if summary.drops == 0 {
        out.push_str(&format!(
            "no drops logged by autofw's rules in {read_from}\n"
        ));
    } else {
        out.push_str(&format!(
            "{} logged by autofw's rules in {read_from} (the rules log at most 5 a \
             minute: a sample, not every packet)\n",
            count(summary.drops, "drop", "drops")
        ));
        out.push_str("\ndropped on               drops  sources\n");
        for p in &summary.ports {
            let what = match (p.port, &p.service) {
                (Some(port), Some(service)) => format!("{port}/{} {service}", p.proto),
                (Some(port), None) => format!("{port}/{}", p.proto),
                (None, _) => p.proto.clone(),
            };
            out.push_str(&format!("{what:<24}{:>6}  {:>7}\n", p.drops, p.sources));
        }
        out.push_str("\nfrom                                      drops  on\n");
        for s in &summary.sources {
            let mut on = s
                .targets
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if s.targets.len() > 3 {
                on.push_str(&format!(" and {} more", s.targets.len() - 3));
            }
            out.push_str(&format!(
                "{:<40}{:>7}  {on}\n",
                s.address.to_string(),
                s.drops
            ));
        }
    }
    if let Some(note) = &summary.note {
        out.push_str(&format!("\nnote: {note}\n"));
    }
    if summary.unreadable > 0 {
        out.push_str(&format!(
            "\n{} line(s) with the \"autofw drop:\" prefix could not be read (no SRC= or PROTO=)\n",
            summary.unreadable
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_journal_dmesg_and_kmsg_lines_alike() {
        let fields = "autofw drop: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.50 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=40532 DPT=3306 WINDOW=64240 RES=0x00 SYN URGP=0";
        let expected = Dropped {
            source: "203.0.113.50".parse().unwrap(),
            proto: "tcp".into(),
            port: Some(3306),
        };
        for line in [
            format!("Nov 28 03:12:01 vps kernel: {fields}"),
            format!("[ 1234.567890] {fields}"),
            format!("4,812,1234567890,-;{fields}"),
        ] {
            assert_eq!(parse_line(&line), Some(Ok(expected.clone())), "{line}");
        }
    }

    #[test]
    fn ipv6_addresses_in_kernel_form_and_icmp() {
        let line = "kernel: autofw drop: IN=eth0 OUT= MAC=00 SRC=2001:0db8:0000:0000:0000:0000:0000:0050 DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=57 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=1";
        let d = parse_line(line).unwrap().unwrap();
        assert_eq!(d.source.to_string(), "2001:db8::50");
        assert_eq!((d.proto.as_str(), d.port), ("icmpv6", None));
    }

    #[test]
    fn other_lines_are_skipped_and_broken_ones_counted() {
        assert_eq!(parse_line("kernel: eth0: link up"), None);
        assert_eq!(
            parse_line("kernel: autofw drop: IN=eth0 PROTO=TCP DPT=22"),
            Some(Err(()))
        );
    }

    #[test]
    fn counts_by_port_and_source_most_first() {
        let mk = |src: &str, dpt: u16| {
            format!(
                "kernel: autofw drop: IN=eth0 OUT= SRC={src} DST=192.0.2.10 PROTO=TCP SPT=1 DPT={dpt}"
            )
        };
        let lines = [
            mk("203.0.113.1", 80),
            mk("203.0.113.2", 80),
            mk("203.0.113.2", 80),
            mk("203.0.113.2", 3306),
            "kernel: unrelated".to_string(),
        ];
        let s = summarise(
            lines.iter().map(String::as_str),
            10,
            &ServiceTable::builtin(),
        );
        assert_eq!(s.drops, 4);
        assert_eq!(
            (s.ports[0].port, s.ports[0].drops, s.ports[0].sources),
            (Some(80), 3, 2)
        );
        assert_eq!(s.ports[0].service.as_deref(), Some("http"));
        assert_eq!(s.sources[0].address.to_string(), "203.0.113.2");
        assert_eq!(s.sources[0].targets, ["80/tcp", "3306/tcp"]);
        let top1 = summarise(
            lines.iter().map(String::as_str),
            1,
            &ServiceTable::builtin(),
        );
        assert_eq!((top1.ports.len(), top1.sources.len()), (1, 1));
    }
}
