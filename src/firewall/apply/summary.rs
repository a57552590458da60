//! The few lines every apply starts with (dry run, `--confirm`, `--json`):
//! what opens, what closes and why, what stays closed and why, and whether
//! the operator's SSH session stays allowed. A port must never close in
//! silence: the diff says `-` deep in a listing, this says it first, with the
//! reason (nothing listens on it now; a one-off `--allow` of the last apply
//! that was not given again; a `--block`). Pure: the edge hands in the last
//! apply's record, the proposal, what listens now and the guard's verdict.

use std::net::IpAddr;

use serde::Serialize;

use crate::model::Proto;
use crate::propose::Ruleset;
use crate::propose::spec::Spec;
use crate::record::{ListeningPort, OpenedPort};
use crate::services::ServiceTable;

/// What autofw's rules loaded now open, and what that apply was given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Before<'a> {
    /// The ports the live rules open (the apply record of the rules loaded now).
    pub opened: &'a [OpenedPort],
    /// The one-off `--allow` specs that apply was given (comma lists as typed).
    pub allow_flags: &'a [String],
    /// What listened beyond loopback when it was applied.
    pub listening: &'a [ListeningPort],
}

/// The operator's SSH session, as the lockout guard judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Session {
    pub client: IpAddr,
    pub port: u16,
    /// The new rules accept a new connection from `client` to `port`.
    pub admitted: bool,
}

/// Everything the summary is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// `None`: no autofw rules are loaded now (the first apply, after
    /// `autofw disable`, or a rollback to before autofw).
    pub before: Option<Before<'a>>,
    pub ruleset: &'a Ruleset,
    /// The (proto, port)s that listeners beyond loopback hold now.
    pub listening: &'a [ListeningPort],
    pub table: &'a ServiceTable,
    pub session: Option<Session>,
}

/// One port in the summary, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Line {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
    pub why: String,
}

impl Line {
    fn name(&self) -> String {
        if self.service == "unknown" {
            format!("{}/{}", self.port, self.proto)
        } else {
            format!("{}/{} {}", self.port, self.proto, self.service)
        }
    }
}

/// The summary, as `apply --json` reports it (`summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// Opened by these rules and not by the rules loaded now.
    pub opens: Vec<Line>,
    /// Opened by the rules loaded now, closed by these.
    pub closes: Vec<Line>,
    /// Listened on beyond loopback, kept closed (and not open now either).
    pub stays_closed: Vec<Line>,
    /// Open now and after: `22/tcp ssh`.
    pub stays_open: Vec<String>,
    /// The operator's SSH session, said as a sentence; `None` without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// autofw's own rules of the other backend, removed in the same step
    /// (`autofw's nft rules (table inet autofw)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removes: Option<String>,
}

impl Summary {
    /// Nothing opens and nothing closes.
    pub(crate) fn no_port_changes(&self) -> bool {
        self.opens.is_empty() && self.closes.is_empty()
    }
}

/// Work the summary out.
pub(crate) fn summarize(facts: &Facts<'_>) -> Summary {
    let after = opened_after(facts.ruleset);
    let before: Vec<(Proto, u16, &str)> = match facts.before {
        Some(b) => b
            .opened
            .iter()
            .map(|o| (o.proto, o.port, o.service.as_str()))
            .collect(),
        None => Vec::new(),
    };
    let is_open_before = |proto, port| before.iter().any(|&(p, n, _)| (p, n) == (proto, port));
    let is_open_after = |proto, port| after.iter().any(|l| (l.proto, l.port) == (proto, port));

    let opens = after
        .iter()
        .filter(|l| !is_open_before(l.proto, l.port))
        .cloned()
        .collect();
    let stays_open = after
        .iter()
        .filter(|l| is_open_before(l.proto, l.port))
        .map(Line::name)
        .collect();
    let closes = before
        .iter()
        .filter(|&&(proto, port, _)| !is_open_after(proto, port))
        .map(|&(proto, port, service)| Line {
            proto,
            port,
            service: service.to_string(),
            why: why_closes(facts, proto, port, service),
        })
        .collect();
    let mut stays_closed: Vec<Line> = Vec::new();
    for closed in &facts.ruleset.closed {
        let listens = facts
            .listening
            .iter()
            .any(|l| (l.proto, l.port) == (closed.proto, closed.port));
        let said = stays_closed
            .iter()
            .any(|l| (l.proto, l.port) == (closed.proto, closed.port));
        if !listens || said || is_open_before(closed.proto, closed.port) {
            continue;
        }
        let why = match &closed.to_open {
            Some(flag) => format!("{}; to open it: {flag}", closed.reason),
            None => closed.reason.clone(),
        };
        stays_closed.push(Line {
            proto: closed.proto,
            port: closed.port,
            service: closed.service.clone(),
            why,
        });
    }
    stays_closed.sort_by_key(|l| (l.port, l.proto));
    Summary {
        opens,
        closes,
        stays_closed,
        stays_open,
        session: facts.session.map(session_sentence),
        removes: None,
    }
}

/// The services these rules open, one line per (proto, port), with the
/// reason of its first rule, by port.
fn opened_after(ruleset: &Ruleset) -> Vec<Line> {
    use crate::propose::ruleset::{Action, Match};
    let mut lines: Vec<Line> = Vec::new();
    for rule in &ruleset.input {
        let Match::Service {
            proto,
            port,
            service,
            ..
        } = &rule.matches
        else {
            continue;
        };
        if rule.action != Action::Accept
            || lines.iter().any(|l| (l.proto, l.port) == (*proto, *port))
        {
            continue;
        }
        lines.push(Line {
            proto: *proto,
            port: *port,
            service: service.clone(),
            why: rule.reason.clone(),
        });
    }
    lines.sort_by_key(|l| (l.port, l.proto));
    lines
}

/// Why a port the live rules open is closed by these: blocked now; a
/// one-off `--allow` of the last apply not given again; nothing listens.
fn why_closes(facts: &Facts<'_>, proto: Proto, port: u16, service: &str) -> String {
    let closed = facts
        .ruleset
        .closed
        .iter()
        .find(|c| (c.proto, c.port) == (proto, port));
    if let Some(c) = closed.filter(|c| c.reason.starts_with("kept closed by")) {
        return format!("blocked now: {}", c.reason);
    }
    let listens = facts
        .listening
        .iter()
        .any(|l| (l.proto, l.port) == (proto, port));
    if let Some(flag) = facts
        .before
        .and_then(|b| one_off_flag(b, facts.table, proto, port, service))
    {
        return format!(
            "opened by `--allow {flag}` at the last apply, which this apply was not given and \
             the policy does not hold{}; to keep it: `autofw allow {flag}` (the policy) or \
             --allow {flag} again",
            if listens {
                ""
            } else {
                " (and nothing listens on it now)"
            }
        );
    }
    if !listens {
        let listened = facts.before.and_then(|b| {
            b.listening
                .iter()
                .find(|l| (l.proto, l.port) == (proto, port))
        });
        return match listened {
            Some(l) => format!(
                "nothing listens on it now ({} listened at the last apply)",
                l.service
            ),
            None => "nothing listens on it now, and neither this apply's flags nor the \
                     policy allow it any more"
                .to_string(),
        };
    }
    match closed {
        Some(c) => match &c.to_open {
            Some(flag) => format!("{}; to open it: {flag}", c.reason),
            None => c.reason.clone(),
        },
        None => "these rules do not open it".to_string(),
    }
}

/// The `--allow` spec of the last apply that opened this port, if any.
fn one_off_flag(
    before: Before<'_>,
    table: &ServiceTable,
    proto: Proto,
    port: u16,
    service: &str,
) -> Option<String> {
    before
        .allow_flags
        .iter()
        .flat_map(|given| given.split(','))
        .map(str::trim)
        .find(|text| {
            Spec::parse(text, table).is_ok_and(|spec| spec.matches(proto, port, service, table))
        })
        .map(str::to_string)
}

fn session_sentence(session: Session) -> String {
    if session.admitted {
        format!(
            "your SSH session (from {} to port {}) stays allowed",
            session.client, session.port
        )
    } else {
        format!(
            "your SSH session (from {} to port {}) would NOT be allowed by these rules",
            session.client, session.port
        )
    }
}

/// The summary for people: a heading, then one line per port.
pub(crate) fn text(summary: &Summary) -> String {
    let mut out = String::new();
    if summary.no_port_changes() {
        out.push_str("summary: no port opens or closes\n");
    } else {
        out.push_str(&format!(
            "summary: {} {}, {} {}\n",
            summary.opens.len(),
            crate::human::plural(summary.opens.len(), "port opens", "ports open"),
            summary.closes.len(),
            crate::human::plural(summary.closes.len(), "port closes", "ports close"),
        ));
    }
    for line in &summary.opens {
        out.push_str(&format!("  opens:        {}: {}\n", line.name(), line.why));
    }
    for line in &summary.closes {
        out.push_str(&format!("  CLOSES:       {}: {}\n", line.name(), line.why));
    }
    if !summary.stays_open.is_empty() {
        out.push_str(&format!(
            "  stays open:   {}\n",
            summary.stays_open.join(", ")
        ));
    }
    for line in &summary.stays_closed {
        out.push_str(&format!("  stays closed: {}: {}\n", line.name(), line.why));
    }
    if let Some(removes) = &summary.removes {
        out.push_str(&format!(
            "  removes:      {removes}, in the same step (a rollback puts them back)\n"
        ));
    }
    if let Some(session) = &summary.session {
        out.push_str(&format!("  {session}\n"));
    }
    // The reasons quote process names, which any process can set: what
    // a terminal would act on is shown escaped.
    out.lines()
        .map(|line| crate::terminal::escape_controls(line) + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exposure, Listener, Scan};
    use crate::propose::choices::Choices;
    use crate::propose::policy_file::Policy;
    use crate::record::listening_ports;

    fn listener(proto: Proto, addr: &str, port: u16, service: &str, process: &str) -> Listener {
        let address: IpAddr = addr.parse().unwrap();
        Listener {
            service: service.into(),
            process: process.into(),
            pids: vec![100 + u32::from(port % 100)],
            risky: crate::services::is_risky(service),
            ..Listener::bare(proto, address, port, Exposure::Public)
        }
    }

    /// A host with sshd on 5622, and nginx on 80 when `nginx` runs, and a
    /// MySQL listening beyond loopback.
    fn scan(nginx: bool) -> Scan {
        let mut listeners = vec![
            listener(Proto::Tcp, "0.0.0.0", 5622, "ssh", "sshd"),
            listener(Proto::Tcp, "0.0.0.0", 3306, "mysql", "mysqld"),
        ];
        if nginx {
            listeners.push(listener(Proto::Tcp, "0.0.0.0", 80, "http", "nginx"));
        }
        Scan {
            listeners,
            ..Scan::default()
        }
    }

    fn ruleset(scan: &Scan, allow: &[&str], block: &[&str]) -> Ruleset {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let choices = Choices::merge(
            &s(allow),
            &s(block),
            Policy::default(),
            ServiceTable::builtin(),
        )
        .unwrap();
        crate::propose::build(scan, &choices).ruleset().clone()
    }

    fn opened(ports: &[(u16, &str)]) -> Vec<OpenedPort> {
        ports
            .iter()
            .map(|&(port, service)| OpenedPort {
                proto: Proto::Tcp,
                port,
                service: service.to_string(),
                interfaces: Vec::new(),
            })
            .collect()
    }

    fn summary(
        now: &Scan,
        allow: &[&str],
        block: &[&str],
        before: Option<Before<'_>>,
        session: Option<Session>,
    ) -> Summary {
        let ruleset = ruleset(now, allow, block);
        let listening = listening_ports(now);
        let table = ServiceTable::builtin();
        summarize(&Facts {
            before,
            ruleset: &ruleset,
            listening: &listening,
            table: &table,
            session,
        })
    }

    /// The summary after a last apply on `scan(true)` that opened `was`,
    /// given these one-off `--allow` flags.
    fn since(
        was: &[(u16, &str)],
        allow_flags: &[String],
        now: &Scan,
        allow: &[&str],
        block: &[&str],
        session: Option<Session>,
    ) -> Summary {
        let then = listening_ports(&scan(true));
        let was = opened(was);
        let before = Before {
            opened: &was,
            allow_flags,
            listening: &then,
        };
        summary(now, allow, block, Some(before), session)
    }

    fn ports(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| format!("{}/{}", l.port, l.proto))
            .collect()
    }

    const SESSION: Session = Session {
        client: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)),
        port: 5622,
        admitted: true,
    };

    #[test]
    fn a_stopped_daemon_closes_its_port_and_says_nothing_listens() {
        let s = since(
            &[(80, "http"), (5622, "ssh")],
            &[],
            &scan(false),
            &[],
            &[],
            Some(SESSION),
        );
        assert!(s.opens.is_empty(), "{s:?}");
        assert_eq!(ports(&s.closes), ["80/tcp"]);
        assert!(
            s.closes[0].why.starts_with("nothing listens on it now"),
            "{}",
            s.closes[0].why
        );
        assert_eq!(s.stays_open, ["5622/tcp ssh"]);
        let text = text(&s);
        assert!(
            text.starts_with("summary: 0 ports open, 1 port closes\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  CLOSES:       80/tcp http: nothing listens on it now (http listened at the last \
                 apply)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_one_off_allow_not_given_again_is_named_as_the_reason() {
        let flags = vec!["http,8443/tcp".to_string()];
        let s = since(
            &[(5622, "ssh"), (8443, "unknown")],
            &flags,
            &scan(true),
            &[],
            &[],
            None,
        );
        assert_eq!(ports(&s.closes), ["8443/tcp"]);
        let why = &s.closes[0].why;
        assert!(
            why.starts_with("opened by `--allow 8443/tcp` at the last apply"),
            "{why}"
        );
        assert!(why.contains("nothing listens on it now"), "{why}");
        assert!(why.contains("`autofw allow 8443/tcp`"), "{why}");
        // nginx listens: 80 opens, for the listener.
        assert_eq!(ports(&s.opens), ["80/tcp"]);
        assert!(s.opens[0].why.contains("nginx"), "{}", s.opens[0].why);
        assert!(text(&s).contains("  CLOSES:       8443/tcp: opened by"));
    }

    #[test]
    fn a_block_closes_a_listening_port_and_says_blocked() {
        let s = since(
            &[(80, "http"), (5622, "ssh")],
            &[],
            &scan(true),
            &[],
            &["http"],
            None,
        );
        assert_eq!(ports(&s.closes), ["80/tcp"]);
        assert_eq!(s.closes[0].why, "blocked now: kept closed by --block http");
    }

    #[test]
    fn an_allow_opens_and_what_listens_closed_stays_closed_with_why() {
        let s = since(
            &[(80, "http"), (5622, "ssh")],
            &[],
            &scan(true),
            &["https"],
            &[],
            Some(SESSION),
        );
        assert_eq!(ports(&s.opens), ["443/tcp", "443/udp"]);
        assert!(
            s.opens[0].why.contains("--allow https"),
            "{}",
            s.opens[0].why
        );
        assert!(s.closes.is_empty());
        assert_eq!(ports(&s.stays_closed), ["3306/tcp"]);
        assert!(
            s.stays_closed[0].why.ends_with("to open it: --allow mysql"),
            "{}",
            s.stays_closed[0].why
        );
        assert_eq!(
            s.session.as_deref(),
            Some("your SSH session (from 192.0.2.2 to port 5622) stays allowed")
        );
    }

    #[test]
    fn the_first_apply_opens_everything_it_opens() {
        let s = summary(&scan(true), &[], &[], None, None);
        assert_eq!(ports(&s.opens), ["80/tcp", "5622/tcp"]);
        assert!(s.closes.is_empty() && s.stays_open.is_empty());
    }

    #[test]
    fn nothing_to_change_is_said_in_one_line() {
        let s = since(
            &[(80, "http"), (5622, "ssh")],
            &[],
            &scan(true),
            &[],
            &[],
            Some(Session {
                admitted: false,
                ..SESSION
            }),
        );
        assert!(s.no_port_changes());
        assert_eq!(
            text(&s),
            "summary: no port opens or closes\n\
             \x20 stays open:   80/tcp http, 5622/tcp ssh\n\
             \x20 stays closed: 3306/tcp mysql: mysql listens beyond loopback, which for a \
             database, cache or admin service is almost always an accident; to open it: \
             --allow mysql\n\
             \x20 your SSH session (from 192.0.2.2 to port 5622) would NOT be allowed by these rules\n"
        );
    }
}
