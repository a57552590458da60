//! What the operator is told when a rollback window ends: kept, rolled
//! back (and whether exactly), or not confirmable because the window did not
//! survive. Said for a tired operator: where the firewall stands now.

use super::window::RolledBack;
use crate::error::{exit, host_failure};

pub fn report_kept(persisted: Option<std::path::PathBuf>) -> u8 {
    println!("confirmed: the new rules are kept");
    if persisted.is_some() {
        println!("persisted: they will be loaded again at boot");
    }
    exit::OK
}

pub fn report_rollback(done: &RolledBack) -> u8 {
    eprintln!(
        "autofw: rolled back: the ruleset saved before this apply was restored{}",
        exactness(done)
    );
    warn_unrecorded(done);
    exit::NEGATIVE
}

/// The old rules are back, but the records could not say so.
pub fn warn_unrecorded(done: &RolledBack) {
    if let Some(why) = &done.unrecorded {
        eprintln!(
            "autofw: warning: the old rules ARE back, but autofw could not record that in its \
             state directory ({why}). {}; make the state directory writable again \
             (is its filesystem read-only or full?)",
            if done.window_open {
                "Until it can, `autofw status` shows the window as still open and the watchdog \
                 keeps retrying"
            } else {
                "Until it can, `autofw status` shows the last apply as it was before this \
                 rollback; run `autofw rollback` again once it can be written"
            }
        );
    }
}

/// confirm found a window that did not survive: say what happened and where
/// the firewall stands, for a tired operator.
pub fn report_dead(reasons: &[&str], rollback: Result<RolledBack, String>) -> anyhow::Result<u8> {
    eprintln!("autofw: NOT confirmed: the rollback window of that apply did not survive:");
    for reason in reasons {
        eprintln!("autofw:   - {reason}");
    }
    match rollback {
        Ok(done) => {
            eprintln!(
                "autofw: nothing was kept and nothing was saved for boot. autofw put back the \
                 rules you had before that apply{}: the firewall is as it was before \
                 `autofw apply`. Run `autofw apply --confirm` again to load new rules.",
                exactness(&done)
            );
            warn_unrecorded(&done);
            Ok(exit::REFUSED)
        }
        Err(why) => Err(host_failure(format!(
            "nothing was kept and nothing was saved for boot, but putting back the rules saved \
             before that apply failed: {why}. Run `autofw rollback` to try again; until it \
             succeeds the firewall holds whatever is loaded now (`autofw status` shows it)"
        ))),
    }
}

pub fn exactness(done: &RolledBack) -> &'static str {
    match done.exact {
        Some(true) => " (identical to the saved one)",
        Some(false) => {
            "; note: the live ruleset differs from the saved one outside autofw's rules: \
             another tool (Docker, netavark, fail2ban, ...) changed its own rules since that \
             apply, and autofw left them alone"
        }
        None => "",
    }
}
