//! What an apply would change, as data: autofw's part of the live firewall
//! before and after (as the firewall itself lists it), whether they differ,
//! and the lockout guard's verdict. The human dry run prints the parts as
//! diffs; `apply --json` prints the whole as one object for automation such
//! as the Ansible module (docs/json-schema.md, docs/fleet.md).

use std::net::IpAddr;

use serde::Serialize;

use super::guard;
use crate::blocklist::Listed;
use crate::blocklist::netlink;
use crate::blocklist::{SETS, SetContents, delta, set_name, summary_line};
use crate::firewall::backend::nft;
use crate::human::{fold_numbered_runs, unified_diff};
use crate::model::Scan;
use crate::propose::lockout::{self, Cause};
use crate::propose::ruleset::Arrival;
use crate::propose::{Choices, Proposal};
use crate::record::{OpenedPort, Rules, opened_ports};

pub(crate) use crate::firewall::backend::Part;

/// Every part the backend touches.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub parts: Vec<Part>,
    /// The blocklist sets (nft), by count and change, not by element.
    pub blocklist: Vec<SetChange>,
    /// iptables: where the jump goes among the live INPUT rules, per family
    /// (from the same save as `parts`), said with the dry run.
    pub placement: Vec<String>,
}

/// One blocklist set: `blocklist_v4: 1,000,000 entries, +12 −3 since the
/// live set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SetChange {
    pub name: &'static str,
    /// Elements after loading (an address, or a merged network or range).
    pub entries: usize,
    /// Elements added to and removed from the live set.
    pub added: usize,
    pub removed: usize,
    /// Whether the set exists live now.
    pub live: bool,
}

impl SetChange {
    pub(crate) fn line(&self) -> String {
        summary_line(self.name, self.entries, Some((self.added, self.removed)))
            + if self.live { "" } else { " (no live set yet)" }
    }

    /// Each set of `new` against the live content, if any.
    pub(crate) fn all(new: &SetContents, live: Option<&SetContents>) -> Vec<SetChange> {
        let empty = SetContents::default();
        let old = live.unwrap_or(&empty);
        let counts = [
            (
                new.v4.addresses.len(),
                count_delta(&old.v4.addresses, &new.v4.addresses),
            ),
            (
                new.v4.networks.len(),
                count_delta(&old.v4.networks, &new.v4.networks),
            ),
            (
                new.v6.addresses.len(),
                count_delta(&old.v6.addresses, &new.v6.addresses),
            ),
            (
                new.v6.networks.len(),
                count_delta(&old.v6.networks, &new.v6.networks),
            ),
        ];
        SETS.iter()
            .zip(counts)
            .map(|(&(family, kind), (entries, (added, removed)))| SetChange {
                name: set_name(family, kind),
                entries,
                added,
                removed,
                live: live.is_some(),
            })
            .collect()
    }
}

/// How many elements `new` adds to `old` and removes from it.
fn count_delta<T: Ord + Copy>(old: &[T], new: &[T]) -> (usize, usize) {
    let (add, del) = delta(old, new);
    (add.len(), del.len())
}

impl Plan {
    /// Read the live parts and work out how the proposal will be listed once
    /// loaded (in a scratch namespace; the text as written if none can be
    /// made, which then always counts as a change).
    /// `recorded`: the blocklist sets as autofw last loaded them
    /// ([`crate::firewall::backend::recorded_sets`]); the kernel is read when there is none.
    pub(crate) fn of(
        rules: &Rules,
        sets: Option<&SetContents>,
        recorded: Option<&SetContents>,
    ) -> anyhow::Result<Plan> {
        let (parts, placement) = crate::firewall::backend::parts(rules)?;
        let blocklist = match sets {
            Some(sets) => {
                // The kernel is read (and the ruleset listed to see whether
                // there is a table to read) only when nothing is recorded.
                let read = match recorded {
                    Some(_) => None,
                    None if nft::autofw_table_exists()? => netlink::live_sets()?,
                    None => None,
                };
                SetChange::all(sets, recorded.or(read.as_ref()))
            }
            None => Vec::new(),
        };
        Ok(Plan {
            parts,
            blocklist,
            placement,
        })
    }

    /// Would loading the proposal change the live firewall?
    pub(crate) fn changed(&self) -> bool {
        self.parts.iter().any(|p| p.before != p.after)
            || self
                .blocklist
                .iter()
                .any(|s| !s.live || s.added > 0 || s.removed > 0)
    }

    /// All parts' `before` (or `after`) as one text, each part under a
    /// `# NAME` line when there are several.
    fn joined(&self, side: impl Fn(&Part) -> &str) -> String {
        match self.parts.as_slice() {
            [one] => side(one).to_string(),
            parts => parts
                .iter()
                .map(|p| format!("# {}\n{}", p.name, side(p)))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// The lockout guard's answer about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum GuardVerdict {
    /// The new rules accept a new connection like this one.
    Admitted,
    /// They would not: apply refuses unless `--force`.
    LockedOut,
    /// Not run from SSH and no `--guard` given: nothing to check.
    NoSession,
}

/// Which connection the guard checked, and what it found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Guard {
    pub verdict: GuardVerdict,
    pub client: Option<IpAddr>,
    /// The server address the connection reached (unknown for `--guard`):
    /// a rule bound to one address admits only connections to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<IpAddr>,
    pub port: Option<u16>,
    /// Where the connection was learnt: `--guard`, `SSH_CONNECTION`, sshd's socket.
    pub source: Option<String>,
    /// Locked out: what drops the connection, each where it was given, and
    /// the change that removes it ([`Guard::explain`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    /// Locked out: whether the fixes together let the connection in (they
    /// are checked by drafting the rules again with them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<bool>,
    /// The interface the server address is on (where the session's packets
    /// arrive), for asking the rules again.
    #[serde(skip)]
    interface: Option<String>,
}

impl Guard {
    /// Check `explicit` (`--guard`), or else the SSH session apply runs in.
    pub(crate) fn check(proposal: &Proposal, explicit: Option<std::net::SocketAddr>) -> Guard {
        let session = match explicit {
            Some(addr) => Some(guard::SshSession {
                client: addr.ip().to_canonical(),
                server: None,
                server_port: addr.port(),
                source: "--guard".to_string(),
            }),
            None => guard::current(),
        };
        let Some(session) = session else {
            return Guard {
                verdict: GuardVerdict::NoSession,
                client: None,
                server: None,
                port: None,
                source: None,
                causes: Vec::new(),
                fixed: None,
                interface: None,
            };
        };
        // The interface holding the server address: where the session's
        // packets arrive (a rule for a listener bound to a private address
        // matches it).
        let interface = session.server.and_then(|server| {
            crate::scan::interfaces::local_addresses()
                .get(&server)
                .cloned()
        });
        let admitted = proposal.admits(Arrival {
            proto: guard::SshSession::PROTO,
            port: session.server_port,
            source: session.client,
            destination: session.server,
            interface: interface.as_deref(),
        });
        Guard {
            verdict: if admitted {
                GuardVerdict::Admitted
            } else {
                GuardVerdict::LockedOut
            },
            client: Some(session.client),
            server: session.server,
            port: Some(session.server_port),
            source: Some(session.source),
            causes: Vec::new(),
            fixed: None,
            interface,
        }
    }

    /// Locked out: find why, and the fixes that let the connection in
    /// (`listed`: the blocklist files' lines that list the client).
    pub(crate) fn explain(&mut self, scan: &Scan, choices: &Choices, listed: &[Listed]) {
        let (GuardVerdict::LockedOut, Some(client), Some(port)) =
            (self.verdict, self.client, self.port)
        else {
            return;
        };
        let arrival = lockout::ssh_arrival(port, client, self.server, self.interface.as_deref());
        let explanation = lockout::explain(scan, choices, arrival, listed);
        self.causes = explanation.causes;
        self.fixed = Some(explanation.fixed);
    }

    /// The causes, and the fixes that let the connection in, as the
    /// refusal says them after [`Guard::problem`].
    pub(crate) fn advice(&self) -> String {
        let force = "pass --force if you have another way in (a console)";
        let causes = self
            .causes
            .iter()
            .map(|c| c.cause.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let fixes = self
            .causes
            .iter()
            .map(|c| c.fix.as_str())
            .collect::<Vec<_>>()
            .join(", and ");
        match (self.causes.is_empty(), self.fixed) {
            (false, Some(true)) => {
                format!("Because {causes}. To get in: {fixes}; or {force}")
            }
            (false, _) => format!(
                "Because {causes}; autofw found no change of the choices that lets it in                  beyond that; {force}"
            ),
            (true, _) => format!("autofw found no change of the choices that lets it in; {force}"),
        }
    }

    /// Why the guard refuses, or `None` when it does not.
    pub(crate) fn problem(&self) -> Option<String> {
        let (GuardVerdict::LockedOut, Some(client), Some(port), Some(source)) =
            (self.verdict, self.client, self.port, &self.source)
        else {
            return None;
        };
        let which = match source.as_str() {
            "--guard" => "the connection given by --guard is",
            _ => "this session is SSH",
        };
        Some(match self.server {
            Some(server) => format!(
                "refusing to lock you out: {which} from {client} to {server} port {port} (from \
                 {source}), and the new rules would not accept a new connection to tcp/{port} \
                 on {server} from {client}"
            ),
            None => format!(
                "refusing to lock you out: {which} from {client} to port {port} (from {source}), \
                 and the new rules would not accept a new connection to tcp/{port} from {client}"
            ),
        })
    }
}

/// What `apply --json` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ApplyOutcome {
    /// No `--confirm`: nothing was changed.
    DryRun,
    /// The lockout guard refused; nothing was changed (exit 4).
    Refused,
    /// `--no-wait`, and the live rules already are the proposal: nothing
    /// loaded, no window.
    Unchanged,
    /// `--no-wait`: loaded, the window is open until `window.deadline`.
    Loaded,
}

/// The open rollback window, for whoever must confirm it in time.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WindowReport {
    /// Seconds since the Unix epoch.
    pub deadline: u64,
    pub watchdog_pid: u32,
    pub state_dir: String,
}

/// The one object `apply --json` prints.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub outcome: ApplyOutcome,
    /// Whether loading the proposal changes the live firewall (`Loaded`
    /// implies true; `Unchanged` false).
    pub changed: bool,
    pub backend: &'static str,
    /// autofw's part of the live firewall, as it lists it (empty: none).
    pub before: String,
    /// The same after loading the proposal.
    pub after: String,
    pub lockout: Guard,
    pub window: Option<WindowReport>,
    /// Ports the proposal opens, as `status` will check them.
    pub opened: Vec<OpenedPort>,
    /// The blocklist sets (nft backend), each by count and change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocklist: Vec<SetChange>,
    pub warnings: Vec<String>,
    /// How the host's other filters were judged against these rules, port
    /// by port (docs/foreign.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_filters: Option<crate::firewall::other_filters::Report>,
    /// What opens, what closes and why, what stays closed, the SSH
    /// session: what every apply says first ([`super::summary`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<super::summary::Summary>,
}

impl Report {
    pub(crate) fn with_other_filters(
        mut self,
        judged: crate::firewall::other_filters::Report,
    ) -> Report {
        self.other_filters = Some(judged);
        self
    }

    pub(crate) fn new(
        outcome: ApplyOutcome,
        plan: &Plan,
        rules: &Rules,
        proposal: &Proposal,
        lockout: &Guard,
    ) -> Report {
        Report {
            outcome,
            changed: plan.changed(),
            backend: rules.backend().name(),
            before: plan.joined(|p| &p.before),
            after: plan.joined(|p| &p.after),
            lockout: lockout.clone(),
            window: None,
            opened: opened_ports(proposal.ruleset()),
            blocklist: plan.blocklist.clone(),
            warnings: proposal.warnings().to_vec(),
            other_filters: None,
            summary: None,
        }
    }

    /// Print on stdout; a closed stdout is an error the caller returns.
    pub(crate) fn print(&self) -> anyhow::Result<()> {
        use std::io::Write;
        // Plain data with string keys: serializing cannot fail.
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        writeln!(std::io::stdout(), "{json}")?;
        Ok(())
    }
}

/// What changes in the live firewall, after the summary: where the
/// iptables jump goes among the live INPUT rules, then a unified diff of
/// autofw's part of it, as the firewall lists it, with alike runs folded
/// by [`fold_numbered_runs`].
pub(super) fn print_diffs(rules: &Rules, plan: &Plan) {
    // iptables: where the jump goes among the live INPUT rules.
    for note in &plan.placement {
        println!("# {}", crate::terminal::escape_controls(note));
    }
    let whose = crate::firewall::backend::whose(rules.backend());
    for part in &plan.parts {
        print_diff(
            &format!("live {}{whose}", part.name),
            &format!("new {}{whose}", part.name),
            &part.before,
            &part.after,
        );
    }
    // The blocklist sets: their size and change, never their elements, so
    // the output scales with the rules, not the list.
    if !plan.blocklist.is_empty() {
        println!();
        for set in &plan.blocklist {
            println!("# {}", set.line());
        }
    }
}

/// One part's unified diff, live → new, alike runs folded; or that it does
/// not change.
fn print_diff(old_name: &str, new_name: &str, old: &str, new: &str) {
    println!();
    if old == new {
        println!("# {old_name}: no change");
        return;
    }
    // The live side may hold any text another tool or a hand edit put there.
    print!(
        "{}",
        crate::terminal::escape_listing(&unified_diff(
            old_name,
            new_name,
            &fold_numbered_runs(old),
            &fold_numbered_runs(new),
            3
        ))
    );
}
