//! The state directory (`--state-dir`, default `/var/lib/autofw`): where apply
//! saves the ruleset it replaces, records what it applied, and keeps the lock
//! and the rollback window. Readable by root only (0700).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::model::Proto;

/// Paths inside the state directory, in one place so every module agrees.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Held (flock) for the whole of an apply: one apply at a time.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }
    /// The live ruleset as it was before the last apply (`nft -s list ruleset`).
    pub fn saved_ruleset_path(&self) -> PathBuf {
        self.root.join("before-apply.nft")
    }
    /// What the last apply loaded: [`AppliedRecord`] as JSON.
    pub fn applied_path(&self) -> PathBuf {
        self.root.join("applied.json")
    }
    /// Present while a rollback window is open: [`RollbackWindow`] as JSON.
    pub fn window_path(&self) -> PathBuf {
        self.root.join("window.json")
    }
}

/// One port that an applied ruleset opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedPort {
    pub proto: Proto,
    pub port: u16,
    pub service: String,
}

/// What `apply` loaded, for `status` and `rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRecord {
    /// Seconds since the Unix epoch.
    pub applied_at: u64,
    /// `nft` or `iptables`.
    pub backend: String,
    pub opened: Vec<OpenedPort>,
    /// The rendered ruleset exactly as it was loaded.
    pub ruleset: String,
    /// True once the operator confirmed it; false while the window is open or
    /// after a rollback.
    pub confirmed: bool,
}

/// An open rollback window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackWindow {
    /// Seconds since the Unix epoch at which the watchdog rolls back.
    pub deadline: u64,
    /// Pid of the detached watchdog process.
    pub watchdog_pid: u32,
}
