//! Forwarded ports: what the host DNATs to somewhere else (Docker's and
//! podman's published ports, libvirt/LXD port forwards, a hand-written
//! `dnat to`). Such packets never reach INPUT: they are rewritten in the nat
//! prerouting hook and cross FORWARD, so a scan of listening sockets misses
//! them (Docker with `userland-proxy: false` has no listener at all). This
//! module reads the DNAT rules the kernel holds and joins them to the
//! listeners, so that `propose` governs them like any other port.
//!
//! Pure: the texts of `nft -j -t list ruleset` and `iptables-save -t nat` (and
//! the container list of Docker's API) come in as strings from
//! [`super::nat`], so every rule here is tested on `fixtures/nat/`:
//! [`iptables`] and [`nft`] parse the rules, this file holds what they
//! find ([`Forward`]), the engines' ports ([`Published`]) and the [`join`].
//!
//! What counts: a DNAT in a chain that a nat `prerouting` hook reaches
//! (directly or by jump/goto), matching a destination port. Native nft rules
//! come from `nft -j`; iptables-nft rules show there only as an opaque `xt`
//! target without their destination, so they are read from `iptables-save`.
//! REDIRECT (to this host) is left out: it lands in INPUT, where the listener
//! it redirects to is seen and governed already.

pub(crate) mod iptables;
pub(crate) mod nft;

pub(crate) use iptables::parse_iptables_nat;
pub(crate) use nft::parse_nft_ruleset;

use super::core::classify;
use crate::model::{Listener, Proto};
use crate::services::{ServiceTable, is_risky_listener};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Port ranges wider than this are not expanded into one entry per port
/// (a `1:65535` DNAT forwards a whole address, which no per-port list says well).
const MAX_RANGE: u32 = 1024;

/// One port the host forwards: `proto` `address`:`port` → `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Forward {
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
pub(crate) struct Published {
    pub proto: Proto,
    pub port: u16,
    pub container: String,
    pub image: String,
}

pub(crate) fn wildcard(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// A list of destination ports, each port of `a:b` / `a-b` ranges.
pub(crate) fn ports_of(spec: &str) -> Option<Vec<u16>> {
    let mut ports = Vec::new();
    for part in spec.split(',') {
        let (low, high) = match part.split_once([':', '-']) {
            Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
            None => {
                let p = part.parse::<u16>().ok()?;
                (p, p)
            }
        };
        ports.extend(port_range(low, high)?);
    }
    Some(ports)
}

/// Every port of `low..=high`, unless the range is reversed or wider than
/// [`MAX_RANGE`].
pub(crate) fn port_range(low: u16, high: u16) -> Option<std::ops::RangeInclusive<u16>> {
    (low <= high && u32::from(high - low) < MAX_RANGE).then_some(low..=high)
}

/// Where a DNAT sends a packet that came to `port`: the target address and
/// its port (the same port when the rule names none; the matching offset
/// into a target range `p1-p2`).
pub(crate) fn forward_target(
    addr: IpAddr,
    to_ports: Option<(u16, u16)>,
    port: u16,
    first: u16,
) -> String {
    let to_port = match to_ports {
        None => port,
        Some((low, high)) if high > low => low.saturating_add(port - first).min(high),
        Some((low, _)) => low,
    };
    // `ip:port`, with brackets for IPv6.
    SocketAddr::new(addr, to_port).to_string()
}

/// One [`Forward`] per destination port of a DNAT rule to `to_addr` (and
/// `to_ports`, if it names any). A rule with no destination address matches
/// the family's wildcard: IPv6 in an IPv6 table (`v6_table`) or for an IPv6
/// target.
pub(crate) fn forwards_of_rule(
    proto: Proto,
    daddr: Option<IpAddr>,
    v6_table: bool,
    ports: Vec<u16>,
    to_addr: IpAddr,
    to_ports: Option<(u16, u16)>,
) -> Vec<Forward> {
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

/// The ports Docker's (or podman's Docker-compatible) `GET /containers/json`
/// says are published. Anything unexpected gives an empty list: container
/// names are a courtesy, never a reason to fail a scan.
pub(crate) fn parse_containers(json: &str) -> Vec<Published> {
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
                p["Type"].as_str().and_then(Proto::from_name),
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

/// Join forwarded ports to the listeners: a listener on the same (proto,
/// port) and address, or the `docker-proxy` on the family's wildcard that
/// stands in for a wildcard forward, gets `forwarded_to` (one entry, not
/// two); the others become listeners of their own, with no process. Every
/// forwarded port that an engine publishes gets the container's name, and
/// the service the container runs. Sorted as [`super::core::listeners`] sorts.
pub(crate) fn join(
    mut listeners: Vec<Listener>,
    forwards: &[Forward],
    published: &[Published],
    names: &ServiceTable,
) -> Vec<Listener> {
    // One target per (proto, address, port). The readers hand their forwards
    // in sorted, not in rule order, so where several rules DNAT the same
    // port (rare; the kernel takes the first by hook priority and rule
    // order) the lowest target is shown, not necessarily the kernel's.
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
                    service: names.name_listener(proto, port, &[]),
                    ..Listener::bare(proto, address, port, exposure)
                });
                listeners.last_mut().expect("just pushed")
            }
        };
        listener.forwarded_to = Some(forward.to.clone());
        if let Some(engine) = engine {
            listener.container = Some(engine.container.clone());
            listener.service = container_service(names, proto, port, engine);
        }
        listener.risky = is_risky_listener(&listener.service, listener.exposure);
    }
    listeners.sort_by_key(|l| (l.proto, l.port, l.address));
    listeners
}

/// Forwards one a line (`tcp 0.0.0.0 8080 -> 172.17.0.2:80`), for the
/// parsers' tests.
#[cfg(test)]
fn shown(forwards: &[Forward]) -> Vec<String> {
    forwards
        .iter()
        .map(|f| format!("{} {} {} -> {}", f.proto, f.address, f.port, f.to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(proto: Proto, address: &str, port: u16, process: &str) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        Listener {
            service: "unknown".into(),
            process: process.into(),
            pids: vec![42],
            ..Listener::bare(proto, address, port, classify(address))
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
