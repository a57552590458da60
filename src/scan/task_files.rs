//! Which processes hold which sockets, from the kernel's own `task_file`
//! iterator (a BPF iterator, Linux 5.8 and later) instead of one
//! `readlinkat` per descriptor under `/proc`: on a busy host the walk
//! costs about 1.7 µs of kernel time per descriptor (the dentry of each
//! `/proc/PID/fd/N`, the `socket:[N]` text), the iterator a small
//! fraction of that, for a fixed cost of about 2 ms (reading the kernel's
//! BTF, loading and verifying the program). [`super::owners`] picks it on
//! hosts with many processes, and walks `/proc` when it cannot be used.
//!
//! The program (25 instructions, written out below: there is no BPF
//! compiler in this build) runs once per open file of every process and
//! writes 16 bytes for it: the inode number if it is a socket (`S_IFSOCK`
//! in the inode's mode), else 0; the process id (the thread group's: the
//! iterator visits a process's descriptor table once, not once per
//! thread); the descriptor number. Every file, so that the caller knows
//! which processes it saw. It only reads kernel memory through BTF-typed
//! pointers, which the verifier checks; it changes nothing, is attached
//! nowhere, and is gone when its descriptors close at the end of the scan.
//!
//! Not used (and `/proc` walked instead): outside the initial pid namespace
//! (the program reads the kernel's own pid, which a container's `/proc`
//! numbers differently), without `CAP_BPF`/`CAP_PERFMON` (not root), on a
//! kernel without BTF or the iterator, or under lockdown.

use super::btf::{self, IteratorFacts};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `bpf(2)` commands, program and attach types (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ITER_CREATE: libc::c_long = 33;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_ITER: u32 = 28;
/// Helper `bpf_seq_write(seq, data, len)`.
const HELPER_SEQ_WRITE: i32 = 127;
/// One record: inode (u64), pid (u32), descriptor (u32).
const RECORD: usize = 16;

/// What the iterator saw.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// `(inode, pid)` for every socket in `wanted` held by a process, each
    /// pair once, sorted.
    pub(super) sockets: Vec<(u64, u32)>,
    /// Every process with an open file, sorted: a process of `/proc`'s
    /// list that is not here either holds nothing or was kept from the
    /// iterator as from the walk (the caller asks `/proc` which).
    pub(super) processes: Vec<u32>,
}

/// The holders of the sockets in `wanted` (sorted); or why the iterator
/// cannot be used here.
pub(super) fn socket_holders(wanted: &[u64]) -> Result<Seen, String> {
    // Before the BTF is read (2 ms): a user's scan on a large host would
    // pay it on every run only to be refused.
    if !rustix::process::geteuid().is_root() {
        return Err("the task_file iterator needs root: CAP_BPF and CAP_PERFMON".into());
    }
    if !in_initial_pid_namespace()? {
        return Err("scan runs in a pid namespace of its own".into());
    }
    let facts = read_facts()?;
    let records = run_iterator(&program(&facts), facts.iterator_function)?;
    let mut seen = Seen::default();
    for record in records.chunks_exact(RECORD) {
        let inode = u64::from_le_bytes(record[0..8].try_into().unwrap_or_default());
        let pid = u32::from_le_bytes(record[8..12].try_into().unwrap_or_default());
        if seen.processes.last() != Some(&pid) {
            seen.processes.push(pid);
        }
        if inode != 0 && wanted.binary_search(&inode).is_ok() {
            seen.sockets.push((inode, pid));
        }
    }
    seen.sockets.sort_unstable();
    seen.sockets.dedup();
    seen.processes.sort_unstable();
    seen.processes.dedup();
    Ok(seen)
}

/// The kernel gives the initial pid namespace a fixed inode number
/// (`PROC_PID_INIT_INO`); `NSpid:` in `/proc/self/status` would not do, as
/// it counts namespaces only from the one that mounted `/proc`, which in a
/// container is the container's own.
fn in_initial_pid_namespace() -> Result<bool, String> {
    const PROC_PID_INIT_INO: u64 = 0xefff_fffc;
    let stat = rustix::fs::stat("/proc/self/ns/pid")
        .map_err(|e| format!("cannot tell which pid namespace scan runs in: {e}"))?;
    Ok(stat.st_ino == PROC_PID_INIT_INO)
}

/// The kernel's BTF, mapped (Linux 6.15 and later) or read.
fn read_facts() -> Result<IteratorFacts, String> {
    const PATH: &str = "/sys/kernel/btf/vmlinux";
    let mut file = File::open(PATH).map_err(|e| format!("cannot open {PATH}: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat {PATH}: {e}"))?
        .len() as usize;
    // SAFETY: a private read-only mapping of a file the kernel never
    // changes while it runs; the slice does not outlive the mapping.
    // Populated at once: 1,300 page faults one by one cost more than the
    // pass over the types (measured 1.7 against 2.6 ms and up).
    let mapped = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::POPULATE,
            &file,
            0,
        )
    };
    match mapped {
        Ok(address) if len > 0 => {
            let blob = unsafe { std::slice::from_raw_parts(address.cast::<u8>(), len) };
            let facts = btf::iterator_facts(blob);
            // SAFETY: the mapping made above, no longer borrowed.
            let _ = unsafe { rustix::mm::munmap(address, len) };
            facts
        }
        _ => {
            let mut blob = Vec::with_capacity(len);
            file.read_to_end(&mut blob)
                .map_err(|e| format!("cannot read {PATH}: {e}"))?;
            btf::iterator_facts(&blob)
        }
    }
    .map_err(|e| format!("{PATH}: {e}"))
}

/// One instruction: opcode, destination and source registers, offset,
/// immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst | (src << 4)) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// The program, for this kernel's field offsets. Its context is
/// `struct bpf_iter__task_file { meta; task; u32 fd; file; }` (pointers at
/// 0, 8, 24; fd at 16), a layout the kernel keeps stable. Every open file
/// gives a record (so the caller knows which processes it saw); the inode
/// is 0 unless the file is a socket.
fn program(facts: &IteratorFacts) -> Vec<u64> {
    // ldx: 0x79 u64, 0x69 u16, 0x61 u32; stx: 0x7b u64, 0x63 u32;
    // 0xbf mov reg, 0xb7 mov imm, 0x07 add imm, 0x57 and imm; 0x15 jeq imm,
    // 0x55 jne imm; 0x85 call, 0x95 exit.
    const EXIT: i16 = 23;
    const STORE: i16 = 12;
    let jump = |from: i16, to: i16| to - from - 1;
    let field = |offset: u32| offset as i16;
    vec![
        insn(0xbf, 6, 1, 0, 0),                         // 0: r6 = ctx
        insn(0x79, 7, 6, 24, 0),                        // r7 = ctx->file
        insn(0x15, 7, 0, jump(2, EXIT), 0),             // no file: done
        insn(0x79, 9, 6, 8, 0),                         // r9 = ctx->task
        insn(0x15, 9, 0, jump(4, EXIT), 0),             // no task: done
        insn(0xb7, 2, 0, 0, 0),                         // r2 = 0 (no socket)
        insn(0x79, 8, 7, field(facts.file_inode), 0),   // r8 = file->f_inode
        insn(0x15, 8, 0, jump(7, STORE), 0),            // no inode: store
        insn(0x69, 1, 8, field(facts.inode_mode), 0),   // r1 = inode->i_mode
        insn(0x57, 1, 0, 0, 0o170000),                  // r1 &= S_IFMT
        insn(0x55, 1, 0, jump(10, STORE), 0o140000),    // not S_IFSOCK: store
        insn(0x79, 2, 8, field(facts.inode_number), 0), // r2 = inode->i_ino
        insn(0x7b, 10, 2, -16, 0),                      // 12: record[0..8] = r2
        insn(0x61, 1, 9, field(facts.task_tgid), 0),    // r1 = task->tgid
        insn(0x63, 10, 1, -8, 0),                       // record[8..12] = pid
        insn(0x61, 1, 6, 16, 0),                        // r1 = ctx->fd
        insn(0x63, 10, 1, -4, 0),                       // record[12..16] = fd
        insn(0x79, 1, 6, 0, 0),                         // r1 = ctx->meta
        insn(0x79, 1, 1, 0, 0),                         // r1 = meta->seq
        insn(0xbf, 2, 10, 0, 0),                        // r2 = the record
        insn(0x07, 2, 0, 0, -16),                       //
        insn(0xb7, 3, 0, 0, RECORD as i32),             // r3 = its length
        insn(0x85, 0, 0, 0, HELPER_SEQ_WRITE),          // bpf_seq_write
        insn(0xb7, 0, 0, 0, 0),                         // 23: return 0
        insn(0x95, 0, 0, 0, 0),
    ]
}

fn bpf(command: libc::c_long, attr: &mut [u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a `union bpf_attr` prefix of its own length, and
    // every pointer in it points into memory that outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, command, attr.as_mut_ptr(), attr.len()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn put(attr: &mut [u8], at: usize, value: &[u8]) {
    attr[at..at + value.len()].copy_from_slice(value);
}

/// Load `program` as a `task_file` iterator, run it once and return what
/// it wrote.
fn run_iterator(program: &[u64], iterator_function: u32) -> Result<Vec<u8>, String> {
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    // union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
    // log_level, log_size, log_buf, ..., prog_name (48), expected_attach_type (68),
    // attach_btf_id (108).
    let mut attr = [0u8; 128];
    put(&mut attr, 0, &BPF_PROG_TYPE_TRACING.to_le_bytes());
    put(&mut attr, 4, &(program.len() as u32).to_le_bytes());
    put(&mut attr, 8, &(program.as_ptr() as u64).to_le_bytes());
    put(&mut attr, 16, &(license.as_ptr() as u64).to_le_bytes());
    put(&mut attr, 24, &1u32.to_le_bytes());
    put(&mut attr, 28, &(log.len() as u32).to_le_bytes());
    put(&mut attr, 32, &(log.as_mut_ptr() as u64).to_le_bytes());
    // prog_name (48, 16 bytes): what `bpftool prog show` lists while the
    // scan runs, so an administrator who sees it knows whose it is.
    put(&mut attr, 48, b"autofw_scan\0");
    put(&mut attr, 68, &BPF_TRACE_ITER.to_le_bytes());
    put(&mut attr, 108, &iterator_function.to_le_bytes());
    let loaded = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let said = log.iter().position(|&c| c == 0).unwrap_or(0);
        let said = String::from_utf8_lossy(&log[..said]);
        let needs = match e.raw_os_error() {
            Some(libc::EPERM) => " (loading it needs root: CAP_BPF and CAP_PERFMON)",
            _ => "",
        };
        match said.lines().rfind(|line| !line.trim().is_empty()) {
            Some(last) => format!(
                "the kernel refused the task_file iterator program: {e}{needs}; its verifier said: {}",
                last.trim()
            ),
            None => format!("the kernel refused the task_file iterator program: {e}{needs}"),
        }
    })?;
    // BPF_LINK_CREATE: prog_fd, target_fd, attach_type.
    let mut attr = [0u8; 64];
    put(&mut attr, 0, &(loaded.as_raw_fd() as u32).to_le_bytes());
    put(&mut attr, 8, &BPF_TRACE_ITER.to_le_bytes());
    let link = bpf(BPF_LINK_CREATE, &mut attr)
        .map_err(|e| format!("cannot link the task_file iterator: {e}"))?;
    // BPF_ITER_CREATE: link_fd.
    let mut attr = [0u8; 16];
    put(&mut attr, 0, &(link.as_raw_fd() as u32).to_le_bytes());
    let iterator = bpf(BPF_ITER_CREATE, &mut attr)
        .map_err(|e| format!("cannot start the task_file iterator: {e}"))?;
    let mut records = Vec::with_capacity(1 << 16);
    File::from(iterator)
        .read_to_end(&mut records)
        .map_err(|e| format!("cannot read the task_file iterator: {e}"))?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this kernel (the tests run as root, as CI does): a socket we
    /// hold, and a child holds too (as its stdin), is found with both
    /// pids; a pipe is not a socket. Fails if the program reads the wrong
    /// field or the wrong pid.
    #[test]
    fn finds_the_holders_of_a_socket_on_this_kernel() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        let (pipe, _writer) = rustix::pipe::pipe().unwrap();
        let pipe_inode = rustix::fs::fstat(&pipe).unwrap().st_ino;
        let shared = OwnedFd::from(listener.try_clone().unwrap());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::from(shared))
            .spawn()
            .unwrap();
        let seen = socket_holders(&[inode, pipe_inode]);
        let _ = child.kill();
        let _ = child.wait();
        let seen = seen.unwrap();
        let mut expected = vec![(inode, std::process::id()), (inode, child.id())];
        expected.sort_unstable();
        assert_eq!(seen.sockets, expected);
        assert!(seen.processes.contains(&std::process::id()));
        assert!(seen.processes.contains(&child.id()));
    }

    #[test]
    fn the_program_jumps_to_its_exit() {
        let facts = IteratorFacts {
            iterator_function: 1,
            file_inode: 32,
            inode_mode: 0,
            inode_number: 64,
            task_tgid: 1268,
        };
        let program = program(&facts);
        assert_eq!(program.len(), 25);
        // Each conditional jump lands on the store (12) or the exit (23).
        let targets: Vec<i16> = program
            .iter()
            .enumerate()
            .filter(|(_, insn)| matches!(*insn & 0xff, 0x15 | 0x55))
            .map(|(at, insn)| at as i16 + (insn >> 16) as u16 as i16 + 1)
            .collect();
        assert_eq!(targets, [23, 23, 12, 12]);
        assert_eq!(program[12] & 0xff, 0x7b);
        assert_eq!(program[23], insn(0xb7, 0, 0, 0, 0));
    }
}
