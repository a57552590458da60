//! The state directory (`--state-dir`, default `/var/lib/autofw`): where apply
//! saves the ruleset it replaces, records what it applied, and keeps the lock
//! and the rollback window. Readable by root only (0700, files 0600): saved
//! rulesets show how the host is protected, which is nobody else's business.
//!
//! Layout (see docs/apply.md):
//! - `lock`: flock held by `apply` and inherited by its watchdog, so one
//!   apply (and its window) at a time;
//! - `window.lock`: flock held for the few milliseconds in which confirm,
//!   rollback or the watchdog decide, so exactly one of them decides;
//! - `before-apply.nft`: `nft -s list ruleset` as it was before the last apply;
//! - `snapshot.json`: everything rollback needs to undo the last apply;
//! - `applied.json`: [`AppliedRecord`], what the last apply loaded;
//! - `window.json`: [`RollbackWindow`], present while a window is open;
//! - `watchdog.log`: what the detached watchdog did (it has no terminal).

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{host_failure, refused};
use crate::record::{AppliedRecord, RollbackWindow};

/// Where the state lives unless `--state-dir` says otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/autofw";

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
    /// Held (flock) while confirm, rollback or the watchdog decide.
    pub fn window_lock_path(&self) -> PathBuf {
        self.root.join("window.lock")
    }
    /// The live ruleset as it was before the last apply (`nft -s list ruleset`).
    pub fn saved_ruleset_path(&self) -> PathBuf {
        self.root.join("before-apply.nft")
    }
    /// What rollback needs to undo the last apply (`firewall::Snapshot`).
    pub fn snapshot_path(&self) -> PathBuf {
        self.root.join("snapshot.json")
    }
    /// The elements of the blocklist sets before the last apply (rollback).
    pub fn snapshot_sets_path(&self) -> PathBuf {
        self.root.join("snapshot-sets.txt")
    }
    /// The elements of the blocklist sets the last apply or refresh loaded
    /// (what persist saves for boot).
    pub fn applied_sets_path(&self) -> PathBuf {
        self.root.join("applied-sets.txt")
    }
    /// What the last apply loaded: [`AppliedRecord`] as JSON.
    pub fn applied_path(&self) -> PathBuf {
        self.root.join("applied.json")
    }
    /// Present while a rollback window is open: [`RollbackWindow`] as JSON.
    pub fn window_path(&self) -> PathBuf {
        self.root.join("window.json")
    }
    /// What the detached watchdog did, one line per event.
    pub fn watchdog_log_path(&self) -> PathBuf {
        self.root.join("watchdog.log")
    }

    /// Create the directory (0700) if needed, and make sure it is root-only
    /// even if someone created it with looser permissions.
    pub fn ensure(&self) -> anyhow::Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| {
                host_failure(format!(
                    "cannot create the state directory {}: {e}",
                    self.root.display()
                ))
            })?;
        std::fs::set_permissions(&self.root, Permissions::from_mode(0o700)).map_err(|e| {
            host_failure(format!(
                "cannot make the state directory {} root-only: {e}",
                self.root.display()
            ))
        })
    }

    /// Take the apply lock without waiting: a second apply is refused (exit 4)
    /// while the first one, or the watchdog of its window, runs.
    pub fn lock_apply(&self) -> anyhow::Result<FileLock> {
        let file = open_lock_file(&self.lock_path())?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(FileLock { file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(refused(format!(
                "another `autofw apply` is running, or its rollback window is open (lock {} is held); \
                 wait for it, or end its window with `autofw confirm` or `autofw rollback`",
                self.lock_path().display()
            ))),
            Err(e) => Err(host_failure(format!(
                "cannot lock {}: {e}",
                self.lock_path().display()
            ))),
        }
    }

    /// Take the decision lock, waiting: decisions take milliseconds.
    pub fn lock_window(&self) -> anyhow::Result<FileLock> {
        let file = open_lock_file(&self.window_lock_path())?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            host_failure(format!(
                "cannot lock {}: {e}",
                self.window_lock_path().display()
            ))
        })?;
        Ok(FileLock { file })
    }

    /// An apply record this autofw cannot use: like a damaged state file,
    /// a host problem (exit 3), with the file named.
    pub fn damaged_record(&self, problem: &str) -> anyhow::Error {
        host_failure(format!(
            "{} {problem}; it was not written by this version of autofw, or it is damaged",
            self.applied_path().display()
        ))
    }

    pub fn read_applied(&self) -> anyhow::Result<Option<AppliedRecord>> {
        read_json(&self.applied_path())
    }
    pub fn write_applied(&self, record: &AppliedRecord) -> anyhow::Result<()> {
        write_json(&self.applied_path(), record)
    }
    pub fn read_window(&self) -> anyhow::Result<Option<RollbackWindow>> {
        read_json(&self.window_path())
    }
    pub fn write_window(&self, window: &RollbackWindow) -> anyhow::Result<()> {
        write_json(&self.window_path(), window)
    }
    pub fn remove_window(&self) -> anyhow::Result<()> {
        remove_if_exists(&self.window_path())
    }

    /// Append one line to the watchdog's log (best effort: it has nowhere
    /// else to report, and a full disk must not stop a rollback).
    pub fn log_watchdog(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.watchdog_log_path())
        {
            let _ = writeln!(f, "{} {line}", now_secs());
        }
    }
}

/// An flock held as long as this value (or a process that inherited its
/// descriptor, such as the watchdog) lives.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    pub fn file(&self) -> &File {
        &self.file
    }
}

fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| host_failure(format!("cannot open the lock file {}: {e}", path.display())))
}

/// Write `bytes` to `path` so that a reader (or a crash) sees either the old
/// file or the new one, never a torn one: a temporary file in the same
/// directory, fsync, rename, fsync of the directory. The file is 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| host_failure(format!("cannot write {}: {e}", path.display()));
    // tempfile creates the file 0600 with O_EXCL, so it is never readable by
    // others, not even for a moment.
    let mut tmp = tempfile::Builder::new()
        .prefix(".autofw-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o600))
        .map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(fail)?;
    Ok(())
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(host_failure(format!("cannot read {}: {e}", path.display()))),
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "{} is damaged; remove it if no apply is running",
            path.display()
        )
    })
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot encode state as JSON")?;
    text.push('\n');
    write_private(path, text.as_bytes())
}

pub fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(host_failure(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Backend;

    fn record(backend: Backend) -> AppliedRecord {
        AppliedRecord {
            applied_at: 1_700_000_000,
            backend,
            opened: Vec::new(),
            ruleset: "table inet autofw {}\n".to_string(),
            ruleset_v6: None,
            ipsets: None,
            confirmed: false,
            rolled_back_at: None,
            persisted: false,
            closed: Vec::new(),
            listening: None,
            blocklist: None,
        }
    }

    #[test]
    fn records_round_trip_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        state.ensure().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(state.root()), 0o700);
        assert_eq!(state.read_applied().unwrap(), None);
        state.write_applied(&record(Backend::Iptables)).unwrap();
        assert_eq!(
            state.read_applied().unwrap(),
            Some(record(Backend::Iptables))
        );
        assert_eq!(mode(&state.applied_path()), 0o600);
        let text = std::fs::read_to_string(state.applied_path()).unwrap();
        assert!(text.contains("\"backend\": \"iptables\""), "{text}");
        state.remove_window().unwrap();
    }

    #[test]
    fn a_record_naming_an_unknown_backend_is_damaged_exit_3_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let text = serde_json::to_string(&record(Backend::Nft))
            .unwrap()
            .replace("\"nft\"", "\"pf\"");
        write_private(&state.applied_path(), text.as_bytes()).unwrap();
        let err = state.read_applied().unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains(&state.applied_path().display().to_string())
                && message.contains("damaged")
                && message.contains("`pf`"),
            "{message}"
        );
        assert_eq!(
            crate::error::exit_code_for(&err),
            std::process::ExitCode::from(crate::error::exit::HOST)
        );
    }

    #[test]
    fn an_iptables_record_without_its_ipv6_half_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let problem = record(Backend::Iptables).rules().unwrap_err();
        let err = state.damaged_record(problem);
        assert!(format!("{err}").contains("applied.json names the iptables backend"));
        assert_eq!(
            crate::error::exit_code_for(&err),
            std::process::ExitCode::from(crate::error::exit::HOST)
        );
    }

    #[test]
    fn the_apply_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let first = state.lock_apply().unwrap();
        let err = state.lock_apply().unwrap_err();
        assert!(format!("{err}").contains("another `autofw apply` is running"));
        assert_eq!(
            crate::error::exit_code_for(&err),
            std::process::ExitCode::from(crate::error::exit::REFUSED)
        );
        drop(first);
        state.lock_apply().unwrap();
    }

    #[test]
    fn removing_a_missing_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        remove_if_exists(&dir.path().join("absent")).unwrap();
        assert_eq!(
            read_json::<RollbackWindow>(&dir.path().join("absent")).unwrap(),
            None
        );
    }
}
