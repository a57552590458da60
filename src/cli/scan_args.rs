//! The clap types of `autofw scan`: where the socket tables and their
//! holders are read from.

use super::*;

/// Where socket tables are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SocketSource {
    /// netlink sock_diag, filtered to listeners in the kernel; /proc if that fails.
    #[default]
    Auto,
    /// netlink sock_diag only.
    Netlink,
    /// /proc/net/{tcp,tcp6,udp,udp6} only.
    Proc,
}

/// How the processes holding each listening socket are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OwnerSourceArg {
    /// The kernel's task_file iterator (a read-only BPF program, loaded for
    /// the scan only) on a host with 200 processes or more, where it is
    /// several times faster; the /proc walk otherwise, or where the
    /// iterator cannot run (not root, a container, no BTF).
    #[default]
    Auto,
    /// Walk /proc/PID/fd only, as `ss -p` does; loads no BPF program.
    Proc,
    /// The iterator only: an error where it cannot run.
    Bpf,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Show every listener, loopback-only ones included.
    #[arg(long)]
    pub all: bool,
    /// Print JSON for scripts (schema in /usr/share/doc/autofw/json-schema.md).
    #[arg(long)]
    pub json: bool,
    /// Where to read the socket tables from.
    #[arg(long, value_enum, default_value_t = SocketSource::Auto)]
    pub source: SocketSource,
    /// How the process holding each listener is found.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = OwnerSourceArg::Auto)]
    pub owners_from: OwnerSourceArg,
    /// Read saved tables (tcp, tcp6, udp, udp6, owners) from DIR instead of
    /// this host: for tests and for drafting from another machine's /proc/net
    /// (format in /usr/share/doc/autofw/scan.md).
    #[arg(long, value_name = "DIR", hide = true)]
    pub fixture: Option<PathBuf>,
}
