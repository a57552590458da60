//! The exit codes each command's `--help` lists (clap's `after_help`).

pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  success (rules kept, no drift)
  1  a negative answer: drift found, or the rules were rolled back
  2  bad input: a flag, service spec, policy file or saved scan that does not parse
  3  the host could not do it: not root, nft/iptables missing, nft refused the rules
  4  refused for safety: lockout guard, another apply running, operator said no";

pub(super) const CONFIRM_EXIT_CODES: &str = "\
Exit codes:
  0  the rules are kept (and saved for boot if apply was given --persist)
  1  too late: the deadline had passed, and the rules were rolled back
  3  the host could not do it: not root, the state directory or the boot files not writable
  4  refused: no open window to confirm, or the window did not survive (a restart, a dead
     watchdog, its rules no longer loaded): the rules from before that apply are back";

pub(super) const ROLLBACK_EXIT_CODES: &str = "\
Exit codes:
  0  the ruleset saved before the last apply is loaded again
  3  the host could not do it: not root, nft/iptables missing or refusing the saved rules
  4  refused: nothing to roll back (no apply saved a ruleset in --state-dir), or an apply is
     loading its rules right now";

pub(super) const RESTORE_EXIT_CODES: &str = "\
Exit codes:
  0  the persisted ruleset is loaded
  3  the host could not do it: nothing persisted under --root, not root, nft/iptables
     missing or refusing the rules";

pub(super) const UNPERSIST_EXIT_CODES: &str = "\
Exit codes:
  0  what apply --persist installed is removed (or nothing was installed)
  3  the host could not do it: a file could not be removed, or the manifest is damaged";

pub(super) const DISABLE_EXIT_CODES: &str = "\
Exit codes:
  0  autofw's rules and boot hook are removed (or there were none)
  3  the host could not do it: a firewall tool or a file failed
  4  refused: a rollback window is open, or an apply runs";
