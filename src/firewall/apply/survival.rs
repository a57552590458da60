//! Did the rollback window survive? A window can only be confirmed while
//! everything that makes it safe still holds: the same boot (a restart drops
//! the unconfirmed rules and the watchdog), a live watchdog (without it
//! nothing rolls back), and its rules loaded exactly as applied (confirming
//! rules that are not loaded would persist a ruleset nobody tested, and the
//! next boot would bring back a lockout). Pure: the edge (`window.rs`)
//! gathers the facts.

/// What autofw's part of the live firewall holds, next to what the window
/// loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RulesNow {
    /// Loaded as applied (or present, where the exact listing cannot be
    /// compared).
    AsApplied,
    /// autofw's table or chains are gone.
    Missing,
    /// Loaded, but not what this window loaded.
    Different,
}

/// The facts about an open window that decide whether it can be confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WindowFacts {
    pub same_boot: bool,
    pub watchdog_alive: bool,
    pub rules: RulesNow,
}

/// Why a window can no longer be confirmed, in the operator's words; empty
/// when it can.
pub(crate) fn why_not_confirmable(facts: &WindowFacts) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if !facts.same_boot {
        reasons.push("the machine restarted since that apply (this is a new boot)");
    }
    if !facts.watchdog_alive {
        reasons.push(
            "its rollback watchdog is gone (killed, or the restart ended it), so nothing \
             guards those rules",
        );
    }
    match facts.rules {
        RulesNow::AsApplied => {}
        RulesNow::Missing => reasons.push("the rules of that apply are not loaded now"),
        RulesNow::Different => reasons.push(
            "autofw's rules loaded now are not the ones that apply loaded (something \
             changed or reloaded them)",
        ),
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> WindowFacts {
        WindowFacts {
            same_boot: true,
            watchdog_alive: true,
            rules: RulesNow::AsApplied,
        }
    }

    #[test]
    fn a_window_that_survived_can_be_confirmed() {
        assert!(why_not_confirmable(&facts()).is_empty());
    }

    #[test]
    fn each_broken_guarantee_is_a_reason() {
        let rebooted = WindowFacts {
            same_boot: false,
            watchdog_alive: false,
            rules: RulesNow::Missing,
        };
        let reasons = why_not_confirmable(&rebooted);
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("restarted"));

        let killed = WindowFacts {
            watchdog_alive: false,
            ..facts()
        };
        assert_eq!(why_not_confirmable(&killed).len(), 1);

        let reloaded = WindowFacts {
            rules: RulesNow::Different,
            ..facts()
        };
        assert!(why_not_confirmable(&reloaded)[0].contains("not the ones"));
    }
}
