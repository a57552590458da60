//! What the operator is told when a rollback window ends: kept, rolled
//! back (and whether exactly), or not confirmable because the window did not
//! survive. Said for a tired operator: where the firewall stands now.

use std::path::Path;

use super::window::RolledBack;
use crate::error::{exit, host_failure};
use crate::human::utc;
use crate::record::{AppliedRecord, Life, Why};

/// The old rules are back, but the records could not say so.
pub(crate) fn warn_unrecorded(done: &RolledBack) {
    if let Some(why) = &done.unrecorded {
        say!(
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
pub(crate) fn report_dead(
    reasons: &[&str],
    rollback: Result<RolledBack, String>,
) -> anyhow::Result<u8> {
    say!("autofw: NOT confirmed: the rollback window of that apply did not survive:");
    for reason in reasons {
        say!("autofw:   - {reason}");
    }
    match rollback {
        Ok(done) => {
            say!(
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

pub(crate) fn exactness(done: &RolledBack) -> &'static str {
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

/// How an apply's window can end, told with what this apply knows: how
/// long the window was, what was live before it (what a rollback puts
/// back), and the command that gives the same choices again.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    pub timeout: u64,
    /// What a rollback of this apply puts back ([`describe_before`]).
    pub before: String,
    /// `autofw apply --confirm ...` with the flags this apply was given.
    pub again: String,
}

/// What was live before an apply, as a rollback of it puts it back: no
/// autofw rules at all, the rules of the last apply (kept, or in their own
/// window), or autofw's rules as they were.
pub(crate) fn describe_before(record: Option<&AppliedRecord>, autofw_loaded: bool) -> String {
    if !autofw_loaded {
        return "no autofw rules: the firewall as it was before autofw loaded any (or after \
                `autofw disable`)"
            .to_string();
    }
    match record.map(|r| (r.applied_at, &r.life)) {
        Some((at, Life::Confirmed(kept))) => format!(
            "the rules of the apply at {}, confirmed at {}",
            utc(at),
            utc(kept.at)
        ),
        Some((at, Life::Loaded(_))) => format!(
            "the rules of the apply at {}, which were still in their own window",
            utc(at)
        ),
        Some((_, Life::RolledBack(_))) | None => {
            "autofw's rules as they were loaded before this apply".to_string()
        }
    }
}

/// The window ran out: why, when, what is live now, the next step.
pub(crate) fn expired_text(ending: &Ending, rolled_back_at: Option<u64>, exact: &str) -> String {
    let when = match rolled_back_at {
        Some(at) => format!("rolled back at {}", utc(at)),
        None => "rolled back".to_string(),
    };
    format!(
        "autofw: {when}: no confirmation within {} s (neither `yes` at the prompt nor \
         `autofw confirm` from a new login)\n\
         autofw: live now: the ruleset saved before this apply{exact}: {}\n\
         autofw: next: if you can still log in, run `{}` again and confirm it within the \
         window (from a new login: `autofw confirm`); --timeout SECONDS gives more time\n",
        ending.timeout, ending.before, ending.again
    )
}

/// A rollback decided here (`no`, Ctrl-C, the deadline) or elsewhere:
/// what happened, what is live now.
pub(crate) fn report_ended(ending: &Ending, done: &RolledBack) -> u8 {
    let why = done.record.as_ref().and_then(|r| match &r.life {
        Life::RolledBack(rolled) => Some((rolled.why, rolled.at)),
        _ => None,
    });
    match why {
        Some((Why::Expired, at)) => {
            say_part!("{}", expired_text(ending, Some(at), exactness(done)))
        }
        _ => {
            say!(
                "autofw: rolled back: the ruleset saved before this apply was restored{}",
                exactness(done)
            );
            say!("autofw: live now: {}", ending.before);
        }
    }
    warn_unrecorded(done);
    exit::NEGATIVE
}

/// What `confirm` says of kept rules, and what a confirm without
/// `--persist` leaves to do: they last until reboot.
pub(crate) fn kept_text(persisted: Option<&Path>, again_persisted: &str) -> String {
    match persisted {
        Some(root) => format!(
            "persisted under {}: they will be loaded again at boot\n",
            root.display()
        ),
        None => format!(
            "not persisted: they last until the next reboot (nothing of them loads at boot); \
             to keep them across reboots, run `{again_persisted}` and confirm it\n"
        ),
    }
}

/// `autofw apply --confirm --persist` with the choices of the apply in
/// `record`, for a confirm that persisted nothing.
pub(crate) fn apply_again(
    record: Option<&AppliedRecord>,
    state_dir: &Path,
    persist: bool,
) -> String {
    let mut words = vec!["autofw apply --confirm".to_string()];
    if persist {
        words.push("--persist".to_string());
    }
    if let Some(record) = record {
        if record.backend() != crate::record::Backend::default() {
            words.push(format!("--backend {}", record.backend()));
        }
        words.extend(record.given.flags());
    }
    if state_dir != Path::new(crate::state::DEFAULT_DIR) {
        words.push(format!(
            "--state-dir {}",
            crate::record::shell_word(&state_dir.to_string_lossy())
        ));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_says_why_when_what_is_live_and_what_next() {
        let ending = Ending {
            timeout: 3,
            before: describe_before(None, false),
            again: "autofw apply --confirm --allow 8443/tcp".to_string(),
        };
        let text = expired_text(&ending, Some(0), " (identical to the saved one)");
        assert_eq!(
            text,
            "autofw: rolled back at 1970-01-01T00:00:00Z: no confirmation within 3 s (neither \
             `yes` at the prompt nor `autofw confirm` from a new login)\n\
             autofw: live now: the ruleset saved before this apply (identical to the saved \
             one): no autofw rules: the firewall as it was before autofw loaded any (or after \
             `autofw disable`)\n\
             autofw: next: if you can still log in, run `autofw apply --confirm --allow \
             8443/tcp` again and confirm it within the window (from a new login: `autofw \
             confirm`); --timeout SECONDS gives more time\n"
        );
    }

    #[test]
    fn a_confirm_without_persist_says_until_reboot_and_how_to_keep() {
        let text = kept_text(None, "autofw apply --confirm --persist --allow https");
        assert!(text.contains("until the next reboot"), "{text}");
        assert!(
            text.contains("`autofw apply --confirm --persist --allow https`"),
            "{text}"
        );
        let text = kept_text(Some(Path::new("/")), "");
        assert_eq!(
            text,
            "persisted under /: they will be loaded again at boot\n"
        );
    }
}
