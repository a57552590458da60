//! Which processes own the listening sockets: the walk over every
//! `/proc/PID/fd`, and the saved owner map that stands in for it in fixtures.
//!
//! The walk is nearly all of a scan's time (it is also nearly all of
//! `ss -tulnp`'s), so it is built for speed: one `openat` per process
//! relative to an open `/proc`, `getdents64` into a reused buffer, one
//! `readlinkat` per descriptor relative to the open fd directory (no path
//! walk from `/`, no allocation per descriptor), a binary search in the few
//! listener inodes we care about, and the processes shared out between
//! threads. Processes that cannot be read (not root) are counted, never
//! silently skipped; kernel threads hold no descriptors and are not counted.
//!
//! What it does not do, because it need not: walk threads (`/proc` lists
//! thread groups only, and a thread shares its process's descriptor table,
//! so `/proc/PID/task/TID/fd` would only repeat `/proc/PID/fd`). What it
//! cannot skip:
//! `/proc` has no cheaper way to tell that a process holds no socket than
//! reading its descriptors (no count of sockets per process; the link's
//! mode only says read/write), so a process with 16 open files costs its
//! 16 `readlinkat`s, and the busy benchmark host's 40,000 connections cost
//! 40,000 (docs/scan.md has the figures).

use super::core::{Owners, ProcessFacts};
use super::procnet::LineError;
use crate::model::UnreadableProcess;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags, RawDir};
use rustix::io::Errno;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::ffi::CStr;
use std::io::Write;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most this many threads walk: the work is kernel-bound and shares
/// locks on the process list, so more threads stop paying off quickly.
const MAX_THREADS: usize = 4;
/// Processes a thread takes at a time: small, so one process with 10,000
/// descriptors does not leave the other thread idle.
const CHUNK: usize = 4;
/// `getdents64` buffer per thread.
const DIR_BUFFER: usize = 32 * 1024;
/// `PF_KTHREAD` in `/proc/PID/stat`'s flags.
const PF_KTHREAD: u32 = 0x0020_0000;

/// Find the owners of the sockets whose inodes are in `wanted` (sorted) by
/// walking `/proc`. Only the `/proc` directory itself failing is an error.
pub(crate) fn walk_proc(wanted: &[u64]) -> anyhow::Result<Owners> {
    let proc = rustix::fs::open(
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| anyhow::anyhow!("cannot open `/proc`: {e}; is procfs mounted?"))?;
    let mut owners = Owners::default();
    if wanted.is_empty() {
        return Ok(owners);
    }
    let pids = list_pids(proc.as_fd())
        .map_err(|e| anyhow::anyhow!("cannot list the processes in `/proc`: {e}"))?;

    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(pids.len().div_ceil(64).max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Found> = std::thread::scope(|scope| {
        let walkers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| walk_share(proc.as_fd(), &pids, &next, wanted)))
            .collect();
        walkers
            .into_iter()
            .filter_map(|walker| walker.join().ok())
            .collect()
    });

    let mut owner_pids = BTreeSet::new();
    let mut unreadable = Vec::new();
    for found in results {
        for &(inode, pid) in &found.sockets {
            owners.pids_by_inode.entry(inode).or_default().insert(pid);
            owner_pids.insert(pid);
        }
        unreadable.extend(found.unreadable);
    }
    unreadable.sort_unstable();
    // Name each one (comm is world-readable unless /proc hides the
    // process): the note then says which process to look at.
    owners.unreadable_processes = unreadable
        .into_iter()
        .filter(|&pid| !is_kernel_thread(pid))
        .map(|pid| UnreadableProcess {
            pid,
            program: read_comm(proc.as_fd(), pid),
        })
        .collect();
    owners.unreadable = owners.unreadable_processes.len();
    for pid in owner_pids {
        match read_comm(proc.as_fd(), pid) {
            Some(comm) => {
                owners.programs.insert(pid, comm);
                owners.processes.insert(pid, read_process_facts(pid));
            }
            // Exited since the walk: it no longer holds the socket.
            None => {
                for pids in owners.pids_by_inode.values_mut() {
                    pids.remove(&pid);
                }
            }
        }
    }
    Ok(owners)
}

/// What one thread found: (inode, pid) for each wanted socket, and the
/// processes it could not read.
#[derive(Default)]
struct Found {
    sockets: Vec<(u64, u32)>,
    unreadable: Vec<u32>,
}

/// Take chunks of `pids` until none are left, and walk each process.
fn walk_share(proc: BorrowedFd<'_>, pids: &[u32], next: &AtomicUsize, wanted: &[u64]) -> Found {
    let mut found = Found::default();
    let mut dir_buffer = vec![MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    loop {
        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
        if start >= pids.len() {
            return found;
        }
        for &pid in &pids[start..(start + CHUNK).min(pids.len())] {
            if walk_process(proc, pid, wanted, &mut dir_buffer, &mut found.sockets)
                == Visit::Unreadable
            {
                found.unreadable.push(pid);
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Visit {
    Read,
    /// Exited while we looked: it holds nothing any more.
    Gone,
    Unreadable,
}

/// Walk one process's descriptors, adding (inode, pid) for wanted sockets.
fn walk_process(
    proc: BorrowedFd<'_>,
    pid: u32,
    wanted: &[u64],
    dir_buffer: &mut [MaybeUninit<u8>],
    sockets: &mut Vec<(u64, u32)>,
) -> Visit {
    let mut path = [0u8; 32];
    let Some(path) = proc_path(&mut path, pid, "fd") else {
        return Visit::Unreadable;
    };
    let fd_dir: OwnedFd = match rustix::fs::openat(
        proc,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return visit_error(e),
    };
    // A batch of fewer entries than a full buffer holds was the last: procfs
    // fills the buffer until the descriptors run out, and an fd entry takes
    // at most 32 bytes (19 of header, a name of at most 10 digits and its
    // NUL, aligned to 8). Stopping there saves each process the call that
    // would return nothing.
    let full_batch = dir_buffer.len() / 32 - 1;
    let mut entries = RawDir::new(&fd_dir, dir_buffer);
    let mut in_batch = 0;
    let mut link = [0u8; 64];
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return visit_error(e),
        };
        in_batch += 1;
        let name = entry.file_name();
        if name.to_bytes().first() != Some(&b'.') {
            match rustix::fs::readlinkat_raw(&fd_dir, name, &mut link[..]) {
                Ok(length) => {
                    if let Some(inode) = socket_inode(&link[..length.min(link.len())])
                        && wanted.binary_search(&inode).is_ok()
                    {
                        sockets.push((inode, pid));
                    }
                }
                // Closed since the listing.
                Err(Errno::NOENT) => {}
                Err(e) => {
                    if visit_error(e) == Visit::Unreadable {
                        return Visit::Unreadable;
                    }
                }
            }
        }
        if entries.is_buffer_empty() {
            if in_batch < full_batch {
                break;
            }
            in_batch = 0;
        }
    }
    Visit::Read
}

fn visit_error(e: Errno) -> Visit {
    match e {
        Errno::NOENT | Errno::SRCH => Visit::Gone,
        _ => Visit::Unreadable,
    }
}

/// `socket:[12345]` → 12345; anything else (files, pipes) → None.
pub(crate) fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .flatten()
    })
}

/// `PID/NAME` as a C string in `buffer`, relative to `/proc`, without
/// allocating.
fn proc_path<'a>(buffer: &'a mut [u8; 32], pid: u32, name: &str) -> Option<&'a CStr> {
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    write!(cursor, "{pid}/{name}\0").ok()?;
    let end = cursor.position() as usize;
    CStr::from_bytes_with_nul(&buffer[..end]).ok()
}

/// Every numeric entry of `/proc`: the processes (thread groups).
fn list_pids(proc: BorrowedFd<'_>) -> rustix::io::Result<Vec<u32>> {
    // A fresh descriptor: getdents moves the directory offset, and `proc`
    // stays in use for the `openat`s.
    let dir = rustix::fs::openat(
        proc,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buffer = vec![MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    let mut entries = RawDir::new(&dir, &mut buffer[..]);
    let mut pids = Vec::new();
    while let Some(entry) = entries.next() {
        if let Some(pid) = parse_pid(entry?.file_name().to_bytes()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// A `/proc` entry name that is a pid (`1234`), not `self`, `net`, ...
fn parse_pid(name: &[u8]) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    name.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
            .flatten()
    })
}

/// `/proc/PID/comm` without its newline; None if the process is gone.
fn read_comm(proc: BorrowedFd<'_>, pid: u32) -> Option<String> {
    let mut path = [0u8; 32];
    let path = proc_path(&mut path, pid, "comm")?;
    let fd =
        rustix::fs::openat(proc, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buffer = [0u8; 64];
    let length = rustix::io::read(&fd, &mut buffer[..]).ok()?;
    let text = String::from_utf8_lossy(&buffer[..length.min(buffer.len())]);
    Some(text.trim_end_matches('\n').to_string())
}

/// Who runs `pid` and what it runs: the effective uid from
/// `/proc/PID/status`, and `/proc/PID/exe` with its owner and mode. Only the
/// few processes that hold listeners are read, so plain `std::fs` will do.
fn read_process_facts(pid: u32) -> ProcessFacts {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| effective_uid(&status));
    let exe_link = format!("/proc/{pid}/exe");
    let exe = std::fs::read_link(&exe_link)
        .ok()
        .map(|path| path.to_string_lossy().into_owned());
    // The metadata of the file the process runs (through the magic link,
    // which works even when the file was deleted or lives in another mount
    // namespace).
    let exe_root_only = exe.is_some()
        && std::fs::metadata(&exe_link).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0);
    ProcessFacts {
        uid,
        exe,
        exe_root_only,
    }
}

/// The effective uid in a `/proc/PID/status` text (`Uid: real effective saved fs`).
pub(crate) fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Parse a saved process list (the fixture stand-in for what the walk reads
/// of each owner): lines of `PID UID EXE [root-only]`, `root-only` saying the
/// executable is root's alone. `#` starts a comment.
pub(crate) fn parse_process_facts(
    text: &str,
    file: &str,
) -> Result<HashMap<u32, ProcessFacts>, LineError> {
    let mut facts = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [pid, uid, exe, rest @ ..] if rest.is_empty() || rest == ["root-only"] => {
                match (pid.parse::<u32>(), uid.parse::<u32>()) {
                    (Ok(pid), Ok(uid)) => Some((
                        pid,
                        ProcessFacts {
                            uid: Some(uid),
                            exe: Some(exe.to_string()),
                            exe_root_only: !rest.is_empty(),
                        },
                    )),
                    _ => None,
                }
            }
            _ => None,
        };
        let (pid, process) = parsed.ok_or_else(|| LineError {
            file: file.to_string(),
            line: index + 1,
            problem: format!("expected `PID UID EXE [root-only]`, found `{line}`"),
        })?;
        facts.insert(pid, process);
    }
    Ok(facts)
}

/// Kernel threads hold no descriptors; not being able to read theirs (as a
/// non-root user) hides nothing, so they are not counted as unreadable.
fn is_kernel_thread(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|process| process.stat())
        .is_ok_and(|stat| stat.flags & PF_KTHREAD != 0)
}

/// Parse a saved owner map (the fixture stand-in for the walk): lines of
/// `INODE PID PROGRAM` (PROGRAM is the rest of the line, as comm may hold
/// spaces), at most one `unreadable COUNT`, and `unreadable-process PID
/// [PROGRAM]` for each one known by pid (the count is at least their
/// number). `#` starts a comment.
pub(crate) fn parse_owner_map(text: &str, file: &str) -> Result<Owners, LineError> {
    let mut owners = Owners::default();
    for (index, line) in text.lines().enumerate() {
        let error = |problem: String| LineError {
            file: file.to_string(),
            line: index + 1,
            problem,
        };
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, char::is_whitespace);
        let first = fields.next().unwrap_or("");
        let second = fields.next().map(str::trim);
        if first == "unreadable" {
            owners.unreadable = second
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| error(format!("expected `unreadable COUNT`, found `{line}`")))?;
            continue;
        }
        let program = fields.next().map(str::trim).unwrap_or("");
        if first == "unreadable-process" {
            let pid = second.and_then(|n| n.parse().ok()).ok_or_else(|| {
                error(format!(
                    "expected `unreadable-process PID [PROGRAM]`, found `{line}`"
                ))
            })?;
            owners.unreadable_processes.push(UnreadableProcess {
                pid,
                program: (!program.is_empty()).then(|| program.to_string()),
            });
            continue;
        }
        let (Ok(inode), Some(Ok(pid))) = (first.parse::<u64>(), second.map(str::parse::<u32>))
        else {
            return Err(error(format!(
                "expected `INODE PID PROGRAM` (numbers, then a name), found `{line}`"
            )));
        };
        if program.is_empty() {
            return Err(error(format!("no program name after the pid in `{line}`")));
        }
        if let Some(known) = owners.programs.get(&pid)
            && known != program
        {
            return Err(error(format!(
                "pid {pid} is `{known}` on an earlier line, `{program}` here"
            )));
        }
        owners.add(inode, pid, program);
    }
    owners.unreadable = owners.unreadable.max(owners.unreadable_processes.len());
    Ok(owners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(b"socket:[15321]"), Some(15321));
        assert_eq!(
            socket_inode(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        assert_eq!(socket_inode(b"socket:[18446744073709551616]"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[12a]"), None);
        assert_eq!(socket_inode(b"/var/log/syslog"), None);
        assert_eq!(socket_inode(b"pipe:[123]"), None);
        assert_eq!(socket_inode(b"socket:[123"), None);
    }

    #[test]
    fn pids_in_proc() {
        assert_eq!(parse_pid(b"1"), Some(1));
        assert_eq!(parse_pid(b"4194304"), Some(4_194_304));
        assert_eq!(parse_pid(b"self"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"99999999999"), None);
    }

    #[test]
    fn proc_paths_fit() {
        let mut buffer = [0u8; 32];
        assert_eq!(
            proc_path(&mut buffer, u32::MAX, "comm").unwrap(),
            c"4294967295/comm"
        );
    }

    #[test]
    fn owner_map() {
        let text = "# inode pid program\n15321 296 mysqld\n16001 449 sendmail: MTA\n16001 450 sendmail: MTA  # child\nunreadable 3\nunreadable-process 4242 open vpn\nunreadable-process 4243\n";
        let owners = parse_owner_map(text, "owners").unwrap();
        assert_eq!(owners.unreadable, 3);
        assert_eq!(
            owners.unreadable_processes,
            [
                UnreadableProcess {
                    pid: 4242,
                    program: Some("open vpn".into())
                },
                UnreadableProcess {
                    pid: 4243,
                    program: None
                }
            ]
        );
        let named_only = parse_owner_map("unreadable-process 7 a\nunreadable-process 8 b\n", "o");
        assert_eq!(
            named_only.unwrap().unreadable,
            2,
            "the count covers the named"
        );
        assert!(
            parse_owner_map("unreadable-process x\n", "o")
                .unwrap_err()
                .to_string()
                .contains("expected `unreadable-process PID [PROGRAM]`")
        );
        assert_eq!(owners.programs[&449], "sendmail: MTA");
        assert_eq!(
            owners.pids_by_inode[&16001]
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            [449, 450]
        );
    }

    #[test]
    fn process_facts() {
        let text = "# pid uid exe\n630 0 /usr/sbin/sshd root-only\n700 1000 /home/a/app\n";
        let facts = parse_process_facts(text, "processes").unwrap();
        assert_eq!(facts[&630].uid, Some(0));
        assert!(facts[&630].exe_root_only);
        assert_eq!(facts[&700].exe.as_deref(), Some("/home/a/app"));
        assert!(!facts[&700].exe_root_only);
        let e = parse_process_facts("1 x /a\n", "fx/processes")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "`fx/processes` line 1: expected `PID UID EXE [root-only]`, found `1 x /a`"
        );
        assert!(parse_process_facts("1 0 /a writable\n", "p").is_err());
        assert_eq!(
            effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\n"),
            Some(0)
        );
    }

    #[test]
    fn owner_map_errors_name_the_line() {
        let e = |text: &str| parse_owner_map(text, "fx/owners").unwrap_err().to_string();
        assert_eq!(
            e("1 2 a\nx 296 mysqld\n"),
            "`fx/owners` line 2: expected `INODE PID PROGRAM` (numbers, then a name), found `x 296 mysqld`"
        );
        assert!(e("15321 296\n").contains("line 1: no program name"));
        assert!(e("unreadable lots\n").contains("line 1: expected `unreadable COUNT`"));
        assert!(e("1 5 a\n2 5 b\n").contains("line 2: pid 5 is `a`"));
    }

    #[test]
    fn walk_finds_own_socket_and_nothing_for_unknown_inodes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
        let inode = socket_inode(link.as_os_str().as_encoded_bytes()).unwrap();
        let owners = walk_proc(&[inode]).unwrap();
        let me = std::process::id();
        assert!(owners.pids_by_inode[&inode].contains(&me));
        assert!(!owners.programs[&me].is_empty());
        let facts = &owners.processes[&me];
        assert_eq!(facts.uid, Some(rustix::process::geteuid().as_raw()));
        assert!(facts.exe.as_deref().is_some_and(|exe| exe.starts_with('/')));
        assert!(walk_proc(&[]).unwrap().pids_by_inode.is_empty());
    }

    /// A process with more descriptors than one `getdents64` batch holds
    /// (32 KiB: about 1,300 entries) is read to the end: the socket past
    /// the first batch is found.
    #[test]
    fn walk_reads_every_batch_of_a_large_fd_table() {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let want = 4096;
        if limit.current.is_some_and(|c| c < want) {
            let raised = rustix::process::Rlimit {
                current: Some(limit.maximum.map_or(want, |m| m.min(want))),
                maximum: limit.maximum,
            };
            rustix::process::setrlimit(rustix::process::Resource::Nofile, raised).unwrap();
        }
        let files: Vec<std::fs::File> = (0..3000)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        assert!(listener.as_raw_fd() > 3000);
        let link = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
        let inode = socket_inode(link.as_os_str().as_encoded_bytes()).unwrap();
        let owners = walk_proc(&[inode]).unwrap();
        assert!(owners.pids_by_inode[&inode].contains(&std::process::id()));
        drop(files);
    }
}
