//! The edge of `autofw allow|block|limit|source|forget`: read the policy
//! file, have [`policy_edit`](super::policy_edit) change it, show what
//! changes in the file and what that would change in the firewall (the
//! proposal with the old text against the proposal with the new, built as
//! `propose` builds them), and write it atomically. Nothing is loaded:
//! `autofw apply --confirm` is the next step, and the output says so.

use super::gather::{choices_from, default_policy, read_saved_scan};
use super::policy_edit::{self, Edit, Edited};
use super::{PolicyOptions, build};
use crate::error::{exit, host_failure};
use crate::human::unified_diff;
use crate::terminal::escape_controls;
use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What an edit command was asked for.
#[derive(Debug, Clone)]
pub struct EditOptions {
    pub edit: Edit,
    /// `--policy FILE`, instead of the default.
    pub policy: Option<PathBuf>,
    /// `--root DIR`: the default policy under DIR.
    pub root: Option<PathBuf>,
    /// `--from FILE`: the preview from a saved scan instead of this host's.
    pub from: Option<PathBuf>,
    pub json: bool,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
struct EditReport<'a> {
    policy: String,
    created: bool,
    changed: bool,
    changes: &'a [String],
    unchanged: &'a [String],
    /// Unified diff of the file, old → new (empty when unchanged).
    diff: String,
    /// The rule lines the new policy adds and removes, once applied;
    /// `None` when the preview could not be made (`preview_error` says why).
    firewall: Option<FirewallChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview_error: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Serialize)]
struct FirewallChange {
    added: Vec<String>,
    removed: Vec<String>,
}

pub(crate) fn run(args: &EditOptions) -> anyhow::Result<u8> {
    let path = args
        .policy
        .clone()
        .unwrap_or_else(|| default_policy(args.root.as_deref()));
    // A policy kept elsewhere (a checkout) and linked here is edited where
    // it lives, not replaced by a file.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    // Read as every input is (a FIFO or device refused, capped, UTF-8
    // named by line); an error leaves the file unchanged.
    let (old, exists) = match crate::input::read_text_if_exists(&path, crate::input::Kind::Policy)?
    {
        Some(text) => (text, true),
        None => (String::new(), false),
    };
    let table = crate::scan::host::read_service_table();
    let origin = path.display().to_string();
    let edited = policy_edit::edit(&old, &origin, &args.edit, &table)?;
    let changed = edited.changed(&old);
    let preview = if changed {
        Some(preview(args, &path, &old, &edited.text, table))
    } else {
        None
    };
    if changed {
        write_atomically(&path, &edited.text, exists)?;
    }
    let next = changed.then(|| next_step(args));
    let diff = if changed {
        unified_diff(
            &origin,
            &format!("{origin} (new)"),
            if exists { &old } else { "" },
            &edited.text,
            1,
        )
    } else {
        String::new()
    };
    if args.json {
        let (firewall, preview_error) = match preview {
            Some(Ok((added, removed))) => (Some(FirewallChange { added, removed }), None),
            Some(Err(e)) => (None, Some(format!("{e:#}"))),
            None => (
                Some(FirewallChange {
                    added: Vec::new(),
                    removed: Vec::new(),
                }),
                None,
            ),
        };
        let report = EditReport {
            policy: origin,
            created: changed && !exists,
            changed,
            changes: &edited.changes,
            unchanged: &edited.unchanged,
            diff,
            firewall,
            preview_error,
            next,
        };
        let mut out = serde_json::to_string_pretty(&report)?;
        out.push('\n');
        std::io::stdout().lock().write_all(out.as_bytes())?;
        return Ok(exit::OK);
    }
    print_text(&origin, exists, &edited, &diff, preview, next);
    Ok(exit::OK)
}

fn print_text(
    origin: &str,
    exists: bool,
    edited: &Edited,
    diff: &str,
    preview: Option<anyhow::Result<(Vec<String>, Vec<String>)>>,
    next: Option<String>,
) {
    let mut out = String::new();
    for line in &edited.unchanged {
        out.push_str(&format!("unchanged: {line}\n"));
    }
    let Some(preview) = preview else {
        out.push_str(&format!("{origin} is unchanged\n"));
        print!("{out}");
        return;
    };
    out.push_str(&format!(
        "{} {origin}: {}\n",
        if exists { "changed" } else { "created" },
        edited.changes.join("; ")
    ));
    out.push_str(diff);
    if !diff.ends_with('\n') {
        out.push('\n');
    }
    match preview {
        Ok((added, removed)) if added.is_empty() && removed.is_empty() => out.push_str(
            "\nfirewall: no rule would change (nothing listens there, or the policy already \
             had the same effect)\n",
        ),
        Ok((added, removed)) => {
            out.push_str("\nfirewall, once applied:\n");
            for line in &removed {
                out.push_str(&format!("- {}\n", escape_controls(line)));
            }
            for line in &added {
                out.push_str(&format!("+ {}\n", escape_controls(line)));
            }
        }
        Err(e) => out.push_str(&format!(
            "\nfirewall: no preview ({e:#}); `autofw apply` shows the change\n"
        )),
    }
    if let Some(next) = next {
        out.push_str(&format!(
            "\nnext: `{next}` loads it (rolled back unless you confirm); `autofw apply` alone is a dry run\n"
        ));
    }
    print!("{out}");
}

/// The rule lines the new text adds and removes: both proposals built as
/// `propose` builds them, from the same scan.
fn preview(
    args: &EditOptions,
    path: &Path,
    old: &str,
    new: &str,
    table: crate::services::ServiceTable,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let flags = PolicyOptions::default();
    let old_choices = choices_from(&flags, table.clone(), Some((old, path)))?;
    let new_choices = choices_from(&flags, table.clone(), Some((new, path)))?;
    let scan = match &args.from {
        Some(from) => read_saved_scan(from)?,
        None => crate::scan::scan_host(
            crate::scan::SocketSource::Auto,
            crate::scan::OwnerSource::Auto,
            &table,
        )?,
    };
    let before = build(&scan, &old_choices)
        .render_for(crate::propose::Format::Nft, crate::propose::Target::Load);
    let after = build(&scan, &new_choices)
        .render_for(crate::propose::Format::Nft, crate::propose::Target::Load);
    Ok(policy_edit::rule_changes(&before, &after))
}

/// The command that applies the edited policy.
fn next_step(args: &EditOptions) -> String {
    match (&args.policy, &args.root) {
        (Some(p), _) => format!("autofw apply --confirm --policy {}", p.display()),
        (None, Some(root)) if root != Path::new("/") => {
            format!("autofw apply --confirm --root {}", root.display())
        }
        _ => "autofw apply --confirm".to_string(),
    }
}

/// Write `text` to `path` whole or not at all: a temporary file in the same
/// directory, synced, renamed over. A new file is 0644 (a policy is not a
/// secret, and people read it); an existing one keeps its mode.
fn write_atomically(path: &Path, text: &str, exists: bool) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let cannot = |e: std::io::Error| {
        host_failure(format!(
            "cannot write policy file {}: {e}; it is unchanged",
            path.display()
        ))
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(cannot)?;
    }
    let mode = match exists {
        true => {
            std::fs::metadata(path)
                .map_err(cannot)?
                .permissions()
                .mode()
                & 0o7777
        }
        false => 0o644,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".policy.toml.")
        .tempfile_in(dir)
        .map_err(cannot)?;
    tmp.write_all(text.as_bytes()).map_err(cannot)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(cannot)?;
    tmp.as_file().sync_all().map_err(cannot)?;
    tmp.persist(path).map_err(|e| cannot(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
