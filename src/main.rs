//! Entry point: parse arguments, run, turn the outcome into an exit code.
//! Everything else lives in the library so that tests can reach it.
//!
//! `no_main`: this is C's `main`, so std's runtime start does not run. Of
//! what it does, autofw keeps the two parts it relies on ([`start`]) and
//! leaves out the one that costs: the main thread's stack-overflow guard,
//! for which glibc reads and parses all of `/proc/self/maps` (a tenth of a
//! millisecond, 3% of a small host's scan: docs/scan.md). A stack overflow
//! is then reported by the kernel as SIGSEGV rather than by std's message;
//! both end the process. `std::env::args` needs no runtime on glibc (std
//! reads them from `.init_array`), and `std::process::exit` flushes stdout
//! as std's return from `main` would.
#![no_main]

use std::ffi::{c_char, c_int};

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    start();
    std::process::exit(i32::from(autofw::main_with_exit_code()))
}

/// What std's start does that autofw relies on:
/// - stdin, stdout and stderr are open (on `/dev/null` where closed), so
///   that no file autofw opens (a state file, a saved ruleset) takes
///   descriptor 1 and receives what is printed;
/// - SIGPIPE is ignored, so that a closed pipe (`autofw scan | head`) is
///   an error autofw sees (`BrokenPipe`, a quiet exit 0) and not a kill.
///   Child processes get the default back (std's `Command` resets it).
fn start() {
    let mut standard = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfd structures, whose
    // length it is given; open and signal take valid arguments.
    unsafe {
        let polled = libc::poll(standard.as_mut_ptr(), 3, 0);
        for entry in &standard {
            // A poll that failed (no memory) checks each one by fcntl.
            let closed = if polled < 0 {
                libc::fcntl(entry.fd, libc::F_GETFD) < 0
            } else {
                entry.revents & libc::POLLNVAL != 0
            };
            if closed && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != entry.fd {
                // As std does: running without one is not safe.
                libc::abort();
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

// std's unwinder (`_Unwind_Backtrace` for a panic's backtrace) from GCC's
// static `libgcc_eh.a`, as `-static-libgcc` links it, instead of
// `libgcc_s.so.1`: one library fewer for the dynamic loader to map and
// resolve 149 symbols against, and no `__cpu_indicator_init` (CPUID, which
// traps to the hypervisor on a VM) at every start: 2-3% of a small host's
// scan (docs/scan.md). Named here, in the binary's crate, so that the
// linker sees it before std's `-lgcc_s`, which `--as-needed` then drops.
// glibc stays shared: its security updates must reach autofw.
#[link(name = "gcc_eh", kind = "static")]
unsafe extern "C" {}
