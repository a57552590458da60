//! `autofw log`: what autofw's rules dropped recently, from the kernel log
//! (docs/log.md). This file is the edge: it reads the log from a file,
//! `journalctl -k`, or /dev/kmsg; [`summary`] counts, pure.

pub(crate) mod counter;
pub(crate) mod summary;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{bad_input, exit, host_failure};
use crate::scan::host::read_service_table;

/// What `autofw log` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct LogOptions {
    /// A saved kernel log instead of this host's.
    pub file: Option<PathBuf>,
    /// `journalctl --since` (with journald only).
    pub since: String,
    /// How many ports and sources to list.
    pub top: usize,
    pub json: bool,
}

pub(crate) fn run(args: &LogOptions) -> anyhow::Result<u8> {
    let (log, read_from) = match &args.file {
        Some(file) => (
            crate::input::read_bytes(file, crate::input::Kind::KernelLog)?,
            crate::terminal::path(file),
        ),
        None if Path::new("/run/systemd/journal/socket").exists() => (
            journal(&args.since)?,
            format!("the kernel log since {} (journalctl -k)", args.since),
        ),
        None => (kmsg()?, "the kernel ring buffer (/dev/kmsg)".to_string()),
    };
    let log = String::from_utf8_lossy(&log);
    let mut summary = summary::summarise(log.lines(), args.top, &read_service_table());
    // This host's log: the live counter tells an empty log from no drops.
    if args.file.is_none() {
        summary.counted = live_drop_counter();
        summary.note = counter::unlogged_note(summary.drops, summary.counted, first_netns());
    }
    let text = if args.json {
        serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n"
    } else {
        summary::text(&summary, &read_from)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(exit::OK)
}

/// The packets autofw's drop rule counted, from the live ruleset: nft's
/// table, else the iptables backend's chains (both families). `None` when
/// it cannot be read (not root, no tool, no autofw rules): only a hint.
fn live_drop_counter() -> Option<u64> {
    use crate::firewall::backend::exec::{run_tool, tool_exists};
    if tool_exists("nft")
        && let Some(n) = crate::firewall::backend::nft::terse_ruleset_json()
            .ok()
            .as_ref()
            .and_then(counter::nft_drop_packets)
    {
        return Some(n);
    }
    ["iptables-save", "ip6tables-save"]
        .into_iter()
        .filter(|tool| tool_exists(tool))
        .filter_map(|tool| run_tool(tool, &["-c", "-t", "filter"], None).ok())
        .filter_map(|save| counter::iptables_drop_packets(&save))
        .reduce(|a, b| a + b)
}

/// Is this the host's first network namespace? The nf_log_all_netns
/// sysctl exists only there. `None` without netfilter's sysctls at all.
fn first_netns() -> Option<bool> {
    let netfilter = Path::new("/proc/sys/net/netfilter");
    netfilter
        .is_dir()
        .then(|| netfilter.join("nf_log_all_netns").exists())
}

fn journal(since: &str) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("journalctl")
        .args(["-k", "--no-pager", "-o", "short-iso", "--since", since])
        .output()
        .map_err(|e| host_failure(format!("cannot run journalctl: {e}; or give --file")))?;
    if !out.status.success() {
        return Err(bad_input(format!(
            "journalctl -k --since {since} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Every record in the kernel ring buffer. /dev/kmsg hands out one record
/// per read and blocks at the end, so it is read non-blocking until EAGAIN;
/// EPIPE means a record was overwritten while reading, and reading goes on.
fn kmsg() -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| {
            host_failure(format!(
                "cannot read /dev/kmsg: {e}; run as root, or give a saved log with --file"
            ))
        })?;
    let mut log = Vec::new();
    let mut record = vec![0u8; 16 * 1024];
    loop {
        match file.read(&mut record) {
            Ok(0) => break,
            Ok(n) => {
                log.extend_from_slice(&record[..n]);
                if record[n - 1] != b'\n' {
                    log.push(b'\n');
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(host_failure(format!("cannot read /dev/kmsg: {e}"))),
        }
    }
    Ok(log)
}
