//! Everything that changes the live firewall, by job:
//! - [`backend`]: nft and iptables (save, atomic load, exact undo, reading
//!   the live rules), and [`backend::exec`], the only place that spawns the
//!   tools that change rules (docs/design.md lists the read-only spawns);
//! - [`apply`]: the apply transaction: what would change, the lockout
//!   guard, the rollback window, the operator's answers, `confirm` and
//!   `rollback`, the detached watchdog, and loading the persisted rules at
//!   boot (`autofw restore`);
//! - [`other_filters`]: the host's other filters (ufw, firewalld, Docker,
//!   iptables-legacy) read back, and the judge that says what they do to
//!   autofw's rules.

pub(crate) mod apply;
pub(crate) mod backend;
pub(crate) mod other_filters;
