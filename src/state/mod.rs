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
//! - `before-apply.nft`: `nft -t -s list ruleset` as it was before the last
//!   apply, for the operator to read (autofw itself checks a rollback against
//!   the same text kept in `snapshot.json`);
//! - `snapshot-sets.txt`: the blocklist elements before the last apply;
//! - `applied-sets.txt`: the blocklist elements the last apply or refresh loaded;
//! - `snapshot.json`: everything rollback needs to undo the last apply;
//! - `applied.json`: [`AppliedRecord`], what the last apply loaded;
//! - `window.json`: [`RollbackWindow`], present while a window is open;
//! - `watchdog.lock`: flock held by the watchdog itself for as long as it
//!   runs, so anyone can tell it is alive by trying it (a pid can be reused);
//! - `watchdog.log`: what the detached watchdog did (it has no terminal).
//! - `other-filters.json`: the other filters' last verdict, keyed by a
//!   digest of what it judged (`firewall::other_filters`): only a cache.
//! - `applied-listing.json`: how nft lists the applied rules, keyed by a
//!   digest of their text (`firewall::read_live`): only a cache.
//!
//! Lock files are opened read-only: flock needs no write access, and a
//! rollback must still work when this directory's filesystem has become
//! read-only or full (a file held open for writing would even keep an
//! administrator from remounting it read-only).

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

mod watchdog_log;

use crate::error::{host_failure, refused};
use crate::record::{AppliedRecord, RollbackWindow};
pub(crate) use watchdog_log::FALLBACK_LOG_DIR;

/// Where the state lives unless `--state-dir` says otherwise.
pub(crate) const DEFAULT_DIR: &str = "/var/lib/autofw";

/// How long an apply (or refresh, or disable) waits for the apply lock
/// while no rollback window is open (see [`StateDir::lock_apply`]).
const APPLY_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// The live ruleset as it was before the last apply (`nft -t -s list
    /// ruleset`), in plain text for the operator: autofw never reads it.
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
    /// The other filters' last verdict (`firewall::other_filters`), keyed
    /// by a digest of everything it judged: `status` reuses it while
    /// nothing changed, and runs no scratch namespace.
    pub fn judged_path(&self) -> PathBuf {
        self.root.join("other-filters.json")
    }
    /// How nft lists the applied rules once loaded, keyed by a digest of
    /// their text: `status` compares the live table with it without a
    /// scratch namespace while the two are the same.
    pub fn applied_listing_path(&self) -> PathBuf {
        self.root.join("applied-listing.json")
    }
    /// What the detached watchdog did, one line per event.
    pub fn watchdog_log_path(&self) -> PathBuf {
        self.root.join("watchdog.log")
    }
    /// Held (flock) by the watchdog for as long as it runs.
    pub fn watchdog_lock_path(&self) -> PathBuf {
        self.root.join("watchdog.lock")
    }
    /// Where the watchdog of window `id` logs when the state directory
    /// cannot be written (read-only, full): `/run` is a tmpfs.
    pub fn fallback_log_path(window_id: &str) -> PathBuf {
        let safe: String = window_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(FALLBACK_LOG_DIR).join(format!("watchdog-{safe}.log"))
    }

    /// Refuse a state directory that someone other than root could have
    /// prepared or can change: what is in it runs as root (`snapshot.json`
    /// is what a rollback loads into the firewall). The directory itself
    /// must not be a symlink, must be owned by root and writable by root
    /// only; its ancestors are not checked (tests keep theirs under /tmp).
    /// A directory that does not exist yet is fine: apply creates it 0700.
    pub fn check_trusted(&self) -> anyhow::Result<()> {
        let meta = match std::fs::symlink_metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(host_failure(format!(
                    "cannot read the state directory {}: {e}",
                    self.root.display()
                )));
            }
        };
        let problem = if meta.file_type().is_symlink() {
            Some(format!(
                "it is a symlink (to {})",
                std::fs::read_link(&self.root)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "somewhere".to_string())
            ))
        } else if !meta.is_dir() {
            return Err(crate::error::bad_input(format!(
                "--state-dir {} is not a directory; give the directory `autofw apply` uses",
                self.root.display()
            )));
        } else {
            untrusted(meta.uid(), meta.mode())
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(refused(format!(
                "refusing the state directory {}: {problem}. What autofw keeps there is run as \
                 root (the saved ruleset is what a rollback loads), so it must be a real directory \
                 owned by root and writable by root only; nothing was changed",
                self.root.display()
            ))),
        }
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

    /// Make an existing directory that others may read (0755) root-only, as
    /// [`StateDir::ensure`] does for apply: what the commands that only use
    /// the directory (rollback, confirm, `blocklist refresh`) do after
    /// [`StateDir::check_trusted`]. Never fails: a rollback must work on a
    /// read-only filesystem too, so a directory that cannot be changed is a
    /// warning.
    pub fn tighten(&self) {
        let Ok(meta) = std::fs::symlink_metadata(&self.root) else {
            return;
        };
        if !meta.is_dir() || meta.file_type().is_symlink() || meta.mode() & 0o077 == 0 {
            return;
        }
        if let Err(e) = std::fs::set_permissions(&self.root, Permissions::from_mode(0o700)) {
            say!(
                "autofw: warning: cannot make the state directory {} root-only (mode {:o}): {e}",
                self.root.display(),
                meta.mode() & 0o7777
            );
        }
    }

    /// Take the apply lock: a second apply is refused (exit 4) while a
    /// rollback window is open. With no window open, whoever holds the lock
    /// is short-lived: an apply still planning or loading (it opens its
    /// window or ends), a refresh, a disable, or the watchdog of a window
    /// that just closed (`confirm`, `rollback`: it lets go within its poll,
    /// but a loaded machine can keep it from running for a while). So the
    /// apply waits for the lock (up to [`APPLY_LOCK_WAIT`]), saying so
    /// after half a second, and refuses at once if a window opens meanwhile.
    pub fn lock_apply(&self) -> anyhow::Result<FileLock> {
        self.lock_apply_within(APPLY_LOCK_WAIT)
    }

    fn lock_apply_within(&self, wait: std::time::Duration) -> anyhow::Result<FileLock> {
        let file = open_lock_file(&self.lock_path())?;
        let start = std::time::Instant::now();
        let mut said = false;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(FileLock { file }),
                Err(rustix::io::Errno::WOULDBLOCK) => {}
                Err(e) => {
                    return Err(host_failure(format!(
                        "cannot lock {}: {e}",
                        self.lock_path().display()
                    )));
                }
            }
            let window_open = !matches!(self.read_window(), Ok(None));
            if window_open || start.elapsed() >= wait {
                return Err(refused(format!(
                    "another `autofw apply` is running, or its rollback window is open (lock {} is held); \
                     wait for it, or end its window with `autofw confirm` or `autofw rollback`",
                    self.lock_path().display()
                )));
            }
            if !said && start.elapsed() >= std::time::Duration::from_millis(500) {
                say!(
                    "autofw: waiting: another apply, refresh or disable is running, or the watchdog \
                     of a window that just closed is exiting ({} is held)",
                    self.lock_path().display()
                );
                said = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Take the decision lock, waiting: decisions take milliseconds (apply
    /// holds it through the load, which takes as long as the firewall takes).
    pub fn lock_window(&self) -> anyhow::Result<FileLock> {
        self.lock_window_saying(true)
    }

    /// The same, saying nothing while it waits: apply at its own deadline,
    /// where the watchdog holding the lock is the expected case (it is
    /// rolling back), and the operator is told what happened after.
    pub fn lock_window_quietly(&self) -> anyhow::Result<FileLock> {
        self.lock_window_saying(false)
    }

    fn lock_window_saying(&self, say_waiting: bool) -> anyhow::Result<FileLock> {
        let file = open_lock_file(&self.window_lock_path())?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(FileLock { file }),
            Err(rustix::io::Errno::WOULDBLOCK) if say_waiting => say!(
                "autofw: waiting: an apply is loading its rules, or another decision is being \
                 made ({} is held)",
                self.window_lock_path().display()
            ),
            Err(_) => {}
        }
        FileLock::take(file, &self.window_lock_path())
    }

    /// The decision lock file, opened once, for a process (the watchdog)
    /// that must still be able to decide when nothing in this directory can
    /// be opened any more.
    pub fn open_window_lock(&self) -> anyhow::Result<File> {
        open_lock_file(&self.window_lock_path())
    }

    /// The watchdog's own lock, taken without waiting: a second watchdog for
    /// the same directory refuses to arm.
    pub fn lock_watchdog(&self) -> anyhow::Result<FileLock> {
        let file = open_lock_file(&self.watchdog_lock_path())?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(FileLock { file }),
            Err(e) => Err(host_failure(format!(
                "cannot lock {}: {e}",
                self.watchdog_lock_path().display()
            ))),
        }
    }

    /// Is a watchdog running for this directory? Told by trying the lock it
    /// holds, not by its pid: a pid can be reused, a lock dies with its holder.
    pub fn watchdog_alive(&self) -> anyhow::Result<bool> {
        let path = self.watchdog_lock_path();
        let file = match open_nofollow(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(host_failure(format!("cannot open {}: {e}", path.display()))),
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            // Nobody holds it: no watchdog. The shared lock ends with `file`.
            Ok(()) => Ok(false),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(true),
            Err(e) => Err(host_failure(format!("cannot lock {}: {e}", path.display()))),
        }
    }

    /// `previous.json`: the record of the rules that were live when the
    /// last apply took its snapshot, which a rollback of it restores (the
    /// apply before it, or what that one's rollback restored). Status names
    /// them after a rollback.
    pub fn previous_path(&self) -> PathBuf {
        self.root.join("previous.json")
    }
    pub fn read_previous(&self) -> anyhow::Result<Option<AppliedRecord>> {
        read_json(&self.previous_path())
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
    /// The cached verdict of the other filters, if any (trusted as every
    /// record here: root's, not a symlink).
    pub fn read_judged<T: DeserializeOwned>(&self) -> anyhow::Result<Option<T>> {
        read_json(&self.judged_path())
    }
    /// Replace the cached verdict (atomic, 0600), in a directory that
    /// exists already: a cache is no reason to create the state directory.
    pub fn write_judged<T: Serialize>(&self, judged: &T) -> anyhow::Result<()> {
        write_json(&self.judged_path(), judged)
    }
    /// The cached listing of the applied rules, if any (trusted as every
    /// record here).
    pub fn read_applied_listing<T: DeserializeOwned>(&self) -> anyhow::Result<Option<T>> {
        read_json(&self.applied_listing_path())
    }
    /// Replace the cached listing (atomic, 0600).
    pub fn write_applied_listing<T: Serialize>(&self, listing: &T) -> anyhow::Result<()> {
        write_json(&self.applied_listing_path(), listing)
    }
    pub fn remove_window(&self) -> anyhow::Result<()> {
        remove_if_exists(&self.window_path())
    }
}

/// Why a file or directory with this owner and mode cannot be trusted with
/// what root will run, if it cannot.
pub(crate) fn untrusted(uid: u32, mode: u32) -> Option<String> {
    if uid != 0 {
        return Some(format!("it is owned by uid {uid}, not by root"));
    }
    let writable_by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and by others",
        (true, false) => "its group",
        (false, true) => "others",
        (false, false) => return None,
    };
    Some(format!(
        "it is writable by {writable_by} (mode {:o})",
        mode & 0o7777
    ))
}

/// Open for reading without following a symlink in the last component:
/// a file planted as a link in the state directory is not read as root.
pub(crate) fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn read_nofollow(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut open_nofollow(path)?, &mut text)?;
    Ok(text)
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

    /// Take an exclusive lock on an open lock file, waiting for it.
    pub fn take(file: File, path: &Path) -> anyhow::Result<FileLock> {
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| host_failure(format!("cannot lock {}: {e}", path.display())))?;
        Ok(FileLock { file })
    }
}

/// An exclusive flock on a lock file that stays open after it is released:
/// the watchdog opens `window.lock` once and locks it for each decision.
/// Unlocks on drop (closing a duplicate descriptor would not).
pub(crate) struct HeldLock<'a> {
    file: &'a File,
}

impl<'a> HeldLock<'a> {
    pub(crate) fn take(file: &'a File) -> anyhow::Result<HeldLock<'a>> {
        rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| host_failure(format!("cannot lock the decision lock: {e}")))?;
        Ok(HeldLock { file })
    }
}

impl Drop for HeldLock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.file, rustix::fs::FlockOperation::Unlock);
    }
}

/// Open a lock file read-only (flock needs no more), creating it if it is
/// not there yet: an existing one opens even on a read-only filesystem.
fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    let fail = |e: std::io::Error| {
        host_failure(format!("cannot open the lock file {}: {e}", path.display()))
    };
    match open_nofollow(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(fail)
            // Created; reopen read-only so no descriptor for writing stays open.
            .and_then(|_| open_nofollow(path).map_err(fail)),
        Err(e) => Err(fail(e)),
    }
}

/// Write `bytes` to `path` so that a reader (or a crash) sees either the old
/// file or the new one, never a torn one: a temporary file in the same
/// directory, fsync, rename, fsync of the directory. The file is 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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

/// Read a JSON record that root will act on: not through a symlink
/// (O_NOFOLLOW), and only if root owns it and only root can write it.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    let mut file = match open_nofollow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(format!(
                "refusing {}: it is a symlink; autofw writes its files itself and never follows \
                 a link planted in their place. Remove it if no apply is running",
                path.display()
            )));
        }
        Err(e) => return Err(host_failure(format!("cannot read {}: {e}", path.display()))),
    };
    let meta = file
        .metadata()
        .map_err(|e| host_failure(format!("cannot read {}: {e}", path.display())))?;
    if let Some(problem) = untrusted(meta.uid(), meta.mode()) {
        return Err(refused(format!(
            "refusing {}: {problem}; autofw acts on it as root, so only root may have written it",
            path.display()
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)
        .map_err(|e| host_failure(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "{} is damaged; remove it if no apply is running",
            path.display()
        )
    })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot encode state as JSON")?;
    text.push('\n');
    write_private(path, text.as_bytes())
}

pub(crate) fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
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
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
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
            rules: crate::record::Rules::example(backend),
            opened: Vec::new(),
            closed: Vec::new(),
            listening: Vec::new(),
            blocklist: None,
            openings: Vec::new(),
            given: Default::default(),
            life: crate::record::Life::Loaded(crate::record::Loaded {
                deadline: 1_700_000_060,
            }),
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
        assert_eq!(crate::error::exit_code_for(&err), crate::error::exit::HOST);
    }

    #[test]
    fn an_iptables_record_without_its_ipv6_half_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut json = serde_json::to_value(record(Backend::Iptables)).unwrap();
        json["rules"].as_object_mut().unwrap().remove("v6");
        write_private(&state.applied_path(), json.to_string().as_bytes()).unwrap();
        let err = state.read_applied().unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("applied.json is damaged") && message.contains("`v6`"),
            "{message}"
        );
        assert_eq!(crate::error::exit_code_for(&err), crate::error::exit::HOST);
    }

    #[test]
    fn an_apply_waits_for_a_holder_with_no_window_such_as_an_exiting_watchdog() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        // A watchdog on its way out: it holds the apply lock (inherited) and
        // its window is gone (confirmed or rolled back); it has already let
        // go of its own lock, so it no longer looks alive.
        let held = state.lock_apply().unwrap();
        let exiting = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let start = std::time::Instant::now();
        let lock = state.lock_apply();
        assert!(lock.is_ok(), "{:#}", lock.err().unwrap());
        assert!(start.elapsed() >= std::time::Duration::from_millis(250));
        exiting.join().unwrap();
    }

    #[test]
    fn the_apply_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let first = state.lock_apply().unwrap();
        let start = std::time::Instant::now();
        let err = state
            .lock_apply_within(std::time::Duration::from_millis(200))
            .unwrap_err();
        assert!(start.elapsed() >= std::time::Duration::from_millis(200));
        assert!(format!("{err}").contains("another `autofw apply` is running"));
        assert_eq!(
            crate::error::exit_code_for(&err),
            crate::error::exit::REFUSED
        );
        drop(first);
        state.lock_apply().unwrap();
    }

    #[test]
    fn an_open_window_refuses_a_second_apply_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let _first = state.lock_apply().unwrap();
        state
            .write_window(&RollbackWindow {
                deadline: 0,
                deadline_boottime_ms: 0,
                boot_id: "b".into(),
                watchdog_pid: 1,
                id: "w".into(),
                apply_pid: 1,
                persist_root: None,
            })
            .unwrap();
        let start = std::time::Instant::now();
        let err = state.lock_apply().unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert!(format!("{err}").contains("rollback window is open"));
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

    #[test]
    fn only_root_owned_root_writable_is_trusted() {
        assert_eq!(untrusted(0, 0o40700), None);
        assert_eq!(untrusted(0, 0o40755), None);
        assert_eq!(untrusted(0, 0o100600), None);
        assert!(untrusted(1000, 0o40700).unwrap().contains("uid 1000"));
        assert!(
            untrusted(0, 0o40770)
                .unwrap()
                .contains("its group (mode 770)")
        );
        assert!(
            untrusted(0, 0o41777)
                .unwrap()
                .contains("group and by others")
        );
        assert!(untrusted(0, 0o100606).unwrap().contains("by others"));
    }
}
