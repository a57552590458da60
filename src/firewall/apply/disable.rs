//! `autofw disable`: the way back, as `ufw disable` is. autofw's rules go
//! (both backends: `table inet autofw`, the `AUTOFW-*` chains, their jumps,
//! the policies autofw set, its ipsets) and so does its boot hook; the
//! policy file and the state directory stay, so a later `autofw apply
//! --confirm` brings the same rules back. It says what is unfiltered now,
//! and leaves a `disabled.json` in the state directory for `status`, which
//! reports the host as disabled until the next apply removes it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{exit, refused};
use crate::firewall::backend::{self, exec};
use crate::propose::group;
use crate::scan::SocketSource;
use crate::state::{StateDir, now_secs, read_json, remove_if_exists, write_json};

/// What `autofw disable` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct DisableOptions {
    pub state_dir: PathBuf,
    /// Where the boot files are (`apply --persist --root`).
    pub root: PathBuf,
}

/// `disabled.json`: when autofw was disabled and what that removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Disabled {
    /// Seconds since the epoch.
    pub at: u64,
    /// What was loaded and removed, said for people (`nft table inet
    /// autofw`, `iptables chains`).
    pub removed: Vec<String>,
    /// The boot files removed.
    pub boot_files: Vec<PathBuf>,
}

pub(crate) fn path(state: &StateDir) -> PathBuf {
    state.root().join("disabled.json")
}

/// The host's `disabled.json`, if autofw is disabled.
pub(crate) fn read(state: &StateDir) -> anyhow::Result<Option<Disabled>> {
    read_json(&path(state))
}

/// An apply loaded rules again: autofw is no longer disabled.
pub(crate) fn clear(state: &StateDir) -> anyhow::Result<()> {
    remove_if_exists(&path(state))
}

pub(crate) fn run(args: &DisableOptions) -> anyhow::Result<u8> {
    exec::require_root("autofw disable")?;
    let state = StateDir::new(&args.state_dir);
    state.check_trusted()?;
    state.ensure()?;
    if state.read_window()?.is_some() {
        return Err(refused(
            "a rollback window is open: end it first with `autofw confirm` or `autofw rollback`, \
             then disable; nothing was changed",
        ));
    }
    // No apply may start while the rules go.
    let _lock = state.lock_apply()?;
    let record = state.read_applied()?;
    let removed = backend::remove_all(record.as_ref().map(|r| &r.rules))?
        .into_iter()
        .map(str::to_string)
        .collect();
    let boot_files = crate::persist::remove_boot_files(&args.root)?.unwrap_or_default();
    let disabled = Disabled {
        at: now_secs(),
        removed,
        boot_files,
    };
    write_json(&path(&state), &disabled)?;
    let scan = crate::scan::scan_host(
        SocketSource::Auto,
        crate::scan::OwnerSource::Auto,
        &crate::scan::host::read_service_table(),
    )?;
    let listening: Vec<String> = group::beyond_loopback(&scan)
        .iter()
        .map(|((port, proto), g)| format!("{port}/{proto} {} ({})", g.service(), g.owner()))
        .collect();
    print!("{}", say(&disabled, &listening, &args.state_dir));
    Ok(exit::OK)
}

/// What disable says: what went, what stays, what is unfiltered now, and
/// the way back.
pub(crate) fn say(disabled: &Disabled, listening: &[String], state_dir: &Path) -> String {
    let mut out = String::new();
    if disabled.removed.is_empty() {
        out.push_str("disabled: no autofw rules were loaded; none removed\n");
    } else {
        out.push_str("disabled: autofw's rules are removed:\n");
        for what in &disabled.removed {
            out.push_str(&format!("  - {what}\n"));
        }
    }
    if disabled.boot_files.is_empty() {
        out.push_str("boot: nothing of autofw was persisted; nothing loads at boot\n");
    } else {
        out.push_str("boot: the boot hook and saved rules are removed; nothing loads at boot:\n");
        for file in &disabled.boot_files {
            out.push_str(&format!("  - {}\n", file.display()));
        }
    }
    if listening.is_empty() {
        out.push_str("unfiltered now: nothing listens beyond loopback\n");
    } else {
        out.push_str(
            "UNFILTERED now: autofw no longer filters; these listen beyond loopback and are \
             reachable from any address (unless another firewall on this host drops them):\n",
        );
        // Process names are any process's to set: shown escaped.
        for port in listening {
            out.push_str(&format!("  - {}\n", crate::terminal::escape_controls(port)));
        }
    }
    let state_flag = if state_dir == Path::new(crate::state::DEFAULT_DIR) {
        String::new()
    } else {
        format!(" --state-dir {}", state_dir.display())
    };
    out.push_str(&format!(
        "kept: the policy file and the state directory ({}); `autofw apply --confirm{state_flag}` \
         brings the rules back (add --persist for boot)\n",
        state_dir.display()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_went_what_is_unfiltered_and_the_way_back() {
        let disabled = Disabled {
            at: 0,
            removed: vec!["nft table inet autofw (and its blocklist sets)".into()],
            boot_files: vec![PathBuf::from("/r/etc/autofw/boot/autofw.nft")],
        };
        let text = say(
            &disabled,
            &["22/tcp ssh (sshd, pid 1)".to_string()],
            Path::new("/s"),
        );
        assert!(text.starts_with("disabled: autofw's rules are removed:\n  - nft table"));
        assert!(
            text.contains("  - /r/etc/autofw/boot/autofw.nft\n"),
            "{text}"
        );
        assert!(text.contains("UNFILTERED now"), "{text}");
        assert!(text.contains("  - 22/tcp ssh (sshd, pid 1)\n"), "{text}");
        assert!(
            text.contains("`autofw apply --confirm --state-dir /s` brings the rules back"),
            "{text}"
        );
        let nothing = say(
            &Disabled {
                at: 0,
                removed: vec![],
                boot_files: vec![],
            },
            &[],
            Path::new(crate::state::DEFAULT_DIR),
        );
        assert!(nothing.starts_with("disabled: no autofw rules were loaded"));
        assert!(
            nothing.contains("`autofw apply --confirm` brings"),
            "{nothing}"
        );
    }
}
