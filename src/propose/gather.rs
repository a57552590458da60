//! The edges of `autofw propose`: reading the policy file, its blocklist
//! files and a saved scan (or scanning this host), and writing the output.
//! Everything these read is handed, as text, to the pure parsers.

use super::choices::Choices;
use super::policy_file::{Policy, parse_policy};
use super::{Format, PolicyOptions, Proposal, ProposeOptions, build, parse_saved_scan};
use crate::blocklist::{Collected, FamilySets, Ranges, SetContents, parse_entry, parse_list};
use crate::error::{bad_input, host_failure};
use crate::input::{self, Kind};
use crate::model::Scan;
use crate::scan::{OwnerSource, SocketSource};
use crate::services::ServiceTable;
use crate::terminal::escape_controls;
use anyhow::Context;
use std::path::Path;

/// Read the choices from the command line and `--policy`, and the scan from
/// `--from` or the live host.
pub fn gather(args: &PolicyOptions) -> anyhow::Result<(Scan, Choices)> {
    // Choices first: a typo fails before the host is scanned. The scan names
    // listeners with the same table the choices were checked against.
    let choices = read_choices(args, crate::scan::host::read_service_table())?;
    let scan = match &args.from {
        Some(path) => read_saved_scan(path)?,
        None => crate::scan::scan_host(SocketSource::Auto, OwnerSource::Auto, &choices.table)?,
    };
    Ok((scan, choices))
}

/// The policy file these options name: `--policy FILE`; none with
/// `--no-policy`; else the default, `/etc/autofw/policy.toml` (under
/// `--root` where a command has one), when it exists. The default is read
/// by every command, so that what `autofw allow` wrote is what the next
/// `apply` does, whatever one-off flags it is given.
pub(crate) fn policy_path(args: &PolicyOptions) -> Option<std::path::PathBuf> {
    if let Some(path) = &args.policy {
        return Some(path.clone());
    }
    if args.no_policy {
        return None;
    }
    let default = default_policy(args.root.as_deref());
    default.exists().then_some(default)
}

/// `/etc/autofw/policy.toml` under `root` (`/` when none).
pub(crate) fn default_policy(root: Option<&Path>) -> std::path::PathBuf {
    root.unwrap_or(Path::new("/"))
        .join(super::DEFAULT_POLICY.trim_start_matches('/'))
}

/// Read the policy file (and its blocklist files) the options name, and
/// merge it with the flags.
pub(crate) fn read_choices(args: &PolicyOptions, table: ServiceTable) -> anyhow::Result<Choices> {
    let path = policy_path(args);
    let text = match &path {
        Some(path) => Some(input::read_text(path, Kind::Policy)?),
        None => None,
    };
    let policy = match (&path, &text) {
        (Some(path), Some(text)) => Some((text.as_str(), path.as_path())),
        _ => None,
    };
    choices_from(args, table, policy)
}

/// The choices of the flags in `args` and of `policy`, a policy file's text
/// and where it is (its blocklist files are read relative to it).
pub(crate) fn choices_from(
    args: &PolicyOptions,
    table: ServiceTable,
    policy_text: Option<(&str, &Path)>,
) -> anyhow::Result<Choices> {
    let mut policy = Policy::default();
    let mut lists = Collected::default();
    let mut list_paths = Vec::new();
    let mut source = None;
    if let Some((text, path)) = policy_text {
        let origin = crate::terminal::path(path);
        policy = parse_policy(text, &origin, &table)?;
        source = Some(super::choices::PolicySource {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            digest: super::policy_edit::text_digest(text.as_bytes()),
        });
        let base = path.parent().unwrap_or(Path::new("."));
        for file in &policy.blocklist_files {
            let list_path = std::path::absolute(base.join(&file.value))
                .unwrap_or_else(|_| base.join(&file.value));
            read_blocklist_file(&list_path, args.skip_bad_lines, &mut lists)
                .with_context(|| format!("blocklist file named at {}", file.place))?;
            list_paths.push(list_path);
        }
    }
    let mut choices = Choices::merge(&args.allow, &args.block, policy, table)?;
    choices.add_command_line(&args.limit, &args.source, &args.blocklist)?;
    report_skipped(&lists);
    choices.blocklist_lists = lists;
    choices.blocklist_paths = list_paths;
    choices.policy_source = source;
    Ok(choices)
}

/// Read and parse one blocklist file into `into`. A file that cannot be
/// read (missing, not a regular file, past its cap, not UTF-8) and a
/// malformed line (`file:line` named) are both bad input.
pub(crate) fn read_blocklist_file(
    path: &Path,
    skip_bad_lines: bool,
    into: &mut Collected,
) -> anyhow::Result<()> {
    let text = input::read_text(path, Kind::Blocklist)?;
    parse_list(&text, &crate::terminal::path(path), skip_bad_lines, into).map_err(bad_input)
}

/// `--skip-bad-lines`: say how many lines were skipped, and the first.
pub(crate) fn report_skipped(lists: &Collected) {
    if let Some(first) = &lists.first_skipped {
        say!(
            "autofw: warning: skipped {} malformed blocklist line(s) (--skip-bad-lines); the first: {first}",
            lists.skipped
        );
    }
}

/// A saved `scan --json`, checked enough that a bad file gets a clear error.
pub fn read_saved_scan(path: &Path) -> anyhow::Result<Scan> {
    let text = input::read_text(path, Kind::SavedScan)?;
    parse_saved_scan(&text, &crate::terminal::path(path))
}

/// `autofw propose`. `other_filters` says what the host's other packet
/// filters would do to the proposal (passed in: judging it runs firewall
/// tools, which this module does not); it is asked only on the host itself,
/// not for a scan saved elsewhere.
pub(crate) fn run(
    args: &ProposeOptions,
    other_filters: &dyn Fn(&Proposal, Format) -> Vec<String>,
) -> anyhow::Result<u8> {
    let (scan, choices) = gather(&args.policy)?;
    let mut proposal = build(&scan, &choices);
    if args.policy.from.is_none() {
        for warning in other_filters(&proposal, args.format) {
            proposal.add_warning(warning);
        }
    }
    let text = if args.json {
        proposal.to_json()
    } else {
        proposal.render(args.format)
    };
    // Said on stderr too, so an operator piping the ruleset to a file sees it.
    // Names come from the scan: escaped, so that none acts on the terminal.
    for c in proposal
        .ruleset
        .closed
        .iter()
        .filter(|c| c.to_open.is_some())
    {
        say!("autofw: left closed: {}", escape_controls(&c.describe()));
    }
    for w in proposal.warnings() {
        say!("autofw: warning: {}", escape_controls(w));
    }
    // An operator who loads the IPv4 half alone leaves IPv6 open.
    if let Some(other) = super::other_family(args.format)
        && !args.json
    {
        say!(
            "autofw: note: {}",
            other.replacen("This is", "the output is", 1)
        );
    }
    if let Some(path) = &args.ipset {
        let sets = proposal.ipset_restore().ok_or_else(|| {
            bad_input("--ipset: this proposal has no blocklist, so there is no ipset to write")
        })?;
        std::fs::write(path, sets)
            .map_err(|e| host_failure(format!("cannot write {}: {e}", path.display())))?;
    }
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| host_failure(format!("cannot write {}: {e}", path.display())))?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(crate::error::exit::OK)
}

/// Read a recorded blocklist again (what `blocklist refresh` and `status`
/// do): its files and inline entries, merged into the content of the four
/// sets. A malformed line is bad input naming `file:line`; an unreadable
/// file, too.
pub(crate) fn read_recorded_blocklist(
    files: &[std::path::PathBuf],
    inline: &[String],
    skip_bad_lines: bool,
) -> anyhow::Result<SetContents> {
    let mut lists = Collected::default();
    for text in inline {
        let entry = parse_entry(text).map_err(|e| {
            bad_input(format!(
                "recorded blocklist entry {}: {e}",
                crate::terminal::excerpt(text)
            ))
        })?;
        lists.push(entry);
    }
    for path in files {
        read_blocklist_file(path, skip_bad_lines, &mut lists)?;
    }
    report_skipped(&lists);
    Ok(SetContents {
        v4: FamilySets::of(&Ranges::merge(lists.v4)),
        v6: FamilySets::of(&Ranges::merge(lists.v6)),
        shards: crate::blocklist::shards_for(!files.is_empty()),
    })
}
