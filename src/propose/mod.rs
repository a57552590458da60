//! `autofw propose`: the whitelist ruleset for a scan and the operator's
//! choices.
//!
//! - [`spec`], [`rate`]: the grammar of SPECs, NETs and rates;
//! - [`policy_file`]: the `--policy` TOML file and its blocklist files;
//! - [`choices`]: flags and policy merged and validated into [`Choices`];
//! - [`draft`]: scan + choices → the ruleset model ([`group`] the listeners,
//!   decide, then [`rules`]);
//! - [`published`]: the guard of forwarded (DNAT) ports, from the INPUT openings;
//! - [`ruleset`]: the model (rules with their reasons), and `admits`;
//! - [`render_nft`], [`render_iptables`]: renderers; [`text`]: safe comments and strings.
//!
//! Only [`gather`](mod@gather) touches the host (files, the live scan, the
//! output); everything else is pure and deterministic: the same scan and choices give byte-identical
//! output.

pub(crate) mod choices;
pub(crate) mod draft;
pub(crate) mod gather;
pub(crate) mod group;
pub(crate) mod lockout;
pub(crate) mod policy_edit;
pub(crate) mod policy_file;
pub(crate) mod policy_write;
pub(crate) mod published;
pub(crate) mod rate;
pub(crate) mod render_iptables;
pub(crate) mod render_nft;
pub(crate) mod rules;
pub(crate) mod ruleset;
pub(crate) mod spec;
pub(crate) mod text;

pub use choices::Choices;
pub(crate) use render_nft::Target;
pub(crate) use ruleset::Ruleset;

use crate::error::bad_input;
use crate::model::Scan;
use crate::terminal::excerpt_of;
use ruleset::Family;
use std::path::PathBuf;

/// The policy file every command reads when it exists, and that `autofw
/// allow|block|limit|source|forget` edit (docs/policy.md).
pub(crate) const DEFAULT_POLICY: &str = "/etc/autofw/policy.toml";

/// Output format of a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One `table inet autofw`, loadable with `nft -f`.
    #[default]
    Nft,
    /// `iptables-restore` input (IPv4).
    Iptables,
    /// `ip6tables-restore` input (IPv6).
    Ip6tables,
}

/// The operator's choices as given, shared by `propose` and `apply`: specs
/// still as text, files still as paths ([`gather`] reads them).
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    /// `--allow` specs.
    pub allow: Vec<String>,
    /// `--block` specs.
    pub block: Vec<String>,
    /// `--limit SPEC[=RATE]`.
    pub limit: Vec<String>,
    /// `--source SPEC=NET[,NET...]`.
    pub source: Vec<String>,
    /// `--blocklist ADDR|NET`.
    pub blocklist: Vec<String>,
    /// `--policy FILE`: the TOML policy file, instead of the default.
    pub policy: Option<PathBuf>,
    /// `--no-policy`: not even the default policy file.
    pub no_policy: bool,
    /// Where the default policy is looked for: `ROOT/etc/autofw/policy.toml`
    /// (apply's `--root`); `/` when `None`.
    pub root: Option<PathBuf>,
    /// Skip (count) malformed blocklist lines instead of failing.
    pub skip_bad_lines: bool,
    /// A saved `scan --json` to read instead of scanning this host.
    pub from: Option<PathBuf>,
}

/// What `autofw propose` was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProposeOptions {
    pub policy: PolicyOptions,
    pub format: Format,
    /// Write the ruleset here instead of stdout.
    pub out: Option<PathBuf>,
    /// Print the model as JSON.
    pub json: bool,
    /// Also write the blocklist as `ipset restore` input here.
    pub ipset: Option<PathBuf>,
}

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
        self.render_for(format, Target::File)
    }

    /// The one renderer, for each place the text goes ([`Target`]): the
    /// proposal file; what apply loads and persist saves (nft: the
    /// blocklist sets declared empty, their elements loaded apart,
    /// [`Proposal::blocklist`]); the summary apply shows people. The
    /// iptables texts are the same for every target (their hooks differ
    /// only between the file, the boot files and a live load:
    /// [`Proposal::iptables_script`]).
    pub fn render_for(&self, format: Format, target: Target) -> String {
        match format {
            Format::Nft => render_nft::render(&self.ruleset, &self.header(format), target),
            Format::Iptables => self
                .iptables_script(Family::Ipv4)
                .render(render_iptables::Hooks::Proposal),
            Format::Ip6tables => self
                .iptables_script(Family::Ipv6)
                .render(render_iptables::Hooks::Proposal),
        }
    }

    /// The iptables rules of `family` as typed parts, hooked into the
    /// built-in chains only when rendered for where they go
    /// ([`render_iptables::Script::render`]).
    pub(crate) fn iptables_script(&self, family: Family) -> render_iptables::Script {
        let format = family.pick(Format::Iptables, Format::Ip6tables);
        render_iptables::script(&self.ruleset, family, &self.header(format))
    }

    /// The merged blocklist.
    pub fn blocklist(&self) -> &ruleset::Blocklist {
        &self.ruleset.blocklist
    }

    /// Would this ruleset accept this new connection (source, destination
    /// address and port, the interface it arrives on)? Used by apply's
    /// lockout guard, with the SSH session's own connection.
    pub fn admits(&self, arrival: ruleset::Arrival<'_>) -> bool {
        self.ruleset.admits(arrival)
    }

    /// `ipset restore` input for the blocklist sets that the iptables formats
    /// match (`None` without a blocklist). Load it before `iptables-restore`.
    pub fn ipset_restore(&self) -> Option<String> {
        render_iptables::ipset_restore(&self.ruleset)
    }

    /// The model: rules with their reasons, what was left closed, warnings.
    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    /// Add a warning found outside the scan (another filter on the host
    /// that drops what this ruleset opens): it is printed and rendered
    /// like the others.
    pub fn add_warning(&mut self, warning: String) {
        self.ruleset.warnings.push(warning);
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
        ];
        if let Some(other) = other_family(format) {
            lines.push(other.to_string());
        }
        lines.push(
            "Or let `autofw apply --confirm` load it, with an automatic rollback unless you confirm.".to_string(),
        );
        if !self.ruleset.closed.is_empty() {
            lines.push(String::new());
            lines.push("Left closed:".to_string());
            for c in &self.ruleset.closed {
                lines.push(format!("- {}", c.describe()));
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

/// What an iptables-format proposal leaves out: the other family, which
/// has its own tables and its own restore tool (`None` for nft, whose
/// `inet` table holds both). Without it that family stays as it was,
/// unfiltered if nothing else filters it.
pub(crate) fn other_family(format: Format) -> Option<&'static str> {
    match format {
        Format::Nft => None,
        Format::Iptables => Some(
            "This is IPv4 only: IPv6 needs its own rules, `autofw propose --format ip6tables` (loaded with ip6tables-restore --noflush); `apply --backend iptables` loads both.",
        ),
        Format::Ip6tables => Some(
            "This is IPv6 only: IPv4 needs its own rules, `autofw propose --format iptables` (loaded with iptables-restore --noflush); `apply --backend iptables` loads both.",
        ),
    }
}

/// Parse the text of a saved scan; `origin` names it in errors.
pub(crate) fn parse_saved_scan(text: &str, origin: &str) -> anyhow::Result<Scan> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json's message ends in its position; it may quote the input
        // (an unknown field or variant): an excerpt, escaped.
        let full = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let message = excerpt_of(full.strip_suffix(&position).unwrap_or(&full), 240);
        let at = match e.line() {
            0 => String::new(),
            line => format!(", line {line}, column {}", e.column()),
        };
        bad_input(format!(
            "saved scan {origin}{at}: {message}; expected the output of `autofw scan --json`"
        ))
    })
}

/// Build the proposal: pure, no host access.
pub fn build(scan: &Scan, choices: &Choices) -> Proposal {
    let mut ruleset = draft::build_ruleset(scan, choices);
    ruleset.warnings.extend(scan_warnings(scan));
    Proposal { ruleset }
}

/// What the scan itself leaves uncertain: processes it could not read
/// (worded by whether it ran as root: root cannot be told to run as root),
/// and a saved scan too old to say who owns what.
fn scan_warnings(scan: &Scan) -> Vec<String> {
    let mut warnings = Vec::new();
    let unreadable = scan.unreadable_processes;
    if unreadable > 0 {
        let mut n = crate::human::count(unreadable, "process", "processes");
        if let Some(named) = scan.unreadable_named() {
            n = format!("{n}, {named},");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 100,000 listeners, built to reach every place that once compared
    /// each listener with every other: thousands of ports with one
    /// listener each (public, private with an interface, loopback), 20,000
    /// bound addresses on one port with a wildcard among them (one group
    /// of 20,000), a loopback port held 10,000 times, and client sockets.
    /// Issue 21 measured 221 s here; linear work takes well under a second
    /// in release (a debug build is about ten times slower).
    fn many_listeners(n: usize) -> Scan {
        use crate::model::{Exposure, Listener, Proto};
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut listeners = Vec::with_capacity(n);
        let mut push = |proto, address: IpAddr, port: u16, exposure, i: usize| {
            let mut l = Listener::bare(proto, address, port, exposure);
            l.service = if i.is_multiple_of(3) {
                "unknown"
            } else {
                "http"
            }
            .to_string();
            l.process = format!("srv{}", i % 50);
            l.pids = vec![i as u32 + 1];
            l.uid = Some(0);
            l.interface = Some(format!("eth{}", i % 4));
            l.client_socket = i.is_multiple_of(97);
            listeners.push(l);
        };
        let proto = |i: usize| {
            if i.is_multiple_of(2) {
                Proto::Tcp
            } else {
                Proto::Udp
            }
        };
        for i in 0..20_000 {
            let address = IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128));
            push(Proto::Tcp, address, 8080, Exposure::Public, i);
        }
        push(
            Proto::Tcp,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            8080,
            Exposure::Public,
            1,
        );
        for i in 0..10_000 {
            push(
                Proto::Tcp,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                631,
                Exposure::Loopback,
                i,
            );
        }
        let rest = n - 30_001;
        for i in 0..rest {
            let port = 1024 + (i % 60_000) as u16;
            let (address, exposure) = match i % 3 {
                0 => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), Exposure::Public),
                1 => (
                    IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
                    Exposure::Private,
                ),
                _ => (IpAddr::V4(Ipv4Addr::LOCALHOST), Exposure::Loopback),
            };
            push(proto(i), address, port, exposure, i);
        }
        Scan {
            listeners,
            uid_min: Some(1000),
            ..Scan::default()
        }
    }

    #[test]
    fn every_port_allowed_over_many_listeners_is_proposed_in_linear_time() {
        // 65,535 `--allow` specs (what a 1 MiB policy can hold) over 100,000
        // listeners: each spec was compared with every group and opening
        // (5 s in release for the allows alone).
        let scan = many_listeners(100_000);
        let table = crate::services::ServiceTable::builtin();
        let allow: Vec<String> = (1..=65_535u32).map(|p| format!("{p}/tcp")).collect();
        let block = vec!["ssh".to_string(), "9/udp".to_string()];
        let choices = Choices::merge(&allow, &block, Default::default(), table).unwrap();
        let started = std::time::Instant::now();
        let proposal = build(&scan, &choices);
        let took = started.elapsed();
        assert!(proposal.ruleset().services().count() >= 65_535 - 1);
        let limit = if cfg!(debug_assertions) { 60.0 } else { 2.0 };
        assert!(
            took.as_secs_f64() < limit,
            "took {took:?} (limit {limit} s)"
        );
        say!("65,535 allowed ports over 100,000 listeners: built in {took:?}");
    }

    #[test]
    fn a_hundred_thousand_listeners_are_proposed_in_linear_time() {
        let scan = many_listeners(100_000);
        let table = crate::services::ServiceTable::builtin();
        let allow = vec!["http".to_string(), "9/udp".to_string()];
        let choices = Choices::merge(&allow, &[], Default::default(), table).unwrap();
        let started = std::time::Instant::now();
        let proposal = build(&scan, &choices);
        let built = started.elapsed();
        let nft = proposal.render(Format::Nft);
        let iptables = proposal.render(Format::Iptables);
        let took = started.elapsed();
        assert!(proposal.ruleset().services().count() > 10_000);
        assert!(nft.len() > 1_000_000 && iptables.len() > 1_000_000);
        // Quadratic work took 221 s in release here; linear work about
        // 0.1 s for the build on an idle machine. Generous limits, as the
        // machine may be busy: a debug build is about twenty times slower.
        let (build_limit, limit) = if cfg!(debug_assertions) {
            (60.0, 90.0)
        } else {
            (1.0, 3.0)
        };
        assert!(
            built.as_secs_f64() < build_limit && took.as_secs_f64() < limit,
            "100,000 listeners: built in {built:?} (limit {build_limit} s), rendered by {took:?} (limit {limit} s)"
        );
        say!("100,000 listeners: built in {built:?}, built and rendered twice in {took:?}");
    }

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
    fn hostile_saved_scans_are_refused_where_they_go_wrong_in_a_short_message() {
        let listener = |process: &str, port: u32| {
            format!(
                "{{\"listeners\": [\n{{\"proto\": \"tcp\", \"address\": \"0.0.0.0\", \"port\": {port},\n\
                 \"exposure\": \"public\", \"service\": \"x\", \"process\": \"{process}\", \"pids\": [7],\n\
                 \"risky\": false}}]}}"
            )
        };
        let err = |text: &str| format!("{:#}", parse_saved_scan(text, "s.json").unwrap_err());
        // A 1 MB process name: no scan writes it; refused at its line.
        let e = err(&listener(&"a".repeat(1 << 20), 22));
        assert!(e.starts_with("saved scan s.json, line 3, column "), "{e}");
        assert!(
            e.contains("a text of 1048576 bytes") && e.len() < 300,
            "{e}"
        );
        let e = err(&listener("sshd", 0));
        assert!(e.starts_with("saved scan s.json, line 2, column "), "{e}");
        assert!(e.contains("port 0"), "{e}");
        // An unknown variant is quoted escaped and cut.
        let e = err(&format!(
            "{{\"listeners\": [{{\"proto\": \"\\u001b[2J{}\"}}]}}",
            "x".repeat(100_000)
        ));
        assert!(
            e.contains("unknown variant `\\x1b[2Jxxx") && e.len() < 600,
            "{e}"
        );
        assert!(!e.contains('\x1b'), "{e}");
    }

    #[test]
    fn a_scan_without_uids_is_read_as_before_with_a_note() {
        let text = r#"{"listeners": [{"proto": "tcp", "address": "0.0.0.0", "port": 3000,
            "exposure": "public", "service": "unknown", "process": "node", "pids": [7],
            "risky": false}]}"#;
        let scan = parse_saved_scan(text, "old.json").unwrap();
        assert_eq!((scan.uid_min, scan.listeners[0].uid), (None, None));
        let proposal = build(&scan, &Choices::default());
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

    /// A device name becomes `iifname "NAME"`: a saved scan's must be one
    /// the kernel could have given.
    #[test]
    fn a_saved_scans_device_must_be_an_interface_name() {
        let with = |device: &str| {
            format!(
                r#"{{"listeners": [{{"proto": "udp", "address": "0.0.0.0", "port": 67,
                "exposure": "private", "service": "dhcp", "process": "dnsmasq", "pids": [7],
                "risky": false, "device": "{device}"}}]}}"#
            )
        };
        let scan = parse_saved_scan(&with("virbr0"), "kvm.json").unwrap();
        assert_eq!(scan.listeners[0].device.as_deref(), Some("virbr0"));
        for bad in ["", "a-name-of-16-chr", "eth0 accept", "x\\\"y", ".."] {
            let e = parse_saved_scan(&with(bad), "kvm.json")
                .unwrap_err()
                .to_string();
            // Refused where it is, with its line and column.
            assert!(
                e.starts_with("saved scan kvm.json, line 3, column ")
                    && e.contains(
                        "is not an interface name (1 to 15 characters, letters, digits and `-_.@+`)"
                    ),
                "{bad:?}: {e}"
            );
        }
    }
}
