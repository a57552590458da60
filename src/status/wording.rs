//! What each drift finding says, and its fix: `(message, fix)` for
//! [`drift`](super::drift) to put in a finding. Pure; the words are part of
//! the contract (docs/status.md), so they live in one place.

use super::drift::{Live, WindowState};
use crate::firewall::backend::iptables::input_order::AcceptBefore;
use crate::firewall::other_filters::verdict::{ForeignDrop, legacy_note};
use crate::human::{count, plural, utc};
use crate::propose::group::PortGroup;
use crate::record::AppliedRecord;

/// A finding's message and its fix.
pub(crate) type Words = (String, String);

pub(crate) fn nothing_applied() -> Words {
    (
        "autofw has not applied any rules on this host (no record of an apply in the \
         state directory): nothing here is autofw's to check"
            .to_string(),
        "review the rules with `autofw propose`, then load them with \
         `autofw apply --confirm --persist`; if autofw keeps its state elsewhere, \
         pass --state-dir"
            .to_string(),
    )
}

/// Whose rules are live, for the `live:` line.
pub(crate) fn live(live: &Live) -> String {
    match live {
        Live::NothingApplied => "no autofw rules: nothing was ever applied here".to_string(),
        Live::Confirmed {
            applied_at,
            confirmed_at,
        } => format!(
            "the confirmed rules of the apply at {} (confirmed at {})",
            utc(*applied_at),
            utc(*confirmed_at)
        ),
        Live::InWindow {
            applied_at,
            deadline,
        } => format!(
            "the rules of the apply at {}, still in their rollback window (rolled back at {} \
             unless confirmed)",
            utc(*applied_at),
            utc(*deadline)
        ),
        Live::Restored {
            applied_at,
            rolled_back_at,
            of_apply,
        } => format!(
            "the rules of the apply at {}, restored by the rollback at {} of the apply at {}",
            utc(*applied_at),
            utc(*rolled_back_at),
            utc(*of_apply)
        ),
        Live::Unrecorded => "autofw's rules, but not as any apply recorded them (changed by \
                             hand or by another tool)"
            .to_string(),
        Live::NoRules => "no autofw rules are loaded".to_string(),
        Live::Disabled { at } => format!("no autofw rules: disabled at {}", utc(*at)),
    }
}

pub(crate) fn disabled(at: u64) -> Words {
    (
        format!(
            "autofw is disabled: `autofw disable` at {} removed its rules and its boot hook, \
             so autofw filters nothing on this host (the policy and the state are kept)",
            utc(at)
        ),
        "`autofw apply --confirm --persist` brings the rules back".to_string(),
    )
}

pub(crate) fn other_backend(what: &str, this: Option<crate::record::Backend>) -> Words {
    let whose = match this {
        Some(this) => format!("the last apply's {this} rules"),
        None => "the rules autofw recorded".to_string(),
    };
    (
        format!(
            "{what} are still loaded, left by an earlier apply with the other backend: they \
             drop what {whose} open, and are not what this report checks"
        ),
        "`autofw apply --confirm` (with the backend you use) removes them in the same step; \
         `autofw disable` removes both"
            .to_string(),
    )
}

/// `autofw's nft rules applied 2026-11-25T07:50:50Z`.
fn the_rules(record: &AppliedRecord) -> String {
    format!(
        "autofw's {} rules applied {}",
        record.backend(),
        utc(record.applied_at)
    )
}

pub(crate) fn rolled_back(record: &AppliedRecord, at: u64) -> Words {
    (
        format!(
            "{} are not loaded: they were rolled back at {} (by `autofw rollback`, or \
             because nobody confirmed them in time), so the firewall holds what it held \
             before that apply",
            the_rules(record),
            utc(at)
        ),
        if record.persisted() {
            "`autofw apply --confirm` to protect this host again; note that the persisted \
             ruleset still loads at boot (`autofw unpersist` if you meant to remove it)"
                .to_string()
        } else {
            "`autofw apply --confirm --persist` to protect this host again".to_string()
        },
    )
}

pub(crate) fn missing(record: &AppliedRecord) -> Words {
    (
        format!(
            "{} are not loaded: {} (flushed by hand or by another tool, or the host \
             rebooted{})",
            the_rules(record),
            match record.backend().own_part() {
                (part, true) => format!("{part} are gone"),
                (part, false) => format!("{part} is gone"),
            },
            if record.persisted() {
                " and the boot hook did not load them"
            } else {
                ", and they were never persisted"
            }
        ),
        if record.persisted() {
            "`autofw restore` loads the persisted rules again; check the boot hook \
             (/usr/share/doc/autofw/persist.md)"
                .to_string()
        } else {
            "`autofw apply --confirm --persist` loads them again and keeps them across reboots"
                .to_string()
        },
    )
}

/// `changed`: how many lines of the listing differ.
pub(crate) fn changed(record: &AppliedRecord, changed: usize) -> Words {
    (
        format!(
            "{} are loaded, but not as applied: {} edited by hand or by another \
             tool ({} of the listing {})",
            the_rules(record),
            match record.backend().own_part() {
                (part, true) => format!("{part} or the built-in policies were"),
                (part, false) => format!("{part} was"),
            },
            count(changed, "line", "lines"),
            plural(changed, "differs", "differ"),
        ),
        "`autofw apply --confirm` loads the rules autofw would write now (make lasting \
         changes with --allow/--block or the policy file, /usr/share/doc/autofw/policy.md); \
         `autofw rollback` removes them"
            .to_string(),
    )
}

pub(crate) fn unguarded(window: &WindowState) -> Words {
    let what = if !window.same_boot {
        "the machine restarted since that apply opened its rollback window: the restart dropped \
         its unconfirmed rules and its watchdog"
            .to_string()
    } else if window.apply_alive {
        format!(
            "a rollback window is open (deadline {}), but its watchdog (pid {}) is gone; only \
             the apply that opened it (pid {}) still enforces the deadline",
            utc(window.deadline),
            window.watchdog_pid,
            window.apply_pid
        )
    } else {
        format!(
            "a rollback window is open (deadline {}), but neither its watchdog (pid {}) nor the \
             apply that opened it (pid {}) is running: nothing will roll the unconfirmed rules back",
            utc(window.deadline),
            window.watchdog_pid,
            window.apply_pid
        )
    };
    (
        format!("{what}; those rules can no longer be confirmed"),
        "`autofw rollback` puts back the rules saved before that apply and closes the window; \
         then `autofw apply --confirm` again"
            .to_string(),
    )
}

pub(crate) fn overdue(window: &WindowState) -> Words {
    (
        format!(
            "the rollback deadline passed {} s ago ({}), but the window is still open: its \
             watchdog (pid {}) is retrying{}",
            window.seconds_overdue,
            utc(window.deadline),
            window.watchdog_pid,
            match &window.watchdog_says {
                Some(line) => format!("; its log says: {line}"),
                None => String::new(),
            }
        ),
        "fix what its log names (a read-only or full state directory, a failing nft); \
         `autofw rollback` tries the rollback now"
            .to_string(),
    )
}

pub(crate) fn risky_exposed(group: &PortGroup, spec: &str) -> Words {
    (
        format!(
            "{} listens on {} port {spec}, and the firewall accepts new \
             connections to it: a database, cache or admin service exposed to \
             the network",
            group.describe(),
            group.addresses_text()
        ),
        format!(
            "bind it to 127.0.0.1 (or ::1); or let only the hosts that need it in \
             (`[service.\"{spec}\"] sources = [...]` in the policy file, \
             /usr/share/doc/autofw/policy.md); or close it: `autofw apply --confirm --block {spec}`"
        ),
    )
}

pub(crate) fn docker_published(group: &PortGroup, spec: &str) -> Words {
    (
        format!(
            "{spec} is published by Docker ({}): Docker forwards it with its own DNAT \
             rules, past autofw's INPUT chain, so it is reachable although the applied \
             rules do not open it",
            group.owner()
        ),
        format!(
            "restrict it in Docker's DOCKER-USER chain, or publish it on 127.0.0.1 \
             only; `autofw apply --confirm` (with the choices you applied before) \
             records it, or `--block {spec}` keeps it out of INPUT on purpose"
        ),
    )
}

pub(crate) fn risky_unopened(group: &PortGroup, spec: &str) -> Words {
    (
        format!(
            "{} listens on {} port {spec}, beyond loopback, which for a database, \
             cache or admin service is almost always an accident; the firewall drops \
             it, as it should, but it did not listen there when the rules were applied",
            group.describe(),
            group.addresses_text()
        ),
        "bind it to 127.0.0.1 (or ::1); or run `autofw apply --confirm` again (with \
         the choices you applied before), which keeps it closed on purpose"
            .to_string(),
    )
}

pub(crate) fn unopened(group: &PortGroup, spec: &str) -> Words {
    (
        format!(
            "{} listens on {} port {spec}, but the firewall drops it: a service \
             that silently does not work",
            group.describe(),
            group.addresses_text()
        ),
        format!(
            "open it: `autofw allow {spec}`, then `autofw apply --confirm` (in the policy, \
             later applies keep it open); or keep it closed on purpose: `autofw block \
             {spec}`, then apply; or stop it if it should not run"
        ),
    )
}

/// A listener now on interfaces that the rules opening its port do not
/// take (it was bound to a device, or a private address, when applied).
pub(crate) fn opened_elsewhere(
    group: &PortGroup,
    spec: &str,
    place: &str,
    interfaces: &[String],
) -> Words {
    let on = interfaces.join(", ");
    (
        format!(
            "{} listens on {place} port {spec}, but the applied rules open {spec} only on {on}: \
             from any other interface the firewall drops it",
            group.describe(),
        ),
        format!(
            "if it should be reached there, propose again and apply: `autofw apply --confirm` \
             (with the --policy and --block you applied before); if it should listen on {on} \
             only, bind it there again"
        ),
    )
}

/// Another tool's INPUT rule that accepts before autofw's jump (iptables).
pub(crate) fn accept_before_autofw(family: &str, accept: &AcceptBefore) -> Words {
    (
        accept.describe(family),
        format!(
            "if it should stay open, open it in autofw (--allow, or the policy file) and \
             delete the rule (`{family} -D INPUT {}`); `autofw apply --confirm` places autofw's \
             jump before it",
            accept.number
        ),
    )
}

/// Another filter drops ports autofw opens (the judge's words).
pub(crate) fn foreign_drop(drop: &ForeignDrop) -> Words {
    (drop.message.clone(), drop.fix.clone())
}

/// iptables-legacy tables with rules that drop nothing autofw opens.
pub(crate) fn legacy_rules(summary: &[String]) -> Words {
    (
        legacy_note(summary, "they drop none of the ports autofw opens now"),
        "remove them if nothing needs them (`iptables-legacy-save` shows them; \
         `iptables-legacy -F`, `-X`, `-P INPUT ACCEPT`, and whatever loads them at boot), \
         so that one filter decides"
            .to_string(),
    )
}

/// An opened port nothing listens on beyond loopback any more.
pub(crate) fn stale_hole(spec: &str, service: &str, on_loopback: bool) -> Words {
    let named = |unnamed: &'static str| {
        if service == "unknown" {
            unnamed
        } else {
            service
        }
    };
    (
        format!(
            "the firewall accepts new connections to {spec} ({} when the rules were \
             applied), but nothing listens there beyond loopback any more{}: a stale hole, \
             open to whatever binds the port next",
            named("an unnamed service"),
            if on_loopback {
                " (only a loopback listener holds it now)"
            } else {
                ""
            }
        ),
        format!(
            "run `autofw apply --confirm` again (with the choices you applied before): it \
             opens only what listens; or start {} again if it should run",
            named("the service")
        ),
    )
}

/// Live blocklist sets that are not what apply or the last refresh loaded.
pub(crate) fn blocklist_changed(sets: &[String]) -> Words {
    (
        format!(
            "the live blocklist {} not what autofw loaded: {}",
            plural(sets.len(), "set is", "sets are"),
            sets.join(", ")
        ),
        "run `autofw blocklist refresh` to load the files' content again".to_string(),
    )
}

/// Blocklist files that no longer parse (a refresh would fail on them).
pub(crate) fn blocklist_unreadable(problem: &str) -> Words {
    (
        format!("the blocklist files no longer read cleanly: {problem}"),
        "fix the file (or refresh with --skip-bad-lines); the live sets keep the last good list"
            .to_string(),
    )
}

/// Blocklist files whose content the live sets do not hold.
pub(crate) fn blocklist_stale(sets: &[String]) -> Words {
    (
        format!(
            "the blocklist files changed since the live sets were loaded (a refresh failed or \
             has not run): {}",
            sets.join(", ")
        ),
        "run `autofw blocklist refresh`".to_string(),
    )
}
