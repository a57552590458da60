//! Which processes own the listening sockets: the walk over every
//! `/proc/PID/fd` ([`fd_walk`] finds the holders), what is read of each
//! holder (its name, account, executable), and the saved owner map that
//! stands in for the walk in fixtures.

use super::OwnerSource;
use super::core::{Owners, ProcessFacts};
use super::fd_walk::{self, DIR_BUFFER};
use super::procnet::LineError;
use super::task_files;
use crate::model::UnreadableProcess;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::ffi::CStr;
use std::io::Write;
use std::mem::MaybeUninit;

/// `PF_KTHREAD` in `/proc/PID/stat`'s flags.
const PF_KTHREAD: u32 = 0x0020_0000;

/// From about this many processes on, `OwnerSource::Auto` asks the
/// kernel's `task_file` iterator (a fixed ~2 ms, then next to nothing per
/// descriptor) rather than walking `/proc` (about 1.7 µs per descriptor):
/// the seed VPS has 75 processes, the busy benchmark host 580.
const ITERATOR_FROM_PROCESSES: usize = 200;

/// Find the owners of the sockets whose inodes are in `wanted` (sorted):
/// which processes hold them (the `/proc` walk, or the kernel's iterator:
/// `from`), and what each holder is (always from `/proc`). Only the
/// `/proc` directory itself failing is an error, and, with
/// `OwnerSource::Iterator`, the iterator failing.
pub(crate) fn find_owners(wanted: &[u64], from: OwnerSource) -> anyhow::Result<Owners> {
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

    let from_iterator = match from {
        OwnerSource::Walk => None,
        OwnerSource::Auto if pids.len() < ITERATOR_FROM_PROCESSES => None,
        OwnerSource::Auto => task_files::socket_holders(wanted).ok(),
        OwnerSource::Iterator => Some(task_files::socket_holders(wanted).map_err(|e| {
            crate::error::host_failure(format!("{e}; `--owners-from proc` walks /proc instead"))
        })?),
    };
    let (sockets, unreadable) = match from_iterator {
        Some(seen) => {
            let unreadable = not_seen_and_unreadable(proc.as_fd(), &pids, &seen.processes);
            (seen.sockets, unreadable)
        }
        None => fd_walk::holders(proc.as_fd(), &pids, wanted),
    };
    for (inode, pid) in sockets {
        owners.pids_by_inode.entry(inode).or_default().insert(pid);
    }
    let owner_pids: BTreeSet<u32> = owners.pids_by_inode.values().flatten().copied().collect();
    // Name each one (comm is world-readable unless /proc hides the
    // process): the note then says which process to look at.
    owners.unreadable_processes = unreadable
        .into_iter()
        .map(|pid| UnreadableProcess {
            pid,
            program: read_comm(proc.as_fd(), pid),
        })
        .collect();
    owners.unreadable = owners.unreadable_processes.len();
    for pid in owner_pids {
        match read_comm(proc.as_fd(), pid) {
            Some(name) => {
                let uid = effective_uid(proc.as_fd(), pid);
                owners.programs.insert(pid, name);
                owners
                    .processes
                    .insert(pid, read_process_facts(proc.as_fd(), pid, uid));
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

/// The processes of `pids` the iterator saw no file of (`seen`, sorted)
/// that hold descriptors all the same (`/proc/PID/fd` counts them, or
/// refuses us): kept from the iterator as from the walk (a sandbox's init
/// on our machines, which a root without all capabilities may not
/// inspect), counted as the walk counts them: a refused one only when it is
/// no kernel thread. The others hold nothing (kernel threads) or exited.
fn not_seen_and_unreadable(proc: BorrowedFd<'_>, pids: &[u32], seen: &[u32]) -> Vec<u32> {
    let mut path = [0u8; 32];
    pids.iter()
        .copied()
        .filter(|pid| seen.binary_search(pid).is_err())
        .filter(|&pid| {
            proc_path(&mut path, pid, "fd").is_some_and(|fd| {
                match rustix::fs::statat(proc, fd, AtFlags::empty()) {
                    Ok(stat) => stat.st_size > 0,
                    Err(e) => {
                        matches!(e, rustix::io::Errno::ACCESS | rustix::io::Errno::PERM)
                            && !is_kernel_thread(proc, pid)
                    }
                }
            })
        })
        .collect()
}

/// `PID/NAME` as a C string in `buffer`, relative to `/proc`, without
/// allocating.
pub(super) fn proc_path<'a>(buffer: &'a mut [u8; 32], pid: u32, name: &str) -> Option<&'a CStr> {
    c_path(buffer, format_args!("{pid}/{name}"))
}

/// `path` as a C string in `buffer`, without allocating; None if it does
/// not fit.
fn c_path<'a>(buffer: &'a mut [u8; 32], path: std::fmt::Arguments<'_>) -> Option<&'a CStr> {
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    cursor.write_fmt(path).ok()?;
    cursor.write_all(b"\0").ok()?;
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
        if let Some(pid) = parse_number(entry?.file_name().to_bytes()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// A `/proc` entry name that is a pid (`1234`), not `self`, `net`, ...;
/// also a descriptor's name in `/proc/PID/fd`.
pub(super) fn parse_number(name: &[u8]) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    name.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
            .flatten()
    })
}

/// `/proc/PID/comm` without the newline the kernel adds (a name may hold
/// newlines of its own: the kernel does not escape them here); bytes that
/// are not UTF-8 (a name cut inside a character) replaced. None if the
/// process is gone.
fn read_comm(proc: BorrowedFd<'_>, pid: u32) -> Option<String> {
    let mut buffer = [0u8; 64];
    let text = read_head(proc, pid, "comm", &mut buffer)?;
    let name = text.strip_suffix(b"\n").unwrap_or(text);
    Some(String::from_utf8_lossy(name).into_owned())
}

/// What one read of `/proc/PID/NAME` gives into `buffer` (relative to the
/// open `/proc`): all of a file that fits; None if the process is gone.
fn read_head<'b>(
    proc: BorrowedFd<'_>,
    pid: u32,
    name: &str,
    buffer: &'b mut [u8],
) -> Option<&'b [u8]> {
    let mut path = [0u8; 32];
    let path = proc_path(&mut path, pid, name)?;
    let fd =
        rustix::fs::openat(proc, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let length = rustix::io::read(&fd, &mut *buffer).ok()?;
    buffer.get(..length)
}

/// The effective uid of process `pid`: the owner of its `/proc/PID`
/// directory, which the kernel sets to the effective uid whether or not
/// the process may be dumped (fs/proc/base.c, `task_dump_owner`: its other
/// files, `fd` among them, turn root's when a daemon drops privileges;
/// the directory does not: "Reading /proc/pid/status is slow enough that
/// procps and other packages kept stating /proc/pid"). One
/// `statat` where `status` would be some fifty lines the kernel builds
/// for two of them (measured: docs/scan.md). None if the process is gone.
fn effective_uid(proc: BorrowedFd<'_>, pid: u32) -> Option<u32> {
    let mut path = [0u8; 32];
    let path = c_path(&mut path, format_args!("{pid}"))?;
    rustix::fs::statat(proc, path, AtFlags::empty())
        .ok()
        .map(|stat| stat.st_uid)
}

/// What `pid` runs: `/proc/PID/exe` with its owner and mode, relative to
/// the open `/proc`, with the effective uid its status gave.
fn read_process_facts(proc: BorrowedFd<'_>, pid: u32, uid: Option<u32>) -> ProcessFacts {
    let mut path = [0u8; 32];
    let exe_link = proc_path(&mut path, pid, "exe");
    let exe = exe_link
        .and_then(|link| rustix::fs::readlinkat(proc, link, Vec::new()).ok())
        .map(|path| path.to_string_lossy().into_owned());
    // The metadata of the file the process runs (through the magic link,
    // which works even when the file was deleted or lives in another mount
    // namespace).
    let exe_root_only = exe.is_some()
        && exe_link.is_some_and(|link| {
            rustix::fs::statat(proc, link, AtFlags::empty())
                .is_ok_and(|stat| stat.st_uid == 0 && stat.st_mode & 0o022 == 0)
        });
    ProcessFacts {
        uid,
        exe,
        exe_root_only,
    }
}

/// The whole of a small `/proc` file, relative to the open `/proc`: one
/// read for most (procfs generates the text on the first).
fn read_all(proc: BorrowedFd<'_>, path: &CStr) -> Option<Vec<u8>> {
    let fd =
        rustix::fs::openat(proc, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = rustix::io::read(&fd, &mut chunk[..]).ok()?;
        if read == 0 {
            return Some(text);
        }
        text.extend_from_slice(&chunk[..read.min(chunk.len())]);
    }
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
pub(super) fn is_kernel_thread(proc: BorrowedFd<'_>, pid: u32) -> bool {
    let mut path = [0u8; 32];
    proc_path(&mut path, pid, "stat")
        .and_then(|path| read_all(proc, path))
        .and_then(|stat| stat_flags(&stat))
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// The flags of a `/proc/PID/stat` line: the 9th field, the 7th after the
/// comm's closing parenthesis (a comm may hold spaces and parentheses).
fn stat_flags(stat: &[u8]) -> Option<u32> {
    let after_comm = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = after_comm
        .split(|b| b.is_ascii_whitespace())
        .filter(|field| !field.is_empty())
        .nth(6)?;
    std::str::from_utf8(field).ok()?.parse().ok()
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
    fn pids_in_proc() {
        assert_eq!(parse_number(b"1"), Some(1));
        assert_eq!(parse_number(b"4194304"), Some(4_194_304));
        assert_eq!(parse_number(b"self"), None);
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"99999999999"), None);
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
    }

    /// A holder's name is its comm as the kernel keeps it (newlines and
    /// backslashes included, only the kernel's own newline taken off), and
    /// its uid the effective one.
    #[test]
    fn holders_names_and_effective_uids() {
        let proc =
            rustix::fs::open("/proc", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(
            read_comm(proc.as_fd(), me).unwrap(),
            comm.trim_end_matches('\n')
        );
        assert_eq!(
            effective_uid(proc.as_fd(), me),
            Some(rustix::process::geteuid().as_raw())
        );
        // A process renamed with a newline and a backslash, ending in a
        // newline of its own (a process may rename only itself): only the
        // kernel's is taken off.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                r#"printf 'a\nb\\c d\n' > /proc/$$/comm && echo renamed; read x"#,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = String::new();
        let renamed = std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut said,
        );
        let name = read_comm(proc.as_fd(), child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!((renamed.unwrap(), said.as_str()), (8, "renamed\n"));
        assert_eq!(name.unwrap(), "a\nb\\c d\n");
        // Gone: no name, no uid.
        assert_eq!(read_comm(proc.as_fd(), child.id()), None);
        assert_eq!(effective_uid(proc.as_fd(), child.id()), None);
    }

    /// A daemon that drops to `nobody` is no longer dumpable, so the kernel
    /// gives its `/proc/PID/fd` (and `status`'s readers nothing else) to
    /// root; `/proc/PID` itself stays the effective uid's. Needs root (to
    /// change uid); CI is root.
    #[test]
    fn a_process_that_dropped_privileges_shows_its_effective_uid() {
        if !rustix::process::geteuid().is_root() {
            say!("skipped: needs root to change a process's uid");
            return;
        }
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        // SAFETY: the child only makes system calls (no allocation, no
        // locks) before it waits to be killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above; the child never returns into the test.
            unsafe {
                let dropped = libc::setresgid(65534, 65534, 65534) == 0
                    && libc::setresuid(1000, 65534, 0) == 0
                    && libc::prctl(libc::PR_SET_DUMPABLE, 0) == 0;
                libc::write(
                    rustix::fd::AsRawFd::as_raw_fd(&writer),
                    [u8::from(dropped)].as_ptr().cast(),
                    1,
                );
                libc::pause();
                libc::_exit(0);
            }
        }
        drop(writer);
        let mut dropped = [0u8];
        let read = rustix::io::read(&reader, &mut dropped);
        let proc =
            rustix::fs::open("/proc", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let pid = pid as u32;
        let uid = effective_uid(proc.as_fd(), pid);
        let fd_owner =
            rustix::fs::statat(proc.as_fd(), format!("{pid}/fd").as_str(), AtFlags::empty())
                .map(|stat| stat.st_uid);
        // SAFETY: kill and waitpid on the child forked above, by its pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
            libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
        }
        assert_eq!(read.unwrap(), 1);
        assert_eq!(dropped, [1], "the child could not drop its privileges");
        assert_eq!(
            fd_owner.unwrap(),
            0,
            "the kernel no longer hides a non-dumpable process"
        );
        assert_eq!(uid, Some(65534));
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
    fn kernel_threads_by_their_flags() {
        let kthreadd = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0\n";
        assert_eq!(stat_flags(kthreadd), Some(2_129_984));
        assert!(stat_flags(kthreadd).unwrap() & PF_KTHREAD != 0);
        let odd = b"7 (a) b (c) S 1 7 7 0 -1 4194560 0 0\n";
        assert_eq!(stat_flags(odd), Some(4_194_560));
        assert_eq!(stat_flags(b"7 (a) S 1"), None);
        let proc =
            rustix::fs::open("/proc", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(!is_kernel_thread(proc.as_fd(), std::process::id()));
        // Pid 2 is kthreadd where /proc shows the host's processes (not in
        // a container's pid namespace).
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|comm| comm == "kthreadd\n") {
            assert!(is_kernel_thread(proc.as_fd(), 2));
        }
    }
}
