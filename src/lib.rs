//! autofw: close a Linux server down to exactly the services it runs.
//!
//! Data flows gather → decide → render/apply:
//! - [`scan`] reads the kernel's socket tables and the process table (edges)
//!   and classifies what it finds (pure core) into a [`model::Scan`];
//! - [`propose`] turns a scan and the operator's choices into a ruleset model
//!   and renders it as nft or iptables-restore text (pure core);
//! - [`firewall`] is the only place that runs the tools that change rules
//!   (`nft -f`, `iptables-restore`, `ipset`), and holds apply, the rollback
//!   watchdog and the lock;
//! - [`persist`] writes the boot files, [`status`] compares rules and listeners.
//!
//! This file only wires the subcommands to those modules.

/// `eprintln!` that cannot end autofw: the line goes out in one write, and a
/// stderr that cannot take it (a pipe whose reader is gone, the terminal of
/// an SSH session that dropped) loses it, where `eprintln!` panics, which
/// `panic = "abort"` makes the end of a scan or an apply half-way.
macro_rules! say {
    () => {
        $crate::to_stderr("\n")
    };
    ($($arg:tt)*) => {
        $crate::to_stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` the same way: a prompt, or a line ended later.
macro_rules! say_part {
    ($($arg:tt)*) => {
        $crate::to_stderr(&format!($($arg)*))
    };
}

mod blocklist;
mod boot_hook;
mod cli;
mod clock;
mod droplog;
mod error;
mod firewall;
mod human;
mod input;
mod iptables_save;
mod model;
mod nfnetlink;
mod persist;
mod propose;
mod record;
mod scan;
mod services;
mod state;
mod status;
mod terminal;
mod trust;

/// What the integration tests use of the library besides the binary: the
/// proposal's model (checked against what the kernel admits) and the boot
/// unit's text. Everything else is crate-private, and `unreachable_pub` is
/// on (Cargo.toml), so the compiler reports what nothing uses.
pub use model::Proto;
pub use propose::gather::{gather, read_saved_scan};
pub use propose::ruleset::Arrival;
pub use propose::{Choices, PolicyOptions, build};
pub use record::Backend;

/// The systemd unit that loads `backend`'s saved rules at boot, as the
/// package ships it.
pub fn systemd_unit(backend: Backend) -> String {
    boot_hook::systemd_unit(backend.boot())
}

use clap::Parser;
use cli::{Cli, Command};

/// Write `text` to stderr in one piece, ignoring a stderr that cannot take
/// it ([`say!`]).
pub(crate) fn to_stderr(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Parse the command line, run it, print any error once, and map to an exit code.
pub fn main_with_exit_code() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: clap prints them to stdout.
        Err(err) if !err.use_stderr() => err.exit(),
        // clap quotes the argument it refuses as given: escaped here.
        Err(err) => {
            say_part!("{}", terminal::escape_listing(&err.render().to_string()));
            return u8::try_from(err.exit_code()).unwrap_or(error::exit::BAD_INPUT);
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(err) if error::is_broken_pipe(&err) => error::exit::OK,
        Err(err) => {
            // Messages quote input (files, names, other tools' words), each
            // escaped where it is quoted; this catches anything missed,
            // keeping the lines and tabs of a multi-line message.
            say!("autofw: {}", terminal::escape_listing(&format!("{err:#}")));
            error::exit_code_for(&err)
        }
    }
}

/// Dispatch one subcommand. Returns the exit code of a run that did not fail.
pub fn run(command: Command) -> anyhow::Result<u8> {
    match command {
        // What the host's other filters do is judged by firewall tools,
        // which scan and propose sit below: it is passed in.
        Command::Scan(args) => scan::run(&args.into(), &firewall::other_filters::legacy_notes),
        Command::Propose(args) => {
            propose::gather::run(&args.into(), &firewall::other_filters::proposal_warnings)
        }
        Command::Apply(args) => firewall::apply::run(&args.into()),
        Command::Confirm(args) => firewall::apply::decide::confirm(&args.state_dir),
        Command::Rollback(args) => firewall::apply::decide::rollback(&args.state_dir),
        Command::Watchdog(args) => firewall::apply::watchdog::run(&args.state.state_dir),
        Command::Restore(args) => firewall::apply::restore::run(&args.root),
        Command::Unpersist(args) => persist::unpersist(&args.root),
        Command::Disable(args) => firewall::apply::disable::run(&args.into()),
        Command::Status(args) => status::run(&args.into()),
        Command::Blocklist(cli::BlocklistCommand::Refresh(args)) => {
            blocklist::refresh::run(&args.into())
        }
        Command::Log(args) => droplog::run(&args.into()),
        Command::Completions(args) => cli::generate::completions(args.shell),
        Command::Generate(args) => cli::generate::run(&args),
        Command::Judge => firewall::other_filters::judge::run(),
        Command::Allow(args) => propose::policy_write::run(&args.allow()),
        Command::Block(args) => propose::policy_write::run(&args.block()),
        Command::Limit(args) => propose::policy_write::run(&args.into()),
        Command::Source(args) => propose::policy_write::run(&args.into()),
        Command::Forget(args) => propose::policy_write::run(&args.into()),
    }
}
