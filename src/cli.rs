//! The command line, as clap derive types. Doc comments here are `--help`.
//!
//! Arguments in two stages, as ripgrep does: this file holds what the user
//! typed, [`convert`] turns it into each module's own options type. Nothing
//! below `lib.rs` knows clap exists. Validating those options, and anything
//! that touches the system (a policy file, the live host), happens later.

use crate::{droplog, firewall, propose, record, scan, state, status};
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use exit_codes::*;
use std::path::PathBuf;

mod convert;
mod exit_codes;
mod scan_args;
pub(crate) use scan_args::*;
pub(crate) mod generate;
pub(crate) mod man;

/// Close a Linux server down to exactly the services it runs.
///
/// The usual flow: `autofw scan` to see what listens, `autofw propose` to
/// review the ruleset, `autofw apply --confirm` to load it with an automatic
/// rollback, `autofw confirm` from a second SSH login to keep it.
#[derive(Debug, Parser)]
#[command(name = "autofw", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. Each one's arguments are built only when it is the one
/// given (`defer`): a scan does not build apply's fifty arguments (6–8% of
/// a small host's scan, docs/scan.md). What shows every subcommand whole
/// builds the command first (`man::pages`), or lets clap_complete do it.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// List listening sockets, who owns them, and who can reach them
    /// (replaces `netstat -tunlp`).
    ///
    /// Loopback-only listeners are left out unless `--all` is given. Run as
    /// root to see every socket's owner: without root, other users'
    /// processes cannot be read, so their sockets are listed without owners
    /// (and named by port), and stderr says how many processes were unreadable.
    #[command(after_help = EXIT_CODES)]
    Scan(ScanArgs),
    /// Draft a default-drop whitelist ruleset for the services found
    ///
    /// Prints the ruleset for review and loads nothing. Loopback-only
    /// listeners and risky ones (a public database or cache) stay closed;
    /// the output says what was left closed and how to open it.
    ///
    /// Examples:
    ///   autofw propose > rules.nft && nft -c -f rules.nft
    ///   autofw propose --allow mysql --block ftp --policy /etc/autofw/policy.toml
    ///   autofw propose --from other-host.json --format iptables --ipset sets.ipset
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Propose(ProposeArgs),
    /// Show the plan and, with --confirm, load it with an automatic rollback
    ///
    /// Without --confirm: a dry run that prints the proposal and its diff
    /// against the live rules, and changes nothing.
    /// With --confirm: saves the live ruleset, asks `Apply these rules?`,
    /// loads the new rules in one transaction (only autofw's own table or
    /// chains: Docker's, libvirt's and fail2ban's rules are left alone), and
    /// opens a rollback window of --timeout seconds. Unless you run
    /// `autofw confirm` from a NEW SSH login (which proves new connections
    /// still get in), or type `yes` on the terminal once the rules are
    /// loaded, the old ruleset comes back by itself, even if this process or
    /// your session dies. Only an answer typed on the terminal after the load
    /// keeps the rules: anything typed earlier is discarded, and a `yes` on
    /// standard input (`yes |`, a script) never keeps them; without a
    /// terminal only `autofw confirm` does; `no`, or Ctrl-C, while it waits
    /// rolls back at once. A window that did not survive (a
    /// restart, a killed watchdog, its rules no longer loaded) cannot be
    /// confirmed. From an SSH session, a ruleset that would not let that
    /// session's port in is refused (--force).
    ///
    /// Examples:
    ///   autofw apply                                  # dry run
    ///   autofw apply --confirm --persist              # then, from a new login: autofw confirm
    ///   autofw apply --confirm --allow https --timeout 120
    ///   autofw apply --confirm --backend iptables     # hosts without nftables
    ///   autofw apply --confirm --no-wait --json       # automation: load, arm, return
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Apply(ApplyArgs),
    /// Keep the rules loaded by the last `apply` (run it from a new SSH login).
    #[command(after_help = CONFIRM_EXIT_CODES)]
    Confirm(StateArgs),
    /// Restore the ruleset saved before the last `apply`.
    #[command(after_help = ROLLBACK_EXIT_CODES)]
    Rollback(StateArgs),
    /// Load the persisted ruleset now (the boot hook loads the same files
    /// with nft or iptables-restore, without autofw).
    #[command(after_help = RESTORE_EXIT_CODES)]
    Restore(RootArgs),
    /// Remove what `apply --persist` installed, and nothing else.
    #[command(after_help = UNPERSIST_EXIT_CODES)]
    Unpersist(RootArgs),
    /// Stop filtering: remove autofw's rules and boot hook (like `ufw disable`)
    ///
    /// Removes autofw's rules from both backends (nft's `table inet autofw`;
    /// iptables' AUTOFW-* chains, their jumps, the policies autofw set, its
    /// ipsets) and what `apply --persist` installed. Keeps the policy file
    /// and the state directory: `autofw apply --confirm` brings the rules
    /// back. Says which listeners are unfiltered now; `autofw status`
    /// reports the host as disabled until the next apply.
    #[command(after_help = DISABLE_EXIT_CODES, verbatim_doc_comment)]
    Disable(DisableArgs),
    /// Show what autofw applied and any drift between listeners and rules.
    ///
    /// Drift is what changed since the rules were applied: a listener beyond
    /// loopback that they do not open (a service that silently does not
    /// work), an opened port nothing listens on any more (a stale hole), a
    /// database or cache on an opened port, autofw's rules rolled back,
    /// flushed or edited by hand, or a rollback window nothing guards.
    /// Status only reads: it changes neither the firewall nor the state.
    /// It needs root: the state directory and the live rules are root's.
    ///
    /// Exit status 0: no drift; 1: drift found (each finding is printed with
    /// its fix), also when nothing was ever applied. For cron or a monitor:
    ///   autofw status --json > /run/autofw-status.json || alert
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Status(StatusArgs),
    /// Open services or ports in the policy file, like `ufw allow`
    ///
    /// Adds each SPEC (a name, `https`, or `PORT[/tcp|udp]`; several, or a
    /// comma list) to `allow` in /etc/autofw/policy.toml, taking it off
    /// `block`. The file is created when missing and edited in place: your
    /// comments, order and spacing stay. The result is checked before it is
    /// written; nothing is loaded until `autofw apply --confirm`. Prints
    /// what changed in the file and what that would change in the firewall.
    ///
    /// Examples:
    ///   autofw allow https
    ///   autofw allow 8443/tcp,9100/tcp
    ///   autofw allow https --policy ./policy.toml
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Allow(EditSpecsArgs),
    /// Keep services or ports closed in the policy file, like `ufw deny`
    ///
    /// Adds each SPEC to `block` in /etc/autofw/policy.toml (taking it off
    /// `allow`): closed even while something listens there. Edited in
    /// place, checked, nothing loaded until `autofw apply --confirm`.
    ///
    /// Examples:
    ///   autofw block ftp
    ///   autofw block 11211,6379/tcp
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Block(EditSpecsArgs),
    /// Rate-limit new connections to a service in the policy file, like
    /// `ufw limit`
    ///
    /// Sets `[service.SPEC] limit` in /etc/autofw/policy.toml: `true` (a
    /// burst of 5, then 10 a minute per source address), or RATE
    /// (`N/second|minute|hour`). Nothing loaded until `autofw apply --confirm`.
    ///
    /// Examples:
    ///   autofw limit ssh
    ///   autofw limit 53/udp=20/second
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Limit(LimitArgs),
    /// Let only these networks reach a service, in the policy file
    ///
    /// Adds the networks to `[service.SPEC] sources` in
    /// /etc/autofw/policy.toml: only they may connect (a family with none
    /// listed is closed for it). `autofw forget SPEC=NET` takes one off.
    /// Nothing loaded until `autofw apply --confirm`.
    ///
    /// Examples:
    ///   autofw source ssh=192.0.2.0/24,2001:db8:1::/48
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Source(SourceArgs),
    /// Remove what the policy file says of a service or port
    ///
    /// Takes SPEC off `allow` and `block` and removes its `[service.SPEC]`
    /// section; with `=NET[,NET]`, only those networks from its `sources`.
    /// Comments elsewhere stay. Nothing loaded until `autofw apply --confirm`.
    ///
    /// Examples:
    ///   autofw forget 8443/tcp
    ///   autofw forget ssh=198.51.100.0/24
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Forget(ForgetArgs),
    /// Manage the applied blocklist: `autofw blocklist refresh`.
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Summarise what the firewall dropped recently: top ports and sources
    ///
    /// Reads the kernel log lines of autofw's drop rule (prefix `autofw
    /// drop:`) from `journalctl -k` (or /dev/kmsg without journald, or a
    /// saved log given with --file), and counts them by destination port and
    /// by source address: after a change that broke something, the port at
    /// the top is usually the service that is now dropped. The rules log at
    /// most 5 drops a minute (burst 10), so the counts are a sample.
    ///
    /// Examples:
    ///   autofw log
    ///   autofw log --since -24h --top 20
    ///   autofw log --file /var/log/kern.log
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Log(LogArgs),
    /// Print a shell completion script (the Debian package installs them)
    ///
    /// For installs with `cargo install`:
    ///   autofw completions bash > /etc/bash_completion.d/autofw
    ///   autofw completions zsh > /usr/local/share/zsh/site-functions/_autofw
    ///   autofw completions fish > ~/.config/fish/completions/autofw.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),
    /// Internal: write the files the Debian package ships (man pages,
    /// completions, systemd units) into DIR.
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Internal: the detached rollback watchdog started by `apply`.
    #[command(hide = true)]
    Watchdog(WatchdogArgs),
    /// Internal: judge rules in a scratch network namespace (run by autofw
    /// itself under `unshare --net`; reads its plan on stdin).
    #[command(hide = true)]
    Judge,
}

// What every policy-editing command takes. (A `//` comment: a doc comment
// on a flattened struct would become the `about` of every subcommand that
// flattens it, the subcommands' arguments being built deferred.)
#[derive(Debug, Args, Clone)]
pub struct EditArgs {
    /// Edit this policy file instead of /etc/autofw/policy.toml.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Edit DIR/etc/autofw/policy.toml (the default policy of `apply --root DIR`).
    #[arg(long, value_name = "DIR", conflicts_with = "policy")]
    pub root: Option<PathBuf>,
    /// Preview the firewall change from a saved `autofw scan --json`
    /// instead of scanning this host.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Print one JSON object: the changes, the file's diff, the rule lines
    /// added and removed, the next step.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EditSpecsArgs {
    /// Service names or `PORT[/tcp|udp]`, or comma lists of them.
    #[arg(value_name = "SPEC", required = true)]
    pub specs: Vec<String>,
    #[command(flatten)]
    pub edit: EditArgs,
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// The service, and optionally its rate (`ssh`, `53/udp=20/second`).
    #[arg(value_name = "SPEC[=RATE]")]
    pub spec: String,
    #[command(flatten)]
    pub edit: EditArgs,
}

#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The service and the networks that may reach it.
    #[arg(value_name = "SPEC=NET[,NET...]")]
    pub spec: String,
    #[command(flatten)]
    pub edit: EditArgs,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The service or port; with `=NET[,NET]`, only those sources.
    #[arg(value_name = "SPEC[=NET,...]")]
    pub spec: String,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// Deferred too: a scan does not build refresh's arguments.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum BlocklistCommand {
    /// Re-read the applied policy's blocklist files and bring the live sets
    /// to their content
    ///
    /// Adds the new entries and deletes the gone ones in one nf_tables
    /// transaction: no rule changes and there is no rollback window. Takes
    /// the apply lock (refused during an apply or its window). A line that
    /// does not parse changes nothing and is named (file:line), unless
    /// --skip-bad-lines. From an SSH session, a list that holds the
    /// session's own address is refused (--force). When the rules are
    /// persisted, the boot files get the new list too. For cron:
    ///   17 * * * *  root  curl -fsS -o /etc/autofw/drop.new https://www.spamhaus.org/drop/drop.txt && mv /etc/autofw/drop.new /etc/autofw/drop.txt && autofw blocklist refresh
    /// (a systemd timer in /usr/share/doc/autofw/apply.md)
    #[command(after_help = EXIT_CODES, verbatim_doc_comment)]
    Refresh(RefreshArgs),
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Skip blocklist lines that are not an address, network or range
    /// (counted and reported) instead of failing on the first one.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Load the new list even when it holds the address of the SSH session
    /// this runs in (which it would cut off, with every new login from there).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub root: RootArgs,
}

/// Output format of a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FormatArg {
    /// One `table inet autofw`, loadable with `nft -f`.
    #[default]
    Nft,
    /// `iptables-restore` input (IPv4).
    Iptables,
    /// `ip6tables-restore` input (IPv6).
    Ip6tables,
}

// The operator's choices, shared by `propose` and `apply` (a `//` comment,
// as `EditArgs`'s).
#[derive(Debug, Args, Default, Clone)]
pub struct PolicyArgs {
    /// Open a service or port even if nothing listens on it yet:
    /// a name (`https`) or `PORT[/tcp|udp]` (`8443/tcp`). Repeatable, or a
    /// comma list (`ssh,http`).
    #[arg(long, value_name = "SPEC")]
    pub allow: Vec<String>,
    /// Keep a service or port closed even though it listens. Repeatable,
    /// or a comma list.
    #[arg(long, value_name = "SPEC")]
    pub block: Vec<String>,
    /// Rate-limit new connections per source address, like `ufw limit`
    /// (a burst of 5, then 10 a minute), or at RATE (`ssh=20/minute`).
    /// Repeatable.
    #[arg(long, value_name = "SPEC[=RATE]")]
    pub limit: Vec<String>,
    /// Only these networks may connect to a service
    /// (`ssh=192.0.2.0/24,2001:db8:1::/48`). A family with no network listed
    /// is closed for it. Repeatable.
    #[arg(long, value_name = "SPEC=NET[,NET...]")]
    pub source: Vec<String>,
    /// Drop every packet from this address or network (an nft set: one
    /// lookup per packet however long the list). Repeatable; long lists go
    /// in the policy file's `[blocklist] files`.
    #[arg(long, value_name = "ADDR|NET")]
    pub blocklist: Vec<String>,
    /// A TOML policy file (format in /usr/share/doc/autofw/policy.md),
    /// instead of /etc/autofw/policy.toml, which is read whenever it exists.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Read no policy file, not even /etc/autofw/policy.toml: the flags
    /// alone decide.
    #[arg(long, conflicts_with = "policy")]
    pub no_policy: bool,
    /// Skip blocklist lines that are not an address, network or range
    /// (counted and reported) instead of failing on the first one.
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// Read a saved `autofw scan --json` instead of scanning this host.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Ruleset format.
    #[arg(long, value_enum, default_value_t = FormatArg::Nft)]
    pub format: FormatArg,
    /// Write the ruleset to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the model (rules with their reasons) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the blocklist as `ipset restore` input to FILE: the
    /// iptables formats match it with `-m set` and need it loaded first.
    #[arg(long, value_name = "FILE")]
    pub ipset: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct StateArgs {
    /// Where autofw keeps saved rulesets, the lock and the rollback window.
    #[arg(long, value_name = "DIR", default_value = state::DEFAULT_DIR,
          value_parser = clap::builder::OsStringValueParser::new().try_map(utf8_state_dir))]
    pub state_dir: PathBuf,
}

/// `--state-dir` must be UTF-8: apply hands it to the watchdog it starts,
/// and records and messages carry it as text. Refused here, as bad input
/// (exit 2), rather than as a watchdog that did not start.
fn utf8_state_dir(dir: std::ffi::OsString) -> Result<PathBuf, String> {
    match dir.into_string() {
        Ok(dir) => Ok(PathBuf::from(dir)),
        Err(dir) => Err(format!(
            "`{}` is not UTF-8; give the state directory a UTF-8 path",
            crate::terminal::escape_controls(&dir.to_string_lossy())
        )),
    }
}

/// `--guard CLIENT:PORT`: port 0 is no SSH port (no connection can come in
/// on it), so it is bad input, not a lockout.
fn guard_connection(text: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = text.parse().map_err(|_| {
        "expected CLIENT:PORT, e.g. `192.0.2.2:22` or `[2001:db8::2]:22`".to_string()
    })?;
    if addr.port() == 0 {
        return Err("port 0 is no port a connection comes in on; ports are 1 to 65535".into());
    }
    Ok(addr)
}

#[derive(Debug, Args, Clone)]
pub struct DisableArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RootArgs {
    /// Put (or look for) every boot file under DIR instead of `/`.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Actually apply (after a prompt). Without it, apply is a dry run.
    #[arg(long)]
    pub confirm: bool,
    /// Answer `Apply these rules?` with yes (for scripts). It does not keep
    /// them: the rollback window still runs, and only `autofw confirm` (or a
    /// `yes` typed on the terminal after the load) keeps the rules.
    #[arg(long, requires = "confirm")]
    pub yes: bool,
    /// Seconds to wait for confirmation before rolling back by itself.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Firewall backend.
    #[arg(long, value_enum, default_value_t)]
    pub backend: record::Backend,
    /// Apply even if the lockout guard says this SSH session would be cut off.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object instead of the plan: whether the rules would
    /// change, autofw's part of the firewall before and after, the lockout
    /// guard's verdict, the rollback window (/usr/share/doc/autofw/json-schema.md). With
    /// --confirm it needs --no-wait.
    #[arg(long)]
    pub json: bool,
    /// With --confirm, for automation: no prompt; load the rules, arm the
    /// rollback watchdog and return at once (exit 0). The rules are kept only
    /// if `autofw confirm` runs (from a new login) within --timeout. When the
    /// live rules already are the proposal, nothing is loaded and no window
    /// opens.
    #[arg(long, requires = "confirm")]
    pub no_wait: bool,
    /// The connection the lockout guard checks, as this host sees it: a new
    /// connection from CLIENT to tcp/PORT (`192.0.2.2:22`,
    /// `[2001:db8::2]:22`), instead of the SSH session apply runs in. For
    /// automation that knows its controller's address and port.
    #[arg(long, value_name = "CLIENT:PORT", value_parser = guard_connection)]
    pub guard: Option<std::net::SocketAddr>,
    /// After confirmation, save the ruleset and install a boot hook.
    #[arg(long)]
    pub persist: bool,
    /// Print the whole proposal too, before the diff (apply shows the
    /// summary and the diff; `autofw propose` shows the proposal alone).
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub root: RootArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object for scripts (schema in /usr/share/doc/autofw/json-schema.md).
    #[arg(long)]
    pub json: bool,
    /// Output format. `prometheus` writes node_exporter's textfile-collector
    /// format (/usr/share/doc/autofw/status.md) and exits 0 whenever it wrote the metrics:
    /// drift is in the metrics, not in the exit status.
    #[arg(long, value_enum, default_value_t = StatusFormatArg::Text, conflicts_with = "json")]
    pub format: StatusFormatArg,
    /// Write the report to FILE (temp file, then rename: a collector never
    /// reads half a file) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct WatchdogArgs {
    #[command(flatten)]
    pub state: StateArgs,
}

/// How `status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StatusFormatArg {
    /// For people.
    #[default]
    Text,
    /// The same as --json.
    Json,
    /// Prometheus text exposition, for node_exporter's textfile collector.
    Prometheus,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Read a saved kernel log (`journalctl -k`, `dmesg`, /var/log/kern.log
    /// or /dev/kmsg lines) instead of this host's.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How far back `journalctl -k` reads (its --since syntax: `-1h`,
    /// `-24h`, `today`). Not used with --file or /dev/kmsg.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "-1h",
        allow_hyphen_values = true
    )]
    pub since: String,
    /// How many ports and sources to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Print one JSON object for scripts (schema in /usr/share/doc/autofw/json-schema.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generated {
    /// One man page per command: autofw(8), autofw-apply(8), ...
    Man,
    /// bash, zsh and fish completions.
    Completions,
    /// The systemd units: the boot hooks and the status timer.
    Units,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(value_enum)]
    pub what: Generated,
    /// The directory to write into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

// The second stage: what the user typed → each module's options.
