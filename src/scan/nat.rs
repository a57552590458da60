//! Reading what [`super::forwarded`] parses: the kernel's DNAT rules and the
//! container engines' published ports. An edge, and a soft one: a tool that
//! is not installed, a table that does not exist, an engine socket nobody
//! listens on each give nothing, plus a note, and never fail the scan.
//!
//! The tools are run for reading only (`nft -j -t list ruleset`,
//! `iptables-save -t nat`, `ip6tables-save -t nat`, and
//! `iptables-legacy-save`/`ip6tables-legacy-save` where the legacy nat table
//! is loaded (`/proc/net/ip_tables_names`): rules in the legacy tables are
//! just as live). Each runs only where it could find a nat table: on a host
//! with no NAT, scan starts no process (issue 20). Whether nf_tables holds a
//! nat chain (native nft, iptables-nft) is asked over netlink
//! ([`super::nft_nat`]); the legacy tables are named in `/proc/net`.
//! `firewall::backend::exec`, the one place
//! that changes the firewall, sits above scan in the import order, so scan
//! spawns its readers itself ([`super::host::read_tool`], which also runs
//! `ip`, `wg` and `systemctl` for the kernel's sockets).

use super::forwarded::{
    Forward, Published, parse_containers, parse_iptables_nat, parse_nft_ruleset,
};
use super::host::read_tool;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// nf_tables families (`NFPROTO_*`), as [`super::nft_nat`] reports them.
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// What the nat tables and the engines said.
#[derive(Debug, Default)]
pub(crate) struct NatFacts {
    pub forwards: Vec<Forward>,
    pub published: Vec<Published>,
    /// Why some forwarded ports may be missing (a table that could not be read).
    pub notes: Vec<String>,
}

/// Every DNAT the kernel holds in a nat prerouting hook of this network
/// namespace, and the ports the engines publish.
pub(crate) fn read_nat_facts() -> NatFacts {
    let mut facts = NatFacts::default();
    // The nat tables are root's to read: one note, not one per tool.
    if !rustix::process::geteuid().is_root() {
        facts.notes.push(
            "ports this host forwards with DNAT (Docker's published ports) could not be read \
             (not root), so they are not listed; run as root to see them"
                .to_string(),
        );
        return facts;
    }
    let legacy_nat = |names: &str| {
        std::fs::read_to_string(names).is_ok_and(|t| t.lines().any(|l| l.trim() == "nat"))
    };
    let legacy_v4 = legacy_nat("/proc/net/ip_tables_names");
    let legacy_v6 = legacy_nat("/proc/net/ip6_tables_names");
    // The families with an nf_tables nat chain; if nf_tables cannot be
    // asked, read as if every family had one.
    let nat_families = super::nft_nat::nat_chain_families()
        .unwrap_or_else(|_| [NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6].into());
    // Terse (`-t`): named sets without their elements (the DNAT rules keep
    // their inline sets). A million-entry blocklist otherwise makes this
    // listing 40 s and 630 MB (docs/propose.md).
    if !nat_families.is_empty()
        && let Some(result) = read_tool("nft", &["-j", "-t", "list", "ruleset"])
    {
        match result.and_then(|json| parse_nft_ruleset(&json)) {
            Ok(forwards) => facts.forwards.extend(forwards),
            Err(e) => facts.notes.push(format!("forwarded ports: {e}")),
        }
    }
    // `iptables-save` is iptables-nft (a `nat` table of family ip) or, where
    // the alternatives say so, iptables-legacy: either could have a table.
    // Asking iptables-legacy for a table that is not loaded would load the
    // legacy nat module into the kernel: only read one that exists.
    for (program, ipv6, has_nat) in [
        (
            "iptables-save",
            false,
            nat_families.contains(&NFPROTO_IPV4) || legacy_v4,
        ),
        (
            "ip6tables-save",
            true,
            nat_families.contains(&NFPROTO_IPV6) || legacy_v6,
        ),
        ("iptables-legacy-save", false, legacy_v4),
        ("ip6tables-legacy-save", true, legacy_v6),
    ] {
        if !has_nat {
            continue;
        }
        match read_tool(program, &["-t", "nat"]) {
            None => {}
            Some(Ok(save)) => facts.forwards.extend(parse_iptables_nat(&save, ipv6)),
            // No nat table in this family (module not loaded): nothing forwarded.
            Some(Err(e)) if e.contains("does not exist") => {}
            Some(Err(e)) => facts.notes.push(format!("forwarded ports: {e}")),
        }
    }
    facts.forwards.sort();
    facts.forwards.dedup();
    if !facts.forwards.is_empty() {
        for socket in engine_sockets() {
            if let Some(json) = get_containers(&socket) {
                facts.published.extend(parse_containers(&json));
            }
        }
    }
    facts
}

/// Where Docker and podman answer: `DOCKER_HOST` (a `unix://` one), then
/// the usual rootful sockets; each engine once (`/var/run` is usually a
/// link to `/run`), and only sockets that exist.
fn engine_sockets() -> Vec<PathBuf> {
    let from_env = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string));
    let usual = [
        "/run/docker.sock",
        "/var/run/docker.sock",
        "/run/podman/podman.sock",
    ];
    let mut sockets = Vec::new();
    for path in from_env.iter().map(String::as_str).chain(usual) {
        if let Ok(real) = std::fs::canonicalize(path)
            && !sockets.contains(&real)
        {
            sockets.push(real);
        }
    }
    sockets
}

/// `GET /containers/json` over the engine's socket (HTTP/1.0, so the body
/// ends with the connection). `None` on any trouble: names are optional.
fn get_containers(socket: &Path) -> Option<String> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    stream
        .write_all(b"GET /containers/json HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.take(16 << 20).read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1);
    if !head.starts_with("HTTP/1.") || status != Some("200") {
        return None;
    }
    Some(body.to_string())
}
