//! `autofw status --format prometheus`: the [`Report`] as Prometheus text
//! exposition, for node_exporter's textfile collector (docs/status.md).
//! Pure: returns a string.
//!
//! Every finding kind is written, 0 when absent, so that an alert on
//! `autofw_drift_findings{kind="unopened-listener"} > 0` has a series to
//! watch from the first scrape. Times are Unix seconds (Prometheus
//! convention); the age is given too, for dashboards that want no `time()`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::drift::Kind;
use super::render::Report;
use crate::firewall::backend::compare::RulesState;

/// The finding kinds this autofw knows, in their JSON spelling.
const KINDS: [Kind; 13] = [
    Kind::NothingApplied,
    Kind::NotLive,
    Kind::Changed,
    Kind::BlocklistDiffers,
    Kind::PolicyChanged,
    Kind::AcceptBeforeAutofw,
    Kind::ForeignDrop,
    Kind::LegacyRules,
    Kind::UnguardedWindow,
    Kind::RollbackOverdue,
    Kind::UnopenedListener,
    Kind::StaleHole,
    Kind::RiskyExposed,
];

/// One metric family: HELP, TYPE, then its samples.
fn family(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

pub(crate) fn prometheus(report: &Report) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "autofw_drift",
        "1 when autofw status found drift (any finding), else 0.",
        &[(String::new(), flag(report.drift))],
    );
    let mut by_kind: BTreeMap<&str, f64> = KINDS.iter().map(|k| (k.as_str(), 0.0)).collect();
    for finding in &report.findings {
        *by_kind.entry(finding.kind.as_str()).or_default() += 1.0;
    }
    family(
        &mut out,
        "autofw_drift_findings",
        "Drift findings by kind (/usr/share/doc/autofw/status.md lists the kinds).",
        &by_kind
            .into_iter()
            .map(|(kind, n)| (format!("{{kind=\"{kind}\"}}"), n))
            .collect::<Vec<_>>(),
    );
    let (opened, closed) = report
        .applied
        .as_ref()
        .map_or((0, 0), |a| (a.opened.len(), a.closed.len()));
    family(
        &mut out,
        "autofw_ports",
        "Ports the applied rules open (state=\"open\") and listeners they left closed (state=\"closed\").",
        &[
            ("{state=\"open\"}".to_string(), opened as f64),
            ("{state=\"closed\"}".to_string(), closed as f64),
        ],
    );
    let applied = report.applied.as_ref();
    family(
        &mut out,
        "autofw_applied",
        "1 when an apply is recorded and was not rolled back, else 0.",
        &[(
            String::new(),
            flag(applied.is_some_and(|a| a.rolled_back_at.is_none())),
        )],
    );
    family(
        &mut out,
        "autofw_rules_loaded",
        "1 when autofw's rules are loaded as applied (or loaded and not comparable), else 0.",
        &[(
            String::new(),
            flag(matches!(
                report.rules,
                Some(RulesState::Live | RulesState::Unverified { .. })
            )),
        )],
    );
    family(
        &mut out,
        "autofw_persisted",
        "1 when the applied rules were saved for boot, else 0.",
        &[(String::new(), flag(applied.is_some_and(|a| a.persisted)))],
    );
    if let Some(b) = applied.and_then(|a| a.blocklist.as_ref()) {
        family(
            &mut out,
            "autofw_blocklist_entries",
            "Entries of each blocklist set as apply or the last refresh loaded them \
             (a difference with the live sets or the files is a blocklist-differs finding).",
            &b.sets
                .iter()
                .map(|s| (format!("{{set=\"{}\"}}", s.name), s.entries as f64))
                .collect::<Vec<_>>(),
        );
        if let Some(at) = b.refreshed_at {
            family(
                &mut out,
                "autofw_blocklist_refresh_timestamp_seconds",
                "When `autofw blocklist refresh` last loaded the files, in Unix seconds.",
                &[(String::new(), at as f64)],
            );
        }
    }
    if let Some(a) = applied {
        family(
            &mut out,
            "autofw_last_apply_timestamp_seconds",
            "When the last apply loaded its rules, in Unix seconds.",
            &[(String::new(), a.applied_at as f64)],
        );
        family(
            &mut out,
            "autofw_seconds_since_last_apply",
            "Seconds between the last apply and this check.",
            &[(
                String::new(),
                report.checked_at.saturating_sub(a.applied_at) as f64,
            )],
        );
    }
    family(
        &mut out,
        "autofw_rollback_window_open",
        "1 while a rollback window is open (rules loaded, not confirmed yet), else 0.",
        &[(String::new(), flag(report.window.is_some()))],
    );
    family(
        &mut out,
        "autofw_status_timestamp_seconds",
        "When autofw status checked the host, in Unix seconds.",
        &[(String::new(), report.checked_at as f64)],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::drift::Assessment;

    fn report(findings_of: &[Kind]) -> Report {
        let findings = findings_of
            .iter()
            .map(|&kind| crate::status::drift::Finding::new(kind, String::new(), String::new()))
            .collect();
        Report::new(
            "/var/lib/autofw".into(),
            1_800_000_000,
            None,
            None,
            Assessment {
                rules: None,
                live: crate::status::drift::Live::NothingApplied,
                findings,
            },
        )
    }

    #[test]
    fn the_blocklist_sets_are_counted() {
        let mut r = report(&[]);
        assert!(!prometheus(&r).contains("autofw_blocklist"));
        let set = |name: &str, entries| crate::blocklist::SetSummary {
            name: name.to_string(),
            entries,
            digest: "0".to_string(),
        };
        r.applied = Some(crate::status::render::Applied {
            applied_at: 1_799_999_000,
            backend: crate::record::Backend::Nft,
            confirmed: true,
            rolled_back_at: None,
            persisted: false,
            opened: Vec::new(),
            closed: Vec::new(),
            blocklist: Some(crate::record::BlocklistRecord {
                files: vec!["/etc/autofw/drop.txt".into()],
                inline: Vec::new(),
                skip_bad_lines: false,
                sets: vec![set("blocklist_v4", 1_000_000), set("blocklist_net_v4", 12)],
                refreshed_at: Some(1_799_999_500),
            }),
        });
        let text = prometheus(&r);
        assert!(
            text.contains("autofw_blocklist_entries{set=\"blocklist_v4\"} 1000000\n"),
            "{text}"
        );
        assert!(
            text.contains("autofw_blocklist_entries{set=\"blocklist_net_v4\"} 12\n"),
            "{text}"
        );
        assert!(
            text.contains("autofw_blocklist_refresh_timestamp_seconds 1799999500\n"),
            "{text}"
        );
    }

    #[test]
    fn every_kind_has_a_series_and_findings_are_counted() {
        let text = prometheus(&report(&[Kind::StaleHole, Kind::StaleHole, Kind::NotLive]));
        assert!(text.contains("autofw_drift 1\n"), "{text}");
        assert!(
            text.contains("autofw_drift_findings{kind=\"stale-hole\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("autofw_drift_findings{kind=\"not-live\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("autofw_drift_findings{kind=\"risky-exposed\"} 0\n"),
            "{text}"
        );
        // Nothing applied: no apply time to report.
        assert!(!text.contains("autofw_seconds_since_last_apply"), "{text}");
        assert!(text.contains("autofw_applied 0\n"), "{text}");
    }
}
