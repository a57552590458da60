//! `autofw propose`: the whitelist ruleset for a scan and the operator's
//! choices.
//!
//! - [`choices`]: `--allow`/`--block` specs and the `--policy` TOML file,
//!   validated into [`Choices`];
//! - [`build`](mod@build): scan + choices → the ruleset model, pure;
//! - [`ruleset`]: the model (rules with their reasons), and `admits`;
//! - [`nft`], [`iptables`]: renderers; [`text`]: safe comments and strings.
//!
//! Only [`gather`] touches the host (files, the live scan); everything after
//! it is pure and deterministic: the same scan and choices give byte-identical
//! output.

pub mod build;
pub mod choices;
pub mod iptables;
pub mod nft;
pub mod ruleset;
pub mod text;

pub use choices::Choices;
pub use ruleset::Ruleset;

use crate::cli::{Format, PolicyArgs, ProposeArgs, SocketSource};
use crate::error::bad_input;
use crate::model::{Proto, Scan};
use crate::services::ServiceTable;
use ruleset::Family;
use std::net::IpAddr;

/// A drafted ruleset, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    ruleset: Ruleset,
}

impl Proposal {
    /// The ruleset as text in the given format.
    ///
    /// Contract with `apply` (and with operators who load it by hand):
    /// - nft: one self-contained script for `nft -f` that begins with
    ///   `table inet autofw` then `delete table inet autofw`, then defines the
    ///   table, so one transaction replaces `table inet autofw` and touches no
    ///   other table.
    /// - iptables / ip6tables: input for `iptables-restore --noflush` (and
    ///   `ip6tables-restore --noflush`) that declares, and so flushes, only
    ///   autofw's own chains (`AUTOFW-*`), sets the INPUT/FORWARD policies,
    ///   and hooks its chain from INPUT with exactly the line
    ///   `-A INPUT -j AUTOFW-INPUT`, so apply can leave that line out when the
    ///   live INPUT already jumps there.
    ///
    /// With a blocklist, the iptables formats match ipsets that must be
    /// loaded first: see [`Proposal::ipset_restore`].
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Nft => nft::render(&self.ruleset, &self.header(format)),
            Format::Iptables => iptables::render(&self.ruleset, Family::Ipv4, &self.header(format)),
            Format::Ip6tables => {
                iptables::render(&self.ruleset, Family::Ipv6, &self.header(format))
            }
        }
    }

    /// Would this ruleset accept a new connection to `proto`/`port` from `source`?
    /// Used by apply's lockout guard.
    pub fn admits(&self, proto: Proto, port: u16, source: IpAddr) -> bool {
        self.ruleset.admits(proto, port, source)
    }

    /// The ports this ruleset opens, for apply's record and `status`, sorted.
    pub fn opened(&self) -> Vec<crate::state::OpenedPort> {
        let mut ports: Vec<crate::state::OpenedPort> = self
            .ruleset
            .services()
            .map(|(proto, port, service)| crate::state::OpenedPort {
                proto,
                port,
                service: service.to_string(),
            })
            .collect();
        ports.sort_by_key(|p| (p.port, p.proto));
        ports.dedup();
        ports
    }

    /// `ipset restore` input for the blocklist sets that the iptables formats
    /// match (`None` without a blocklist). Load it before `iptables-restore`.
    pub fn ipset_restore(&self) -> Option<String> {
        iptables::ipset_restore(&self.ruleset)
    }

    /// The model: rules with their reasons, what was left closed, warnings.
    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    /// What the operator must be told (also printed to stderr by `propose`).
    pub fn warnings(&self) -> &[String] {
        &self.ruleset.warnings
    }

    /// The model as pretty JSON, for `propose --json`.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string_pretty(&self.ruleset).unwrap_or_default() + "\n"
    }

    /// The comment block at the top of the rendered text.
    fn header(&self, format: Format) -> Vec<String> {
        let load = match format {
            Format::Nft => {
                "Load it with `nft -f FILE`: it replaces table inet autofw and touches no other table."
            }
            Format::Iptables => {
                "Load it with `iptables-restore --noflush FILE`: it replaces only autofw's own AUTOFW-* chains."
            }
            Format::Ip6tables => {
                "Load it with `ip6tables-restore --noflush FILE`: it replaces only autofw's own AUTOFW-* chains."
            }
        };
        let mut lines = vec![
            "autofw proposal: a default-drop whitelist for the services this host runs. Review it before loading it.".to_string(),
            load.to_string(),
            "Or let `autofw apply --confirm` load it, with an automatic rollback unless you confirm.".to_string(),
        ];
        if !self.ruleset.closed.is_empty() {
            lines.push(String::new());
            lines.push("Left closed:".to_string());
            for c in &self.ruleset.closed {
                let mut line = format!(
                    "- {} {}/{} ({}): {}",
                    c.service, c.port, c.proto, c.owner, c.reason
                );
                if let Some(flag) = &c.to_open {
                    line.push_str(&format!("; to open it: {flag}"));
                }
                lines.push(line);
            }
        }
        if !self.ruleset.warnings.is_empty() {
            lines.push(String::new());
            for w in &self.ruleset.warnings {
                lines.push(format!("warning: {w}"));
            }
        }
        lines.push(String::new());
        lines
    }
}

/// Read the choices from the command line and `--policy`, and the scan from
/// `--from` or the live host.
pub fn gather(args: &PolicyArgs) -> anyhow::Result<(Scan, Choices)> {
    // Choices first: a typo fails before the host is scanned. The scan names
    // listeners with the same table the choices were checked against.
    let choices = Choices::from_args(args, ServiceTable::for_host())?;
    let scan = match &args.from {
        Some(path) => read_saved_scan(path)?,
        None => crate::scan::scan_host(SocketSource::Auto, &choices.table)?,
    };
    Ok((scan, choices))
}

/// A saved `scan --json`, checked enough that a bad file gets a clear error.
pub fn read_saved_scan(path: &std::path::Path) -> anyhow::Result<Scan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("cannot read saved scan {}: {e}", path.display())))?;
    parse_saved_scan(&text, &path.display().to_string())
}

/// Parse the text of a saved scan; `origin` names it in errors.
pub fn parse_saved_scan(text: &str, origin: &str) -> anyhow::Result<Scan> {
    let scan: Scan = serde_json::from_str(text).map_err(|e| {
        bad_input(format!(
            "saved scan {origin}: {e}; expected the output of `autofw scan --json`"
        ))
    })?;
    if let Some(l) = scan.listeners.iter().find(|l| l.port == 0) {
        return Err(bad_input(format!(
            "saved scan {origin}: listener {} {} has port 0, which nothing can listen on",
            l.proto, l.address
        )));
    }
    Ok(scan)
}

/// Build the proposal: pure, no host access.
pub fn build(scan: &Scan, choices: &Choices) -> anyhow::Result<Proposal> {
    let mut ruleset = build::build_ruleset(scan, choices);
    ruleset.warnings.extend(scan_warnings(scan));
    Ok(Proposal { ruleset })
}

/// What the scan itself leaves uncertain: processes it could not read
/// (worded by whether it ran as root: root cannot be told to run as root),
/// and a saved scan too old to say who owns what.
fn scan_warnings(scan: &Scan) -> Vec<String> {
    let mut warnings = Vec::new();
    let unreadable = scan.unreadable_processes;
    if unreadable > 0 {
        let n = if unreadable == 1 {
            "1 process".to_string()
        } else {
            format!("{unreadable} processes")
        };
        let consequence = "so some listeners may have no owner and be named by port only";
        warnings.push(match scan.as_root {
            Some(true) => format!(
                "{n} could not be read when the scan ran, even as root (permission denied: a \
                 hardened /proc, or a sandbox's init), {consequence}"
            ),
            Some(false) => format!(
                "{n} could not be read when the scan ran, {consequence}; run as root to see them all"
            ),
            None => format!(
                "{n} could not be read when the scan ran, {consequence}; if it did not run as \
                 root, run it as root to see them all"
            ),
        });
    }
    if scan.uid_min.is_none() && !scan.listeners.is_empty() {
        warnings.push(
            "this saved scan records no uids (it predates them), so listeners are opened on their \
             service alone, whoever runs them; scan again with this version of autofw to judge \
             their owners"
                .to_string(),
        );
    }
    warnings
}

pub fn run(args: &ProposeArgs) -> anyhow::Result<u8> {
    let (scan, choices) = gather(&args.policy)?;
    let proposal = build(&scan, &choices)?;
    let text = if args.json {
        proposal.to_json()
    } else {
        proposal.render(args.format)
    };
    // Said on stderr too, so an operator piping the ruleset to a file sees it.
    for c in &proposal.ruleset.closed {
        if let Some(flag) = &c.to_open {
            eprintln!(
                "autofw: left closed: {} {}/{} ({}): {}; to open it: {flag}",
                c.service, c.port, c.proto, c.owner, c.reason
            );
        }
    }
    for w in proposal.warnings() {
        eprintln!("autofw: warning: {w}");
    }
    if let Some(path) = &args.ipset {
        let sets = proposal.ipset_restore().ok_or_else(|| {
            bad_input("--ipset: this proposal has no blocklist, so there is no ipset to write")
        })?;
        std::fs::write(path, sets).map_err(|e| {
            crate::error::host_failure(format!("cannot write {}: {e}", path.display()))
        })?;
    }
    match &args.out {
        Some(path) => std::fs::write(path, text).map_err(|e| {
            crate::error::host_failure(format!("cannot write {}: {e}", path.display()))
        })?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(crate::error::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_processes_are_worded_by_who_scanned() {
        let mut scan = Scan {
            unreadable_processes: 2,
            ..Scan::default()
        };
        scan.as_root = Some(true);
        let root = scan_warnings(&scan).join("\n");
        assert!(root.contains("even as root"), "{root}");
        assert!(
            !root.contains("run as root"),
            "root cannot be told to run as root: {root}"
        );
        scan.as_root = Some(false);
        assert!(scan_warnings(&scan)[0].ends_with("run as root to see them all"));
        scan.as_root = None;
        assert!(scan_warnings(&scan)[0].contains("if it did not run as root"));
    }

    #[test]
    fn a_scan_without_uids_is_read_as_before_with_a_note() {
        let text = r#"{"listeners": [{"proto": "tcp", "address": "0.0.0.0", "port": 3000,
            "exposure": "public", "service": "unknown", "process": "node", "pids": [7],
            "risky": false}]}"#;
        let scan = parse_saved_scan(text, "old.json").unwrap();
        assert_eq!((scan.uid_min, scan.listeners[0].uid), (None, None));
        let proposal = build(&scan, &Choices::default()).unwrap();
        assert!(
            proposal
                .ruleset()
                .services()
                .any(|(_, port, _)| port == 3000)
        );
        assert!(
            proposal
                .warnings()
                .iter()
                .any(|w| w.contains("records no uids")),
            "{:?}",
            proposal.warnings()
        );
    }
}
