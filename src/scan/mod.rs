//! `autofw scan`: every listener on the host, from the kernel's socket
//! tables, joined to the processes that own it, classified and named.
//!
//! Data flows edges → core → render:
//! - [`netlink`] (sock_diag, filtered to listeners in the kernel; the default)
//!   or [`procnet`] (`/proc/net/{tcp,tcp6,udp,udp6}` through procfs, also
//!   the reader of saved fixtures) give [`core::SocketEntry`] values;
//! - [`owners`] walks `/proc/PID/fd` for the inodes of those sockets only
//!   (or reads a saved owner map);
//! - [`core`] (pure) keeps the listeners, dedups them into one
//!   [`Listener`](crate::model::Listener) per (proto, address, port),
//!   classifies exposure and names the service;
//! - [`nat`] reads the DNAT rules of the nat prerouting hooks and the
//!   container engines' published ports; [`forwarded`] (pure) parses them and
//!   joins them to the listeners (a published port is a listener too);
//! - [`host`] reads forwarding and bridges for `propose`;
//! - [`render`] (pure) filters and prints.
//!
//! Other commands call [`scan_host`].

mod btf;
pub(crate) mod core;
pub(crate) mod fd_walk;
pub(crate) mod forwarded;
pub(crate) mod host;
pub(crate) mod interfaces;
pub(crate) mod kernel;
pub(crate) mod nat;
pub(crate) mod netlink;
pub(crate) mod nft_nat;
pub(crate) mod owners;
pub(crate) mod procnet;
pub(crate) mod render;
mod task_files;

use self::core::{Owners, SocketEntry};
use self::procnet::Table;
use crate::error::{bad_input, exit, host_failure};
use crate::input::Kind;
use crate::model::{HostFacts, Scan};
use crate::services::ServiceTable;
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where socket tables are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SocketSource {
    /// netlink sock_diag, filtered to listeners in the kernel; /proc if that fails.
    #[default]
    Auto,
    /// netlink sock_diag only.
    Netlink,
    /// /proc/net/{tcp,tcp6,udp,udp6} only.
    Proc,
}

/// How the holders of the listening sockets are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OwnerSource {
    /// The kernel's `task_file` iterator on a host with many processes
    /// (where it is faster), the `/proc` walk otherwise or where the
    /// iterator cannot run.
    #[default]
    Auto,
    /// Walk `/proc/PID/fd` only.
    Walk,
    /// The iterator only.
    Iterator,
}

/// What `autofw scan` was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScanOptions {
    /// Show loopback-only listeners too.
    pub all: bool,
    pub json: bool,
    pub source: SocketSource,
    pub owners_from: OwnerSource,
    /// Saved tables to read instead of this host.
    pub fixture: Option<PathBuf>,
}

/// Scan this host (the current network namespace): sockets from `source`,
/// owners from `/proc`, names from `names` (the caller's
/// [`host::read_service_table`], which `propose` also needs for its specs).
///
/// All on this thread: reading the host's other facts on a second one
/// beside the walk was measured slower on a small host (2.29 against
/// 2.14 ms: starting a thread, and waking a CPU for it in a VM, costs more
/// than those reads).
pub(crate) fn scan_host(
    source: SocketSource,
    owners_from: OwnerSource,
    names: &ServiceTable,
) -> anyhow::Result<Scan> {
    let (sockets, from_proc) = read_live_sockets(source)?;
    if from_proc {
        say_notes([PROC_KNOWS_NO_DEVICES]);
    }
    let owners = owners::find_owners(&listener_inodes(&sockets), owners_from)?;
    let side = HostSide::read();
    Ok(listeners_of_host(sockets, owners, names, side))
}

/// What a scan reads of the host beside its sockets and their owners.
struct HostSide {
    accounts: core::Accounts,
    host: HostFacts,
    addresses: std::collections::BTreeMap<std::net::IpAddr, String>,
    nat: nat::NatFacts,
}

impl HostSide {
    fn read() -> Self {
        HostSide {
            accounts: read_accounts(Path::new("/etc")),
            host: host::read_host_facts(),
            addresses: interfaces::local_addresses(),
            nat: nat::read_nat_facts(),
        }
    }
}

/// The scan of this host from its sockets, their owners and the rest.
fn listeners_of_host(
    sockets: Vec<SocketEntry>,
    owners: Owners,
    names: &ServiceTable,
    side: HostSide,
) -> Scan {
    let HostSide {
        accounts,
        host,
        addresses,
        nat,
    } = side;
    let mut listeners = core::listeners(sockets, &owners, names, &accounts);
    if listeners.iter().any(|l| l.pids.is_empty()) {
        kernel::describe_kernel_sockets(&mut listeners, &host::read_kernel_sockets());
    }
    if listeners.iter().any(kernel::held_by_systemd) {
        kernel::name_socket_units(&mut listeners, &host::read_socket_units(), names);
    }
    core::mark_client_sockets(&mut listeners, host.local_port_range);
    core::attach_interfaces(&mut listeners, &addresses);
    say_notes(&nat.notes);
    let listeners = forwarded::join(listeners, &nat.forwards, &nat.published, names);
    Scan {
        listeners,
        unreadable_processes: owners.unreadable,
        unreadable: owners.unreadable_processes,
        host,
        uid_min: Some(accounts.uid_min),
        as_root: Some(rustix::process::geteuid().is_root()),
    }
}

/// Said when the sockets came from `/proc/net`: it has no column for the
/// device a socket is bound to.
pub(crate) const PROC_KNOWS_NO_DEVICES: &str = "the sockets were read from /proc/net, which does not say which device a socket is bound to (`0.0.0.0%virbr0` as sock_diag shows it): a socket bound to a device shows as listening on every interface, and propose opens its port on every interface";

/// `UID_MIN` and the account names, from `login.defs` and `passwd` in `dir`
/// (`/etc`, or a fixture directory); missing files leave the defaults.
fn read_accounts(dir: &Path) -> core::Accounts {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    core::Accounts::from_texts(read("login.defs").as_deref(), read("passwd").as_deref())
}

/// The same from a saved directory, each file read as input.
fn read_saved_accounts(dir: &Path) -> anyhow::Result<core::Accounts> {
    let read = |name: &str| crate::input::read_text_if_exists(&dir.join(name), Kind::SavedTable);
    Ok(core::Accounts::from_texts(
        read("login.defs")?.as_deref(),
        read("passwd")?.as_deref(),
    ))
}

/// Scan saved tables instead of the host: `dir` holds `tcp`, `udp` and
/// optionally `tcp6`, `udp6` (copies of `/proc/net/*`), `owners` (see
/// [`owners::parse_owner_map`]), `processes` (see
/// [`owners::parse_process_facts`]), `login.defs`, `passwd`,
/// `ip_local_port_range` (a copy of the sysctl), `addresses`
/// (`ADDRESS INTERFACE` lines), `devices` (`INODE DEVICE` lines: the device
/// a socket is bound to, which `/proc/net` does not say), and the kernel's and systemd's own words:
/// `ip-link.json`, `wg-listen-port`, `nfsd-portlist`,
/// `systemctl-list-sockets` (see `fixtures/kernel/README.md`). Names come from the built-in table only,
/// and host facts are left empty, so the result does not depend on the
/// machine the tests run on.
pub(crate) fn scan_saved(dir: &Path) -> anyhow::Result<Scan> {
    if !dir.is_dir() {
        return Err(bad_input(format!(
            "`{}` is not a directory of saved socket tables (tcp, tcp6, udp, udp6, owners)",
            dir.display()
        )));
    }
    // Every file through `input`: a fixture directory is named by whoever
    // runs this, and may hold a FIFO or a device as well as a file.
    let read = |name: &str| crate::input::read_text_if_exists(&dir.join(name), Kind::SavedTable);
    let shown = |name: &str| crate::terminal::path(&dir.join(name));
    let mut sockets = Vec::new();
    for table in Table::ALL {
        let name = table.file_name();
        match read(name)? {
            Some(text) => sockets.extend(
                procnet::parse_table(text.as_bytes(), table, &shown(name))
                    .map_err(|e| bad_input(e.to_string()))?,
            ),
            // A missing IPv6 table means IPv6 is off.
            None if table.is_v6() => {}
            None => {
                return Err(bad_input(format!(
                    "cannot read saved table {}: it does not exist",
                    shown(name)
                )));
            }
        }
    }
    if let Some(text) = read("devices")? {
        let devices = parse_devices(&text, &shown("devices"))?;
        for socket in &mut sockets {
            socket.device = devices.get(&socket.inode).cloned();
        }
    }
    let mut owners = match read("owners")? {
        Some(text) => owners::parse_owner_map(&text, &shown("owners"))
            .map_err(|e| bad_input(e.to_string()))?,
        None => Owners::default(),
    };
    if let Some(text) = read("processes")? {
        owners.processes = owners::parse_process_facts(&text, &shown("processes"))
            .map_err(|e| bad_input(e.to_string()))?;
    }
    let accounts = read_saved_accounts(dir)?;
    let names = ServiceTable::builtin();
    let mut listeners = core::listeners(sockets, &owners, &names, &accounts);
    let mut kernel_sockets = Vec::new();
    if let Some(json) = read("ip-link.json")? {
        kernel_sockets
            .extend(kernel::tunnels_of_ip_link(&json).map_err(|e| {
                bad_input(format!("`{}`: {e}", dir.join("ip-link.json").display()))
            })?);
    }
    kernel_sockets
        .extend(read("wg-listen-port")?.map_or_else(Vec::new, |t| kernel::wireguard_of_wg(&t)));
    kernel_sockets
        .extend(read("nfsd-portlist")?.map_or_else(Vec::new, |t| kernel::nfsd_of_portlist(&t)));
    kernel::describe_kernel_sockets(&mut listeners, &kernel_sockets);
    if let Some(text) = read("systemctl-list-sockets")? {
        kernel::name_socket_units(&mut listeners, &kernel::parse_list_sockets(&text), &names);
    }
    let local_port_range = read("ip_local_port_range")?.and_then(|t| host::parse_port_range(&t));
    core::mark_client_sockets(&mut listeners, local_port_range);
    // Without `addresses`, sockets bound to a device still get it as their
    // interface, and a bridge's or `lo`'s exposure.
    let addresses = match read("addresses")? {
        Some(text) => parse_addresses(&text, &shown("addresses"))?,
        None => Default::default(),
    };
    core::attach_interfaces(&mut listeners, &addresses);
    Ok(Scan {
        listeners,
        unreadable_processes: owners.unreadable,
        unreadable: owners.unreadable_processes,
        host: HostFacts {
            local_port_range,
            ..HostFacts::default()
        },
        uid_min: Some(accounts.uid_min),
        // Saved tables say nothing of who read them.
        as_root: None,
    })
}

/// A fixture's `devices` file: `INODE DEVICE` per line, `#` comments.
fn parse_devices(text: &str, file: &str) -> anyhow::Result<std::collections::HashMap<u64, String>> {
    parse_pairs(text, file, "INODE DEVICE")
}

/// A fixture's `addresses` file: `ADDRESS INTERFACE` per line (what
/// `ip -br addr` shows, one address a line), `#` comments.
fn parse_addresses(
    text: &str,
    file: &str,
) -> anyhow::Result<std::collections::BTreeMap<std::net::IpAddr, String>> {
    parse_pairs(text, file, "ADDRESS INTERFACE")
}

/// A fixture file of `KEY NAME` lines, `#` comments: each key parsed; a
/// line that is not two fields, or whose key does not parse, is named with
/// the form `expected`. A key given twice keeps its last name.
fn parse_pairs<K: std::str::FromStr, C: FromIterator<(K, String)>>(
    text: &str,
    file: &str,
    expected: &str,
) -> anyhow::Result<C> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let pair = match fields.as_slice() {
            [key, name] => key.parse::<K>().ok().map(|key| (key, name.to_string())),
            _ => None,
        };
        let Some(pair) = pair else {
            return Err(bad_input(format!(
                "`{file}` line {}: expected `{expected}`, found `{line}`",
                index + 1
            )));
        };
        pairs.push(pair);
    }
    Ok(pairs.into_iter().collect())
}

/// The listener candidates of all four tables. `Auto` takes netlink (the
/// faster, measured in docs/scan.md) and falls back to `/proc/net` for any
/// table netlink cannot dump (no sock_diag, a kernel without `udp_diag`).
/// Also says whether any table came from `/proc/net` (which knows no
/// devices).
fn read_live_sockets(source: SocketSource) -> anyhow::Result<(Vec<SocketEntry>, bool)> {
    let proc_net = Path::new("/proc/net");
    let from_proc = |table: Table| {
        procnet::read_table(proc_net, table).map_err(|e| host_failure(e.to_string()))
    };
    let mut sockets = Vec::new();
    let mut any_from_proc = false;
    let mut diag = netlink::Diag::default();
    // Both TCP tables in one kernel walk where the kernel answers that.
    let tcp_done = source != SocketSource::Proc
        && match diag.dump_tcp_both_families() {
            Ok(entries) => {
                sockets.extend(entries);
                true
            }
            Err(_) => false,
        };
    for table in Table::ALL {
        if tcp_done && table.proto() == crate::model::Proto::Tcp {
            continue;
        }
        let entries = match source {
            SocketSource::Proc => {
                any_from_proc = true;
                from_proc(table)?
            }
            SocketSource::Netlink => match diag.dump(table) {
                Ok(entries) => entries,
                // IPv6 is off: no table to read, and nothing listens there.
                Err(_) if table.is_v6() && !proc_net.join("if_inet6").exists() => Vec::new(),
                Err(e) => {
                    return Err(host_failure(format!(
                        "cannot dump the {} sockets through netlink sock_diag: {e}; `--source proc` reads /proc/net instead",
                        table.file_name()
                    )));
                }
            },
            SocketSource::Auto => match diag.dump(table) {
                Ok(entries) => entries,
                Err(_) => {
                    any_from_proc = true;
                    from_proc(table)?
                }
            },
        };
        sockets.extend(entries);
    }
    Ok((sockets, any_from_proc))
}

/// The inodes worth looking for in the fd walk, sorted for binary search.
fn listener_inodes(sockets: &[SocketEntry]) -> Vec<u64> {
    let mut inodes: Vec<u64> = sockets
        .iter()
        .filter(|s| s.is_listener() && s.inode != 0)
        .map(|s| s.inode)
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes
}

/// `autofw scan`. `other_filters` gives notes about the host's other packet
/// filters (passed in: reading them runs firewall tools, which this module
/// does not).
pub(crate) fn run(
    args: &ScanOptions,
    other_filters: &dyn Fn() -> Vec<String>,
) -> anyhow::Result<u8> {
    let scan = match &args.fixture {
        Some(_) if args.source == SocketSource::Netlink => {
            return Err(bad_input(
                "`--fixture` reads saved /proc/net tables, so it cannot be combined with `--source netlink`",
            ));
        }
        Some(dir) => scan_saved(dir)?,
        None => scan_host(args.source, args.owners_from, &host::read_service_table())?,
    };
    let notes = render::notes(&scan, args.all, rustix::process::geteuid().is_root());
    let shown = render::visible(scan, args.all);
    let text = if args.json {
        render::json(&shown)?
    } else {
        render::table(&shown.listeners)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    // Other filters the host runs (iptables-legacy tables, invisible to
    // `nft list ruleset`): live scans only, a fixture is not this host.
    let filter_notes = match args.fixture {
        None => other_filters(),
        Some(_) => Vec::new(),
    };
    let filter_notes = filter_notes
        .iter()
        .map(|note| crate::terminal::escape_controls(note));
    say_notes(notes.iter().map(Cow::from).chain(filter_notes));
    Ok(exit::OK)
}

/// Write `notes` to stderr, each as `autofw: note: ...`, in one write
/// (as [`say!`] does a line).
fn say_notes<T: std::fmt::Display>(notes: impl IntoIterator<Item = T>) {
    let mut said = String::new();
    for note in notes {
        said.push_str(&format!("autofw: note: {note}\n"));
    }
    if !said.is_empty() {
        crate::to_stderr(&said);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Exposure;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0500090A:238C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n";
    const UDP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n   0: 00000000:B391 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2 2 0000000000000000 0\n";

    /// The fixture's `devices` and `addresses` files: comments and blank
    /// lines skipped, a bad line named with the form it should have.
    #[test]
    fn fixture_pair_files_are_read_and_bad_lines_named() {
        let devices = parse_devices("# inode device\n\n7 virbr0 # dhcp\n", "d").unwrap();
        assert_eq!(devices.get(&7).map(String::as_str), Some("virbr0"));
        let addresses = parse_addresses("192.0.2.1 eth0\n", "a").unwrap();
        assert_eq!(addresses.len(), 1);
        let e = parse_devices("x virbr0\n", "d").unwrap_err().to_string();
        assert_eq!(e, "`d` line 1: expected `INODE DEVICE`, found `x virbr0`");
        let e = parse_addresses("\n192.0.2.1\n", "a")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "`a` line 2: expected `ADDRESS INTERFACE`, found `192.0.2.1`"
        );
    }

    /// A saved host whose `addresses` and `ip_local_port_range` give the
    /// exporter on 10.9.0.5 its interface and make dig's socket a client's.
    #[test]
    fn saved_addresses_and_port_range_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("tcp", TCP);
        write("udp", UDP);
        write("owners", "1 10 exporter\n2 20 dig\n");
        write("addresses", "# ADDRESS INTERFACE\n10.9.0.5 eth1\n");
        write("ip_local_port_range", "32768\t60999\n");
        let scan = scan_saved(dir.path()).unwrap();
        let got: Vec<(u16, Option<&str>, bool)> = scan
            .listeners
            .iter()
            .map(|l| (l.port, l.interface.as_deref(), l.client_socket))
            .collect();
        assert_eq!(got, [(9100, Some("eth1"), false), (45969, None, true)]);
        assert_eq!(scan.host.local_port_range, Some((32768, 60999)));

        // `devices` gives a socket the device it is bound to (by inode):
        // a bridge's, so not public, with or without `addresses`.
        write("devices", "# INODE DEVICE\n2 virbr0\n");
        for with_addresses in [true, false] {
            if !with_addresses {
                std::fs::remove_file(dir.path().join("addresses")).unwrap();
            }
            let scan = scan_saved(dir.path()).unwrap();
            let devices: Vec<(Option<&str>, Option<&str>, Exposure)> = scan
                .listeners
                .iter()
                .map(|l| (l.device.as_deref(), l.interface.as_deref(), l.exposure))
                .collect();
            let exporter = with_addresses.then_some("eth1");
            assert_eq!(
                devices,
                [
                    (None, exporter, Exposure::Private),
                    (Some("virbr0"), Some("virbr0"), Exposure::Private)
                ]
            );
            assert_eq!(scan.listeners[1].address_text(), "0.0.0.0%virbr0");
        }
        write("devices", "virbr0 2\n");
        let e = scan_saved(dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("devices` line 1: expected `INODE DEVICE`, found `virbr0 2`"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("devices")).unwrap();

        write("addresses", "10.9.0.5\n");
        let e = scan_saved(dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("addresses` line 1: expected `ADDRESS INTERFACE`, found `10.9.0.5`"),
            "{e}"
        );
    }
}
