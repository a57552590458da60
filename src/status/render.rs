//! How `autofw status` is shown: one [`Report`] (what was applied, the
//! rollback window, the state of the rules, the findings), as text for
//! people or as one JSON object for scripts (schema in docs/json-schema.md).
//! Pure: returns strings.

use crate::terminal::{escape_controls, escape_listing};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::drift::{Assessment, Finding, Live, WindowState};
use crate::firewall::backend::compare::RulesState;
use crate::human::{count, thousands, utc};
use crate::record::{AppliedRecord, Backend, BlocklistRecord, ClosedPort, OpenedPort};

/// Everything `status` says; serialized as-is by `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    /// True when there is at least one finding (exit status 1).
    pub drift: bool,
    /// Seconds since the epoch at which the host was checked.
    pub checked_at: u64,
    pub state_dir: PathBuf,
    /// What the last apply loaded; `null` when nothing was ever applied.
    pub applied: Option<Applied>,
    /// The open rollback window; `null` when none is open.
    pub window: Option<WindowState>,
    /// Whether autofw's rules are loaded as applied; `null` when nothing
    /// was applied.
    pub rules: Option<RulesState>,
    /// Whose rules are live: the confirmed ones, those a rollback restored
    /// (and from which apply), those in a window, none, or unrecorded ones.
    pub live: Live,
    pub findings: Vec<Finding>,
    /// How the host's other filters were judged against autofw's rules:
    /// `verdict` (`judged`, `cached`, `not-needed`, `unchecked`) and each
    /// opened port's judgement (docs/foreign.md). Absent when nothing was
    /// applied or the rules are not loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_filters: Option<crate::firewall::other_filters::Report>,
}

/// What the last apply loaded (the parts of `applied.json` a person or a
/// script wants; the ruleset text itself stays in the state directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Applied {
    pub applied_at: u64,
    pub backend: Backend,
    pub confirmed: bool,
    pub rolled_back_at: Option<u64>,
    pub persisted: bool,
    pub opened: Vec<OpenedPort>,
    pub closed: Vec<ClosedPort>,
    /// The blocklist as last loaded (apply or refresh): its files and each
    /// set's count and digest; absent without a blocklist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocklist: Option<BlocklistRecord>,
}

impl Report {
    pub(crate) fn new(
        state_dir: PathBuf,
        checked_at: u64,
        record: Option<&AppliedRecord>,
        window: Option<WindowState>,
        assessment: Assessment,
    ) -> Report {
        Report {
            drift: !assessment.findings.is_empty(),
            checked_at,
            state_dir,
            applied: record.map(|r| Applied {
                applied_at: r.applied_at,
                backend: r.backend(),
                confirmed: r.confirmed(),
                rolled_back_at: r.rolled_back_at(),
                persisted: r.persisted(),
                opened: r.opened.clone(),
                closed: r.closed.clone(),
                blocklist: r.blocklist.clone(),
            }),
            window,
            rules: assessment.rules,
            live: assessment.live,
            findings: assessment.findings,
            other_filters: None,
        }
    }
}

/// `1,000,002 entries from 1 file (refreshed 2026-11-28T06:29:43Z)`: what
/// was loaded; a difference with the live sets or the files is a finding.
fn blocklist_line(b: &BlocklistRecord) -> String {
    let entries: usize = b.sets.iter().map(|s| s.entries).sum();
    let mut from = Vec::new();
    if !b.files.is_empty() {
        from.push(count(b.files.len(), "file", "files"));
    }
    if !b.inline.is_empty() {
        from.push(count(
            b.inline.len(),
            "entry in the policy",
            "entries in the policy",
        ));
    }
    let mut text = format!("{} entries", thousands(entries));
    if !from.is_empty() {
        text.push_str(&format!(" from {}", from.join(" and ")));
    }
    if let Some(at) = b.refreshed_at {
        text.push_str(&format!(" (refreshed {})", utc(at)));
    }
    text
}

/// The report as one pretty JSON object.
pub(crate) fn json(report: &Report) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default() + "\n"
}

/// Width of the labels in the text form.
const LABEL: usize = 17;

/// The report for people: a few labelled lines, then the findings.
pub(crate) fn text(report: &Report) -> String {
    let mut out = String::new();
    // An empty label continues the line above.
    let mut line = |label: &str, value: &str| {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        out.push_str(&format!("{label:<LABEL$}{}\n", escape_controls(value)));
    };
    line("state directory", &report.state_dir.display().to_string());
    match &report.applied {
        None => line("applied", "nothing (no record of an apply)"),
        Some(a) => {
            line(
                "applied",
                &format!(
                    "{} ({} ago) with {}; {}; {}",
                    utc(a.applied_at),
                    age(report.checked_at, a.applied_at),
                    a.backend,
                    match (a.confirmed, a.rolled_back_at) {
                        (_, Some(at)) => format!("rolled back at {}", utc(at)),
                        (true, None) => "confirmed".to_string(),
                        (false, None) => "not confirmed yet".to_string(),
                    },
                    if a.persisted {
                        "persisted for boot"
                    } else {
                        "not persisted"
                    }
                ),
            );
            let opened: Vec<String> = a
                .opened
                .iter()
                .map(|o| format!("{}/{} {}", o.port, o.proto, o.service))
                .collect();
            line(
                "opened",
                &if opened.is_empty() {
                    "nothing".to_string()
                } else {
                    opened.join(", ")
                },
            );
            for (i, c) in a.closed.iter().enumerate() {
                line(
                    if i == 0 { "left closed" } else { "" },
                    &format!("{}/{} {}: {}", c.port, c.proto, c.service, c.reason),
                );
            }
            if let Some(b) = &a.blocklist {
                line("blocklist", &blocklist_line(b));
            }
        }
    }
    match &report.window {
        None => line("rollback window", "none open"),
        Some(w) if !w.same_boot => line(
            "rollback window",
            &format!(
                "left open by an apply before the machine restarted (deadline was {}): dead, \
                 its rules were dropped by the restart",
                utc(w.deadline)
            ),
        ),
        Some(w) => line(
            "rollback window",
            &format!(
                "open until {} ({}); watchdog pid {} {}; apply pid {} {}",
                utc(w.deadline),
                if w.seconds_left > 0 {
                    format!("{} s left", w.seconds_left)
                } else {
                    "deadline passed".to_string()
                },
                w.watchdog_pid,
                if w.watchdog_alive { "running" } else { "gone" },
                w.apply_pid,
                if w.apply_alive { "running" } else { "gone" },
            ),
        ),
    }
    if let Some(rules) = &report.rules {
        line(
            "live rules",
            &match rules {
                RulesState::Live => "loaded, exactly as applied".to_string(),
                RulesState::Unverified { reason } => format!("loaded; not compared: {reason}"),
                RulesState::Missing => "not loaded".to_string(),
                RulesState::Changed { .. } => "loaded, but changed since applied".to_string(),
                RulesState::RolledBack { at } => format!("rolled back at {}", utc(*at)),
            },
        );
    }
    // Whose rules the firewall holds, named: after a rollback, the apply
    // whose rules it restored.
    line("live", &super::wording::live(&report.live));
    out.push('\n');
    if report.findings.is_empty() {
        out.push_str(
            "no drift: every listener beyond loopback is opened or closed as applied, every \
             opened port still has its listener, and the rules are loaded as applied\n",
        );
        return out;
    }
    let n = report.findings.len();
    out.push_str(&format!("drift: {}\n", count(n, "finding", "findings")));
    for f in &report.findings {
        out.push('\n');
        let kind = f.kind.as_str();
        match (f.port, f.proto) {
            (Some(port), Some(proto)) => out.push_str(&format!("{kind} {port}/{proto}\n")),
            _ => out.push_str(&format!("{kind}\n")),
        }
        // Messages quote process names and other tools' rules: escaped.
        out.push_str(&format!(
            "  {}\n  fix: {}\n",
            escape_controls(&f.message),
            escape_controls(&f.fix)
        ));
        if let Some(diff) = &f.diff {
            for l in diff.lines() {
                out.push_str(&format!("    {}\n", escape_listing(l)));
            }
        }
    }
    out
}

/// `3m 20s`, rounded to whole seconds; `0s` for a clock that went back.
fn age(now: u64, then: u64) -> String {
    humantime::format_duration(Duration::from_secs(now.saturating_sub(then))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;
    use crate::status::drift::Kind;

    fn record() -> AppliedRecord {
        AppliedRecord {
            applied_at: 1_700_000_000,
            rules: crate::record::Rules::Nft {
                text: "table inet autofw {}".into(),
            },
            opened: vec![OpenedPort {
                proto: Proto::Tcp,
                port: 22,
                service: "ssh".into(),
                interfaces: Vec::new(),
            }],
            life: crate::record::Life::Confirmed(crate::record::Confirmed {
                at: 1_700_000_030,
                persisted: true,
            }),
            closed: vec![ClosedPort {
                proto: Proto::Tcp,
                port: 21,
                service: "ftp".into(),
                reason: "kept closed by --block ftp".into(),
            }],
            listening: Vec::new(),
            blocklist: None,
            openings: Vec::new(),
            given: Default::default(),
        }
    }

    fn finding() -> Finding {
        Finding {
            kind: Kind::StaleHole,
            message: "the firewall accepts new connections to 80/tcp".into(),
            fix: "run `autofw apply --confirm` again".into(),
            proto: Some(Proto::Tcp),
            port: Some(80),
            service: Some("http".into()),
            owner: None,
            addresses: Vec::new(),
            diff: None,
        }
    }

    fn report(findings: Vec<Finding>, window: Option<WindowState>) -> Report {
        Report::new(
            "/var/lib/autofw".into(),
            1_700_000_200,
            Some(&record()),
            window,
            Assessment {
                rules: Some(RulesState::Live),
                live: Live::Confirmed {
                    applied_at: 1_700_000_000,
                    confirmed_at: 1_700_000_030,
                },
                findings,
            },
        )
    }

    #[test]
    fn text_without_drift() {
        let text = text(&report(Vec::new(), None));
        assert_eq!(
            text,
            "state directory: /var/lib/autofw\n\
             applied:         2023-11-14T22:13:20Z (3m 20s ago) with nft; confirmed; persisted for boot\n\
             opened:          22/tcp ssh\n\
             left closed:     21/tcp ftp: kept closed by --block ftp\n\
             rollback window: none open\n\
             live rules:      loaded, exactly as applied\n\
             live:            the confirmed rules of the apply at 2023-11-14T22:13:20Z \
             (confirmed at 2023-11-14T22:13:50Z)\n\
             \n\
             no drift: every listener beyond loopback is opened or closed as applied, every \
             opened port still has its listener, and the rules are loaded as applied\n"
        );
    }

    #[test]
    fn the_blocklist_is_one_line_of_counts() {
        let set = |name: &str, entries| crate::blocklist::SetSummary {
            name: name.to_string(),
            entries,
            digest: "0".to_string(),
        };
        let b = BlocklistRecord {
            files: vec!["/etc/autofw/drop.txt".into()],
            inline: vec!["198.51.100.0/24".to_string()],
            skip_bad_lines: false,
            sets: vec![set("blocklist_v4", 1_000_000), set("blocklist_net_v4", 1)],
            refreshed_at: Some(1_700_000_000),
        };
        assert_eq!(
            blocklist_line(&b),
            "1,000,001 entries from 1 file and 1 entry in the policy (refreshed 2023-11-14T22:13:20Z)"
        );
    }

    #[test]
    fn text_with_findings_and_a_window() {
        let window = WindowState {
            deadline: 1_700_000_230,
            seconds_left: 30,
            seconds_overdue: 0,
            same_boot: true,
            watchdog_says: None,
            watchdog_pid: 7,
            watchdog_alive: true,
            apply_pid: 6,
            apply_alive: false,
        };
        let text = text(&report(vec![finding()], Some(window)));
        assert!(
            text.contains("rollback window: open until 2023-11-14T22:17:10Z (30 s left); watchdog pid 7 running; apply pid 6 gone\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "drift: 1 finding\n\nstale-hole 80/tcp\n  the firewall accepts new connections to 80/tcp\n  fix: run `autofw apply --confirm` again\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_has_the_documented_fields() {
        let value: serde_json::Value =
            serde_json::from_str(&json(&report(vec![finding()], None))).unwrap();
        assert_eq!(value["drift"], true);
        assert_eq!(value["applied"]["backend"], "nft");
        assert_eq!(value["applied"]["opened"][0]["port"], 22);
        assert_eq!(
            value["applied"]["closed"][0]["reason"],
            "kept closed by --block ftp"
        );
        assert_eq!(value["window"], serde_json::Value::Null);
        assert_eq!(value["rules"]["state"], "live");
        assert_eq!(value["findings"][0]["kind"], "stale-hole");
        assert_eq!(value["findings"][0]["proto"], "tcp");
        assert!(value["findings"][0].get("diff").is_none());
        assert!(value["applied"].get("ruleset").is_none());
    }
}
