//! The walk over every `/proc/PID/fd` that finds which processes hold the
//! listening sockets ([`super::owners`] reads what it needs of each holder).
//!
//! The walk is nearly all of a scan's time (it is also nearly all of
//! `ss -tulnp`'s), so it is built for speed: one `statat` per process
//! relative to an open `/proc` (its descriptor count: a kernel thread
//! costs nothing more), one `openat` of those that hold descriptors,
//! `getdents64` into a reused buffer, one
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

use super::owners::{is_kernel_thread, parse_number, proc_path};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, RawDir, SeekFrom};
use rustix::io::Errno;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// At most this many threads walk: the work is kernel-bound and shares
/// locks on the process list, so more threads stop paying off quickly.
const MAX_THREADS: usize = 4;
/// Processes per thread: a thread costs about as much to start (and to
/// wake a sleeping CPU for) as walking some dozens of small processes, so
/// a host with fewer processes than this (the seed VPS has about 75) is
/// walked by the main thread alone.
const PROCESSES_PER_THREAD: usize = 128;
/// Processes a thread takes at a time: small, so that one slow process does
/// not leave the other threads idle.
const CHUNK: usize = 4;
/// A process with more descriptors than this is a large one: it is walked
/// after the others, in ranges of this many descriptor numbers shared out
/// between threads (the busy host's servers hold 5,000 each; walked whole,
/// one thread would still be at it when the others are done).
const RANGE: usize = 1024;
/// `getdents64` buffer per thread.
pub(super) const DIR_BUFFER: usize = 32 * 1024;

/// The (inode, pid) of every process in `pids` holding a socket in `wanted`
/// (sorted), and the processes that could not be read. First every
/// process but the large ones, then the large ones in ranges: each stage
/// shared out between as many threads as it is worth.
pub(super) fn holders(
    proc: BorrowedFd<'_>,
    pids: &[u32],
    wanted: &[u64],
) -> (Vec<(u64, u32)>, Vec<u32>) {
    // Linux 6.2 and later give the number of open descriptors as the size
    // of `/proc/PID/fd` (ours holds at least `/proc`); earlier ones say 0.
    let counts_descriptors =
        rustix::fs::statat(proc, c"self/fd", AtFlags::empty()).is_ok_and(|stat| stat.st_size > 0);
    let next = AtomicUsize::new(0);
    let mut found = in_threads(pids.len().div_ceil(PROCESSES_PER_THREAD), || {
        walk_share(proc, counts_descriptors, pids, &next, wanted)
    });
    let large: Vec<Large> = found.iter_mut().flat_map(|f| f.large.drain(..)).collect();
    if !large.is_empty() {
        let counts: Vec<usize> = large.iter().map(|l| l.count).collect();
        let pieces = pieces(&counts, RANGE);
        let next = AtomicUsize::new(0);
        found.extend(in_threads(pieces.len(), || {
            walk_pieces(&large, &pieces, &next, wanted)
        }));
    }
    merge(found)
}

/// Run `walk` on up to `useful` threads (at most the CPUs we may use, and
/// [`MAX_THREADS`]), the calling thread being one of them, and collect what
/// each found. One thread: no thread is started (nor the CPUs counted).
fn in_threads(useful: usize, walk: impl Fn() -> Found + Sync) -> Vec<Found> {
    let threads = if useful <= 1 {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .min(useful)
    };
    if threads == 1 {
        return vec![walk()];
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(&walk)).collect();
        let mut found = vec![walk()];
        found.extend(helpers.into_iter().filter_map(|helper| helper.join().ok()));
        found
    })
}

/// What one thread found: (inode, pid) for each wanted socket, the
/// processes it could not read, and the large processes it left for later
/// (their descriptor directories open).
#[derive(Default)]
struct Found {
    sockets: Vec<(u64, u32)>,
    unreadable: Vec<u32>,
    large: Vec<Large>,
}

/// A process with more than [`RANGE`] descriptors, walked in pieces.
struct Large {
    pid: u32,
    /// Its `/proc/PID/fd`, shared by the threads that walk its pieces (only
    /// through `readlinkat`: listing it moves the directory offset, so a
    /// piece that lists opens a directory of its own).
    dir: OwnedFd,
    /// How many descriptors it had open when looked at.
    count: usize,
}

/// One piece of the walk of the large processes (indexes into their list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// The descriptors numbered `start..end`.
    Numbers {
        process: usize,
        start: usize,
        end: usize,
    },
    /// Every descriptor numbered `from` or more: with `from` its count, the
    /// ones past the holes below it.
    Rest { process: usize, from: usize },
}

/// Cut the large processes (their descriptor counts) into pieces: `0..count`
/// in ranges of `range` numbers, then what lies beyond `count`. Together
/// they cover every descriptor number of every process, each once. The
/// ranges go round the processes (the first range of each, then the
/// second, ...): threads taking pieces in turn then walk different
/// processes, as two threads in one process's table contend for its locks
/// (`fget_task` takes the task lock: measured, the walk was no faster with
/// two threads than with one). The pieces beyond `count`, short, come last.
fn pieces(counts: &[usize], range: usize) -> Vec<Piece> {
    let range = range.max(1);
    let mut pieces = Vec::new();
    let rounds = counts.iter().max().map_or(0, |&most| most.div_ceil(range));
    for round in 0..rounds {
        let start = round * range;
        for (process, &count) in counts.iter().enumerate() {
            if start < count {
                pieces.push(Piece::Numbers {
                    process,
                    start,
                    end: (start + range).min(count),
                });
            }
        }
    }
    pieces.extend(
        counts
            .iter()
            .enumerate()
            .map(|(process, &count)| Piece::Rest {
                process,
                from: count,
            }),
    );
    pieces
}

/// What the threads found, together: every (inode, pid) any of them saw
/// (a socket held by several processes, or found in several pieces of one,
/// keeps every holder), and the unreadable processes, each once, by pid.
fn merge(found: Vec<Found>) -> (Vec<(u64, u32)>, Vec<u32>) {
    let mut sockets = Vec::new();
    let mut unreadable = Vec::new();
    for found in found {
        sockets.extend(found.sockets);
        unreadable.extend(found.unreadable);
    }
    sockets.sort_unstable();
    sockets.dedup();
    unreadable.sort_unstable();
    unreadable.dedup();
    (sockets, unreadable)
}

/// Take chunks of `pids` until none are left, and walk each process (the
/// large ones are only opened, and left for [`walk_pieces`]).
fn walk_share(
    proc: BorrowedFd<'_>,
    counts_descriptors: bool,
    pids: &[u32],
    next: &AtomicUsize,
    wanted: &[u64],
) -> Found {
    let mut found = Found::default();
    let mut dir_buffer = vec![MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    loop {
        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
        if start >= pids.len() {
            return found;
        }
        for &pid in &pids[start..(start + CHUNK).min(pids.len())] {
            let visit = walk_process(
                proc,
                counts_descriptors,
                pid,
                wanted,
                &mut dir_buffer,
                &mut found,
            );
            if visit == Visit::Unreadable {
                found.unreadable.push(pid);
            }
        }
    }
}

/// Take pieces of the large processes until none are left, and walk each.
fn walk_pieces(large: &[Large], pieces: &[Piece], next: &AtomicUsize, wanted: &[u64]) -> Found {
    let mut found = Found::default();
    let mut dir_buffer = vec![MaybeUninit::<u8>::uninit(); DIR_BUFFER];
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(&piece) = pieces.get(index) else {
            return found;
        };
        let (process, visit) = match piece {
            Piece::Numbers {
                process,
                start,
                end,
            } => {
                let Large { pid, dir, .. } = &large[process];
                let walk = Walk {
                    dir: dir.as_fd(),
                    shared: true,
                    pid: *pid,
                    wanted,
                };
                // What lies beyond the count is the `Rest` piece's.
                let visit = walk.numbers(start, end, &mut dir_buffer, &mut found.sockets);
                (process, visit)
            }
            Piece::Rest { process, from } => {
                let Large { pid, dir, .. } = &large[process];
                let walk = Walk {
                    dir: dir.as_fd(),
                    shared: true,
                    pid: *pid,
                    wanted,
                };
                (
                    process,
                    walk.listed_from(from, usize::MAX, &mut dir_buffer, &mut found.sockets),
                )
            }
        };
        if visit == Visit::Unreadable {
            found.unreadable.push(large[process].pid);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    Read,
    /// Exited while we looked: it holds nothing any more.
    Gone,
    Unreadable,
}

/// Walk one process's descriptors, adding (inode, pid) for wanted sockets;
/// a large one is only opened and counted, and left in `found.large`.
fn walk_process(
    proc: BorrowedFd<'_>,
    counts_descriptors: bool,
    pid: u32,
    wanted: &[u64],
    dir_buffer: &mut [MaybeUninit<u8>],
    found: &mut Found,
) -> Visit {
    let mut path = [0u8; 32];
    let Some(path) = proc_path(&mut path, pid, "fd") else {
        return Visit::Unreadable;
    };
    // The number of open descriptors (0: none, or not counted), asked for
    // before the directory is opened: a kernel thread then costs one
    // system call, not three (most processes of a small host are kernel
    // threads: 56 of the seed host's 70). `None` when the kernel would not
    // say (an LSM refusing the `stat`): listed. The count needs no right to
    // the process; opening the directory does, and says so.
    let count = match rustix::fs::statat(proc, path, AtFlags::empty()) {
        Ok(stat) => Some(usize::try_from(stat.st_size).unwrap_or(0)),
        Err(e) if visit_error(e) == Visit::Gone => return Visit::Gone,
        Err(_) => None,
    };
    if count == Some(0) && counts_descriptors {
        // No descriptors (a kernel thread, a zombie).
        return Visit::Read;
    }
    let dir: OwnedFd = match rustix::fs::openat(
        proc,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Refused: unreadable. Kernel threads are left out (they hold
        // nothing, yet a user who is not root is refused theirs); a process
        // the kernel counted descriptors of is none, so only the others
        // are looked at.
        Err(e) => {
            let holds_descriptors = counts_descriptors && count.is_some_and(|n| n > 0);
            return match visit_error(e) {
                Visit::Unreadable if !holds_descriptors && is_kernel_thread(proc, pid) => {
                    Visit::Read
                }
                visit => visit,
            };
        }
    };
    if let Some(count) = count
        && count > RANGE
    {
        found.large.push(Large { pid, dir, count });
        return Visit::Read;
    }
    let walk = Walk {
        dir: dir.as_fd(),
        shared: false,
        pid,
        wanted,
    };
    let count = match count {
        Some(count) if count > 0 => count,
        // A kernel that does not count, or would not say.
        _ => return walk.listed_from(0, usize::MAX, dir_buffer, &mut found.sockets),
    };
    walk.whole(count, dir_buffer, &mut found.sockets)
}

/// The walk of one process's descriptor directory.
struct Walk<'a> {
    dir: BorrowedFd<'a>,
    /// Other threads use `dir` too (a large process's pieces): a listing
    /// then opens a directory of its own, as listing moves the offset.
    shared: bool,
    pid: u32,
    wanted: &'a [u64],
}

/// What asking for one descriptor number found.
enum Descriptor {
    Open,
    /// No descriptor by that number (or the process is gone).
    Missing,
    Unreadable,
}

impl Walk<'_> {
    /// Look at descriptor `number` (`readlinkat` relative to the directory:
    /// no path walk from `/`, no allocation), and note it if it is a wanted
    /// socket.
    fn look(&self, name: &CStr, sockets: &mut Vec<(u64, u32)>) -> Descriptor {
        let mut link = [0u8; 64];
        match rustix::fs::readlinkat_raw(self.dir, name, &mut link[..]) {
            Ok(length) => {
                if let Some(inode) = socket_inode(&link[..length.min(link.len())])
                    && self.wanted.binary_search(&inode).is_ok()
                {
                    sockets.push((inode, self.pid));
                }
                Descriptor::Open
            }
            // Closed since, or never open.
            Err(Errno::NOENT) => Descriptor::Missing,
            Err(e) if visit_error(e) == Visit::Gone => Descriptor::Missing,
            Err(_) => Descriptor::Unreadable,
        }
    }

    /// A process's `count` descriptors, asked for by number from 0: a
    /// process's descriptors are mostly the lowest numbers (the kernel
    /// hands out the lowest free one), and asking for them saves listing
    /// the directory (`getdents64` costs about as much per descriptor as
    /// the `readlinkat` itself: it looks up each entry's dentry). At the
    /// first number missing (a missing one costs more than an open one: the
    /// kernel sets up a dentry to find nothing) the rest is listed, below
    /// the count and above it: the usual table is `0..n` dense, then a few
    /// high numbers (a shell's 255, a daemon's saved descriptors), so that
    /// listing holds a few entries.
    fn whole(
        &self,
        count: usize,
        dir_buffer: &mut [MaybeUninit<u8>],
        sockets: &mut Vec<(u64, u32)>,
    ) -> Visit {
        let mut name = [0u8; 24];
        for number in 0..count {
            match self.look(fd_name(&mut name, number), sockets) {
                Descriptor::Open => {}
                Descriptor::Unreadable => return Visit::Unreadable,
                Descriptor::Missing => {
                    return self.listed_from(number + 1, usize::MAX, dir_buffer, sockets);
                }
            }
        }
        // `0..count` all open: nothing lies above, unless the process
        // opened descriptors meanwhile and filled the holes below a high
        // one (a program starting up, a server accepting): then its count
        // moved, and the rest is listed.
        match rustix::fs::fstat(self.dir) {
            Ok(stat) if usize::try_from(stat.st_size).unwrap_or(0) == count => Visit::Read,
            _ => self.listed_from(count, usize::MAX, dir_buffer, sockets),
        }
    }

    /// The descriptors numbered `start..end` of a large process, asked for
    /// by number (as [`Walk::whole`]); where more numbers turn out missing
    /// than open (a sparse table, a process that exited), the rest of the
    /// range is listed instead. What lies beyond the count is another
    /// piece's.
    fn numbers(
        &self,
        start: usize,
        end: usize,
        dir_buffer: &mut [MaybeUninit<u8>],
        sockets: &mut Vec<(u64, u32)>,
    ) -> Visit {
        let mut missing = 0;
        let mut name = [0u8; 24];
        for number in start..end {
            match self.look(fd_name(&mut name, number), sockets) {
                Descriptor::Open => {}
                Descriptor::Unreadable => return Visit::Unreadable,
                Descriptor::Missing => {
                    missing += 1;
                    if missing > 16 && missing > (number - start) / 2 {
                        return self.listed_from(number + 1, end, dir_buffer, sockets);
                    }
                }
            }
        }
        Visit::Read
    }

    /// The descriptors numbered `from..end`, by listing the directory from
    /// there (the offset in `/proc/PID/fd` is the descriptor number plus 2,
    /// for `.` and `..`).
    fn listed_from(
        &self,
        from: usize,
        end: usize,
        dir_buffer: &mut [MaybeUninit<u8>],
        sockets: &mut Vec<(u64, u32)>,
    ) -> Visit {
        let own;
        let listing = if self.shared {
            own = match rustix::fs::openat(
                self.dir,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e) => return visit_error(e),
            };
            own.as_fd()
        } else {
            self.dir
        };
        let offset = u64::try_from(from).unwrap_or(u64::MAX).saturating_add(2);
        if from > 0
            && let Err(e) = rustix::fs::seek(listing, SeekFrom::Start(offset))
        {
            return visit_error(e);
        }
        // A batch of fewer entries than a full buffer holds was the last:
        // procfs fills the buffer until the descriptors run out, and an fd
        // entry takes at most 32 bytes (19 of header, a name of at most 10
        // digits and its NUL, aligned to 8). Stopping there saves the call
        // that would return nothing.
        let full_batch = dir_buffer.len() / 32 - 1;
        let mut entries = RawDir::new(listing, dir_buffer);
        let mut in_batch = 0;
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => return visit_error(e),
            };
            in_batch += 1;
            let name = entry.file_name();
            match parse_number(name.to_bytes()) {
                Some(number) if number as usize >= end => break,
                Some(_) => {
                    if let Descriptor::Unreadable = self.look(name, sockets) {
                        return Visit::Unreadable;
                    }
                }
                // `.` and `..`.
                None => {}
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
}

fn visit_error(e: Errno) -> Visit {
    match e {
        Errno::NOENT | Errno::SRCH => Visit::Gone,
        _ => Visit::Unreadable,
    }
}

/// `number` as a C string in `buffer`, without allocating.
fn fd_name(buffer: &mut [u8; 24], number: usize) -> &CStr {
    let mut at = buffer.len() - 1;
    buffer[at] = 0;
    let mut rest = number;
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    CStr::from_bytes_with_nul(&buffer[at..]).unwrap_or(c"")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::OwnerSource;
    use crate::scan::owners::find_owners;

    /// The owners as the walk finds them (never the kernel's iterator).
    fn walk_proc(wanted: &[u64]) -> anyhow::Result<crate::scan::core::Owners> {
        find_owners(wanted, OwnerSource::Walk)
    }

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

    /// Raise this process's descriptor limit to at least `want` (root may).
    fn raise_fd_limit(want: u64) {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current.is_some_and(|c| c < want) {
            let maximum = limit.maximum.map(|m| m.max(want));
            let raised = Rlimit {
                current: Some(want),
                maximum,
            };
            setrlimit(Resource::Nofile, raised).unwrap();
        }
    }

    /// `socket` moved to a descriptor numbered `at` or more, far above
    /// what this process has open (so only a listing past the count finds
    /// it), and inherited by children unless `private`.
    fn moved_up(socket: impl AsFd, at: i32, private: bool) -> OwnedFd {
        let mut high = rustix::io::fcntl_dupfd_cloexec(&socket, at).unwrap();
        if !private {
            rustix::io::dup3(&socket, &mut high, rustix::io::DupFlags::empty()).unwrap();
        }
        high
    }

    fn inode_of(socket: impl AsFd) -> u64 {
        use std::os::fd::AsRawFd;
        let link =
            std::fs::read_link(format!("/proc/self/fd/{}", socket.as_fd().as_raw_fd())).unwrap();
        socket_inode(link.as_os_str().as_encoded_bytes()).unwrap()
    }

    /// The descriptors are asked for by number up to the count of open
    /// ones; a socket held only above that count (a hole below it), here
    /// and in a child that inherited it, is still found, with both holders.
    /// (Walking `0..count` alone, as a first version did, finds neither.)
    #[test]
    fn walk_finds_sockets_above_the_count_and_every_holder() {
        raise_fd_limit(4096);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = inode_of(&listener);
        let inherited = moved_up(&listener, 3000, false);
        drop(listener);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Only the child keeps it from now on in this process's children;
        // ours is CLOEXEC again for the rest of the tests.
        let high = moved_up(&inherited, 3000, true);
        drop(inherited);
        let owners = walk_proc(&[inode]);
        child.kill().unwrap();
        child.wait().unwrap();
        let holders = &owners.unwrap().pids_by_inode[&inode];
        assert!(holders.contains(&std::process::id()), "{holders:?}");
        assert!(holders.contains(&child.id()), "{holders:?}");
        drop(high);
    }

    /// The two ways through one table, on our own: listing it (what a
    /// kernel before 6.2, which does not count descriptors, gets for every
    /// process), from an offset and up to a bound; and asking by number,
    /// which in a range of mostly missing numbers turns to listing the
    /// rest of it.
    #[test]
    fn listing_and_asking_by_number_find_the_same_socket() {
        raise_fd_limit(8192);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = inode_of(&listener);
        let high = moved_up(&listener, 7000, true);
        drop(listener);
        use std::os::fd::AsRawFd;
        let at = usize::try_from(high.as_raw_fd()).unwrap();
        let dir = rustix::fs::open(
            "/proc/self/fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let me = std::process::id();
        let wanted = [inode];
        for shared in [false, true] {
            let walk = Walk {
                dir: dir.as_fd(),
                shared,
                pid: me,
                wanted: &wanted,
            };
            let mut buffer = vec![MaybeUninit::<u8>::uninit(); DIR_BUFFER];
            let mut sockets = Vec::new();
            let listed = |from, end, sockets: &mut Vec<_>, buffer: &mut Vec<_>| {
                sockets.clear();
                walk.listed_from(from, end, buffer, sockets)
            };
            assert_eq!(
                listed(0, usize::MAX, &mut sockets, &mut buffer),
                Visit::Read
            );
            assert_eq!(sockets, [(inode, me)]);
            assert_eq!(listed(at, at + 1, &mut sockets, &mut buffer), Visit::Read);
            assert_eq!(sockets, [(inode, me)]);
            assert_eq!(
                listed(at + 1, usize::MAX, &mut sockets, &mut buffer),
                Visit::Read
            );
            assert!(sockets.is_empty());
            assert_eq!(listed(0, at, &mut sockets, &mut buffer), Visit::Read);
            assert!(sockets.is_empty());
            // 6000..7100 is nearly all holes: asked for by number until
            // they outnumber the open ones, then listed.
            let mut sockets = Vec::new();
            let visit = walk.numbers(6000, 7100, &mut buffer, &mut sockets);
            assert_eq!(visit, Visit::Read);
            assert_eq!(sockets, [(inode, me)]);
            // By number from 0, the first hole turns to listing the rest.
            sockets.clear();
            assert_eq!(walk.whole(at + 1, &mut buffer, &mut sockets), Visit::Read);
            assert_eq!(sockets, [(inode, me)]);
        }
        drop(high);
    }

    /// The pieces of the large processes cover each one's numbers below
    /// its count exactly once, then everything above it; neighbouring
    /// pieces belong to different processes (two threads in one table
    /// contend for its locks).
    #[test]
    fn pieces_cover_every_number_once_round_the_processes() {
        let counts = [1025, 3000, 2048, 1];
        let pieces = pieces(&counts, 1024);
        let mut seen: Vec<Vec<u32>> = counts.iter().map(|&c| vec![0; c]).collect();
        let mut rests = vec![None; counts.len()];
        for piece in &pieces {
            match *piece {
                Piece::Numbers {
                    process,
                    start,
                    end,
                } => {
                    assert!(start < end && end - start <= 1024, "{piece:?}");
                    for seen in &mut seen[process][start..end] {
                        *seen += 1;
                    }
                }
                Piece::Rest { process, from } => {
                    assert_eq!(rests[process].replace(from), None, "{piece:?}");
                }
            }
        }
        for (process, numbers) in seen.iter().enumerate() {
            assert!(numbers.iter().all(|&n| n == 1), "process {process}");
            assert_eq!(rests[process], Some(counts[process]));
        }
        let process_of = |piece: &Piece| match *piece {
            Piece::Numbers { process, .. } | Piece::Rest { process, .. } => process,
        };
        assert_ne!(process_of(&pieces[0]), process_of(&pieces[1]));
        assert!(matches!(pieces.last(), Some(Piece::Rest { .. })));
        assert!(super::pieces(&[], 1024).is_empty());
    }

    /// Every holder any thread found is kept (a socket shared by processes
    /// walked on different threads, or found in two pieces of one);
    /// unreadable processes are named once.
    #[test]
    fn merge_keeps_every_holder() {
        let found = |sockets: &[(u64, u32)], unreadable: &[u32]| Found {
            sockets: sockets.to_vec(),
            unreadable: unreadable.to_vec(),
            large: Vec::new(),
        };
        let (sockets, unreadable) = merge(vec![
            found(&[(7, 100), (9, 100)], &[5, 3]),
            found(&[(7, 200), (7, 100)], &[5]),
            found(&[], &[]),
        ]);
        assert_eq!(sockets, [(7, 100), (7, 200), (9, 100)]);
        assert_eq!(unreadable, [3, 5]);
    }

    #[test]
    fn descriptor_names() {
        let mut buffer = [0u8; 24];
        assert_eq!(fd_name(&mut buffer, 0), c"0");
        assert_eq!(fd_name(&mut buffer, 1024), c"1024");
        assert_eq!(fd_name(&mut buffer, usize::MAX), c"18446744073709551615");
    }

    /// A process with more descriptors than one `getdents64` batch holds
    /// (32 KiB: about 1,300 entries) is read to the end: the socket past
    /// the first batch is found.
    #[test]
    fn walk_reads_every_batch_of_a_large_fd_table() {
        raise_fd_limit(8192);
        let files: Vec<std::fs::File> = (0..3000)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        assert!(listener.as_raw_fd() > 3000);
        let inode = inode_of(&listener);
        // A large process (more than `RANGE` descriptors): walked in
        // pieces, the socket in one of the later ranges.
        let owners = walk_proc(&[inode]).unwrap();
        assert!(owners.pids_by_inode[&inode].contains(&std::process::id()));
        // Held only far above the count: found by the piece past it.
        let high = moved_up(&listener, 6000, true);
        drop(listener);
        let owners = walk_proc(&[inode]).unwrap();
        assert!(owners.pids_by_inode[&inode].contains(&std::process::id()));
        drop(files);
        drop(high);
    }
}
