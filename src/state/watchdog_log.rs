//! The watchdog's log: one line an event, stamped in RFC 3339 UTC, in the
//! state directory, or in [`FALLBACK_LOG_DIR`] when that cannot be written.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::{StateDir, now_secs, read_nofollow};

impl StateDir {
    /// Append one line to the watchdog's log, if it can be written (a full
    /// disk must not stop a rollback, so this never fails).
    pub fn log_watchdog(&self, line: &str) {
        let _ = append_line(&self.watchdog_log_path(), &stamped(line));
    }

    /// A line that says why the watchdog cannot do its job yet: to its log,
    /// or, when the state directory cannot be written, to
    /// [`Self::fallback_log_path`] (status reads both). Never fails.
    pub fn alarm_watchdog(&self, window_id: &str, line: &str) {
        let line = stamped(line);
        if append_line(&self.watchdog_log_path(), &line).is_ok() {
            return;
        }
        let fallback = Self::fallback_log_path(window_id);
        if let Some(dir) = fallback.parent() {
            let _ = DirBuilder::new().recursive(true).mode(0o700).create(dir);
        }
        let _ = append_line(&fallback, &line);
    }

    /// The last line the watchdog of window `id` logged, from whichever of
    /// its two logs was written last.
    pub fn last_watchdog_line(&self, window_id: &str) -> Option<String> {
        let mut lines: Vec<String> = [self.watchdog_log_path(), Self::fallback_log_path(window_id)]
            .iter()
            .filter_map(|p| read_nofollow(p).ok())
            .filter_map(|text| text.lines().last().map(str::to_string))
            .collect();
        // Lines start with their time: the later one wins.
        lines.sort_by_key(|l| line_time(l));
        lines.pop()
    }
}

/// A watchdog log line: its time in RFC 3339 UTC (`2026-12-02T13:50:07Z`),
/// as status and the operator read it, then the line.
fn stamped(line: &str) -> String {
    format!("{} {line}\n", crate::human::utc(now_secs()))
}

/// The time a watchdog log line starts with (RFC 3339), in seconds since
/// the epoch.
fn line_time(line: &str) -> Option<u64> {
    let first = line.split_whitespace().next()?;
    humantime::parse_rfc3339(first)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Where watchdogs log when their state directory cannot be written.
pub(crate) const FALLBACK_LOG_DIR: &str = "/run/autofw";

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_lines_carry_rfc3339_utc_times() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.log_watchdog("window 1 armed");
        let log = std::fs::read_to_string(state.watchdog_log_path()).unwrap();
        let (time, rest) = log.split_once(' ').unwrap();
        assert_eq!(rest, "window 1 armed\n");
        assert!(time.ends_with('Z') && time.len() == 20, "{log}");
        let secs = humantime::parse_rfc3339(time)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now_secs().abs_diff(secs) < 5, "{log}");
        assert_eq!(line_time("2023-11-14T22:13:21Z new"), Some(1_700_000_001));
        assert_eq!(line_time("1700000000 not a time"), None);
        assert_eq!(state.last_watchdog_line("1").unwrap(), log.trim_end());
    }
}
