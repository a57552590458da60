//! The pure core of `scan`: which socket table entries are listeners, who can
//! reach an address, and how sockets and their owners become one
//! [`Listener`] per (proto, address, port).
//!
//! Nothing here touches the host: the edges ([`super::procnet`],
//! [`super::netlink`], [`super::owners`]) hand in plain values, so every rule
//! is tested on fixtures and literals.

use crate::model::{Exposure, Listener, Owner, Proto, UnreadableProcess};
use crate::services::{ROOTLESS_CONTAINER, ROOTLESS_PROXIES, ServiceTable, is_risky_listener};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Kernel socket states (`include/net/tcp_states.h`). `/proc/net/*` and
/// sock_diag both report them, for UDP too: a connected UDP socket is
/// `TCP_ESTABLISHED`, an unconnected one `TCP_CLOSE`.
#[cfg(test)]
pub(crate) const TCP_ESTABLISHED: u8 = 1;
pub(crate) const TCP_CLOSE: u8 = 7;
pub(crate) const TCP_LISTEN: u8 = 10;

/// One row of a kernel socket table, from `/proc/net/*` or sock_diag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketEntry {
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's state number (see [`TCP_LISTEN`]).
    pub state: u8,
    /// The socket's inode: what `/proc/PID/fd/N` links to as `socket:[INODE]`.
    pub inode: u64,
    /// The uid that created the socket (the kernel's `sock_i_uid`).
    pub uid: u32,
    /// The device the socket is bound to (sock_diag's `idiag_if`, named);
    /// `None` when it is bound to none, or the reader cannot tell (`/proc`).
    pub device: Option<String>,
}

/// Can a socket in `state` be a listener at all? The state alone decides for
/// TCP; UDP also needs an unset peer ([`SocketEntry::is_listener`]). Shared
/// by the `/proc` reader (to skip the 20,000 established lines of a busy host
/// without parsing them) and the netlink request (to filter in the kernel).
pub(crate) fn may_listen(proto: Proto, state: u8) -> bool {
    match proto {
        Proto::Tcp => state == TCP_LISTEN,
        Proto::Udp => state == TCP_CLOSE,
    }
}

impl SocketEntry {
    /// A TCP socket in LISTEN, or a bound UDP socket with no peer. A UDP
    /// socket that called `connect()` only takes datagrams from its peer
    /// (a resolver's query socket): it has a remote address and port and
    /// state ESTABLISHED, and is not a service anyone can reach.
    pub(crate) fn is_listener(&self) -> bool {
        may_listen(self.proto, self.state)
            && match self.proto {
                Proto::Tcp => true,
                Proto::Udp => self.remote.port() == 0 && self.remote.ip().is_unspecified(),
            }
    }
}

/// Who owns which sockets: what the fd walk (or a saved owner map) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Owners {
    /// Socket inode → every pid that holds it open (a shared listening
    /// socket has several: a master and its workers).
    pub pids_by_inode: HashMap<u64, BTreeSet<u32>>,
    /// Pid → program name (`/proc/PID/comm`).
    pub programs: HashMap<u32, String>,
    /// Pid → who runs it and what it runs (absent for a process that could
    /// not be read, and in owner maps saved without them).
    pub processes: HashMap<u32, ProcessFacts>,
    /// Processes whose descriptors could not be read: their sockets show
    /// with fewer owners, or none.
    pub unreadable: usize,
    /// Those of them known by pid (and comm, where readable).
    pub unreadable_processes: Vec<UnreadableProcess>,
}

impl Owners {
    /// Record that `pid` (running `program`) holds socket `inode`.
    pub(crate) fn add(&mut self, inode: u64, pid: u32, program: &str) {
        self.pids_by_inode.entry(inode).or_default().insert(pid);
        self.programs
            .entry(pid)
            .or_insert_with(|| program.to_string());
    }
}

/// What the scan learnt about one owning process, beyond its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcessFacts {
    /// Effective uid (the owner of `/proc/PID`).
    pub uid: Option<u32>,
    /// `/proc/PID/exe`'s target.
    pub exe: Option<String>,
    /// That executable is root-owned and neither group- nor other-writable.
    pub exe_root_only: bool,
}

/// What the host says about its accounts: `UID_MIN` and uid → name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Accounts {
    pub uid_min: u32,
    pub users: HashMap<u32, String>,
}

impl Accounts {
    /// From the texts of `/etc/login.defs` and `/etc/passwd` (either may be
    /// missing: `UID_MIN` is then 1000, and uids go unnamed).
    pub(crate) fn from_texts(login_defs: Option<&str>, passwd: Option<&str>) -> Accounts {
        Accounts {
            uid_min: login_defs
                .and_then(crate::trust::uid_min_of_login_defs)
                .unwrap_or(crate::trust::DEFAULT_UID_MIN),
            users: passwd
                .map(crate::trust::users_of_passwd)
                .unwrap_or_default(),
        }
    }

    fn user(&self, uid: Option<u32>) -> Option<String> {
        self.users.get(&uid?).cloned()
    }
}

/// Who can reach `ip`: the exact ranges of issue 2. IPv4-mapped IPv6
/// (`::ffff:127.0.0.1`) is classified as its IPv4 address; wildcards
/// (`0.0.0.0`, `::`) are public, and so are the documentation ranges, so a
/// test host in a namespace behaves like a real VPS.
pub(crate) fn classify(ip: IpAddr) -> Exposure {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Exposure {
    let [a, b, _, _] = ip.octets();
    match (a, b) {
        (127, _) => Exposure::Loopback,
        (169, 254) => Exposure::LinkLocal,
        (10, _) => Exposure::Private,
        (172, b) if b & 0xf0 == 16 => Exposure::Private, // 172.16.0.0/12
        (192, 168) => Exposure::Private,
        (100, b) if b & 0xc0 == 64 => Exposure::Private, // 100.64.0.0/10 (CGNAT)
        _ => Exposure::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Exposure {
    let first = ip.segments()[0];
    if ip == Ipv6Addr::LOCALHOST {
        Exposure::Loopback
    } else if first & 0xffc0 == 0xfe80 {
        Exposure::LinkLocal // fe80::/10
    } else if first & 0xfe00 == 0xfc00 {
        Exposure::Private // fc00::/7 (unique local)
    } else {
        Exposure::Public
    }
}

/// Join socket entries to their owners: keep the listeners, merge every
/// socket on the same (proto, address, port) into one [`Listener`] (reuseport
/// groups, a master and its workers), classify, name and flag each. A
/// program names a listener only when its executable proves the name
/// ([`crate::trust::program_name_problem`]); otherwise the port does, and
/// `name_note` says why.
/// Sorted by proto, port, then address, so the same host always prints the
/// same way.
pub(crate) fn listeners(
    sockets: impl IntoIterator<Item = SocketEntry>,
    owners: &Owners,
    names: &ServiceTable,
    accounts: &Accounts,
) -> Vec<Listener> {
    #[derive(Default)]
    struct Group {
        pids: BTreeSet<u32>,
        uid: u32,
    }
    // Sockets bound to different devices are different listeners: two
    // libvirt networks each have a dnsmasq on `0.0.0.0%virbrN:67`.
    type Key = (Proto, u16, IpAddr, Option<String>);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for socket in sockets.into_iter().filter(SocketEntry::is_listener) {
        let group = groups
            .entry((
                socket.proto,
                socket.local.port(),
                socket.local.ip(),
                socket.device,
            ))
            .or_default();
        // The highest uid: if any socket of the endpoint is a user's, that
        // one decides trust.
        group.uid = group.uid.max(socket.uid);
        if let Some(owning) = owners.pids_by_inode.get(&socket.inode) {
            group.pids.extend(owning);
        }
    }
    groups
        .into_iter()
        .map(|((proto, port, address, device), group)| {
            let owner_list: Vec<Owner> = group
                .pids
                .iter()
                .filter_map(|pid| {
                    let program = owners.programs.get(pid)?;
                    let facts = owners.processes.get(pid).cloned().unwrap_or_default();
                    Some(Owner {
                        pid: *pid,
                        program: program.clone(),
                        user: accounts.user(facts.uid),
                        uid: facts.uid,
                        exe: facts.exe,
                        exe_root_only: facts.exe_root_only,
                    })
                })
                .collect();
            let programs: BTreeSet<String> = owner_list.iter().map(|o| o.program.clone()).collect();
            let programs: Vec<String> = programs.into_iter().collect();
            let exposure = classify(address);
            let mut listener = Listener {
                process: programs.join(","),
                pids: group.pids.into_iter().collect(),
                uid: Some(group.uid),
                user: accounts.user(Some(group.uid)),
                owners: owner_list,
                device,
                ..Listener::bare(proto, address, port, exposure)
            };
            let proven: BTreeSet<&str> = crate::trust::trusted_programs(&listener)
                .into_iter()
                .collect();
            let proven: Vec<&str> = proven.into_iter().collect();
            let rootless_proxy = proven.iter().any(|p| ROOTLESS_PROXIES.contains(p));
            listener.service = names.name_listener(proto, port, &proven);
            // Say why a known program name was not taken.
            let all: Vec<&str> = programs.iter().map(String::as_str).collect();
            if names.name_listener(proto, port, &all) != listener.service {
                listener.name_note = listener.owners.iter().find_map(|o| {
                    crate::trust::program_name_problem(o).map(|why| {
                        format!("not named after `{}` (pid {}): {why}", o.program, o.pid)
                    })
                });
            }
            // A user's rootless container: its engine's port forwarder holds
            // the port on the host, as that user.
            if rootless_proxy && !crate::trust::is_system_account(group.uid, accounts.uid_min) {
                let account = listener
                    .user
                    .clone()
                    .unwrap_or_else(|| group.uid.to_string());
                listener.service = ROOTLESS_CONTAINER.to_string();
                listener.name_note = None;
                listener.rootless_container = Some(account);
            }
            listener.risky = is_risky_listener(&listener.service, exposure);
            listener
        })
        .collect()
}

/// Programs known to serve on ephemeral ports (mosh-server answers on
/// 60000–61000, inside most hosts' `ip_local_port_range`).
const EPHEMERAL_PORT_SERVERS: &[&str] = &["mosh-server"];

/// Mark the client sockets: an unconnected UDP socket held by a process, on
/// a port inside `ip_local_port_range`, is a client's (a resolver's or
/// dnsmasq's upstream queries, an NTP client: the kernel picked the port),
/// unless its program is known to serve there. A socket no process holds is
/// the kernel's, and the kernel's sockets are services (VXLAN, WireGuard).
pub(crate) fn mark_client_sockets(
    listeners: &mut [Listener],
    local_port_range: Option<(u16, u16)>,
) {
    let Some((low, high)) = local_port_range else {
        return;
    };
    for l in listeners {
        let serves_there = crate::trust::trusted_programs(l)
            .iter()
            .any(|p| EPHEMERAL_PORT_SERVERS.contains(p));
        l.client_socket = l.proto == Proto::Udp
            && (low..=high).contains(&l.port)
            && !l.pids.is_empty()
            && !serves_there;
        if l.client_socket {
            l.risky = false;
        }
    }
}

/// Record the interface holding each listener's address (`addresses`:
/// local address → interface), for listeners bound to one address: a
/// wildcard is on every interface, loopback needs no rule. A listener bound
/// to a device takes packets from that device only: its interface is the
/// device, and its exposure is the device's ([`device_exposure`]) where
/// that is narrower than its address's.
pub(crate) fn attach_interfaces(listeners: &mut [Listener], addresses: &BTreeMap<IpAddr, String>) {
    for l in listeners {
        if let Some(device) = &l.device {
            l.interface = Some(device.clone());
            let exposure = l.exposure.min(device_exposure(device, addresses));
            if exposure != l.exposure {
                l.exposure = exposure;
                l.risky = !l.client_socket && is_risky_listener(&l.service, exposure);
            }
            continue;
        }
        let address = l.address.to_canonical();
        if address.is_unspecified() || l.exposure == Exposure::Loopback {
            continue;
        }
        l.interface = addresses.get(&address).cloned();
    }
}

/// Who can reach a socket bound to `device`: only what arrives on it.
/// Loopback for `lo`; private for a bridge that containers or VMs route
/// through ([`crate::model::is_routing_bridge`]: its far side is the
/// host's own guests, whatever addresses it holds); otherwise the widest
/// exposure of the addresses the device holds (a link holding only private
/// addresses is a private link). A device holding no address is taken to
/// be public: nothing says who is on it.
pub(crate) fn device_exposure(device: &str, addresses: &BTreeMap<IpAddr, String>) -> Exposure {
    if device == "lo" {
        return Exposure::Loopback;
    }
    if crate::model::is_routing_bridge(device) {
        return Exposure::Private;
    }
    addresses
        .iter()
        .filter(|(_, name)| *name == device)
        .map(|(address, _)| classify(*address))
        .max()
        .unwrap_or(Exposure::Public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The listeners of `sockets`, no owner known, with each address's
    /// interface (`(address, interface)` pairs) attached.
    fn with_interfaces(sockets: Vec<SocketEntry>, addresses: &[(&str, &str)]) -> Vec<Listener> {
        let mut got = listeners(
            sockets,
            &Owners::default(),
            &ServiceTable::builtin(),
            &Accounts::from_texts(None, None),
        );
        let addresses: BTreeMap<IpAddr, String> = addresses
            .iter()
            .map(|&(a, i)| (ip(a), i.to_string()))
            .collect();
        attach_interfaces(&mut got, &addresses);
        got
    }

    fn entry(proto: Proto, local: &str, remote: &str, state: u8, inode: u64) -> SocketEntry {
        SocketEntry {
            proto,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            inode,
            uid: 0,
            device: None,
        }
    }

    /// Every owner runs as root from its own root-owned `/usr/sbin/PROGRAM`.
    fn daemons_own_names(owners: &mut Owners) {
        for (pid, program) in &owners.programs {
            owners.processes.insert(
                *pid,
                ProcessFacts {
                    uid: Some(0),
                    exe: Some(format!("/usr/sbin/{program}")),
                    exe_root_only: true,
                },
            );
        }
    }

    #[test]
    fn a_borrowed_name_does_not_name_the_listener() {
        // A system account's python3 calling itself sshd on redis's port, and
        // a user's copy of sshd in its home.
        let sockets = vec![
            entry(Proto::Tcp, "0.0.0.0:6379", "0.0.0.0:0", TCP_LISTEN, 1),
            entry(Proto::Tcp, "0.0.0.0:2222", "0.0.0.0:0", TCP_LISTEN, 2),
            entry(Proto::Tcp, "0.0.0.0:22", "0.0.0.0:0", TCP_LISTEN, 3),
        ];
        let mut owners = Owners::default();
        owners.add(1, 10, "sshd");
        owners.add(2, 20, "sshd");
        owners.add(3, 30, "sshd");
        let facts = |uid, exe: &str, root_only| ProcessFacts {
            uid: Some(uid),
            exe: Some(exe.to_string()),
            exe_root_only: root_only,
        };
        owners
            .processes
            .insert(10, facts(110, "/usr/bin/python3.11", true));
        owners
            .processes
            .insert(20, facts(1000, "/home/alice/sshd", false));
        owners
            .processes
            .insert(30, facts(0, "/usr/sbin/sshd", true));
        let accounts = Accounts::from_texts(
            Some("UID_MIN 1000\n"),
            Some("redis:x:110:110::/:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n"),
        );
        let got = listeners(sockets, &owners, &ServiceTable::builtin(), &accounts);
        let by_port = |port| got.iter().find(|l| l.port == port).unwrap();
        let redis = by_port(6379);
        assert_eq!((redis.service.as_str(), redis.risky), ("redis", true));
        assert!(
            redis
                .name_note
                .as_deref()
                .unwrap()
                .contains("interpreter /usr/bin/python3.11"),
            "{:?}",
            redis.name_note
        );
        assert_eq!(redis.owners[0].user.as_deref(), Some("redis"));
        assert_eq!(by_port(2222).service, "unknown");
        assert!(
            by_port(2222)
                .name_note
                .as_deref()
                .unwrap()
                .contains("not root's alone")
        );
        assert_eq!(by_port(22).service, "ssh");
        assert_eq!(by_port(22).name_note, None);
        assert_eq!(
            (by_port(22).uid, by_port(22).user.as_deref()),
            (Some(0), None)
        );
    }

    #[test]
    fn a_users_rootless_container_is_said_to_be_one() {
        // podman's rootlessport for alice on 8081 (tproxy by its number,
        // as Debian's /etc/services says),
        // the same program run by root on 8082, and a python3 of alice's
        // calling itself rootlessport on 8083.
        let mut sockets = vec![
            entry(Proto::Tcp, "0.0.0.0:8081", "0.0.0.0:0", TCP_LISTEN, 1),
            entry(Proto::Tcp, "0.0.0.0:8082", "0.0.0.0:0", TCP_LISTEN, 2),
            entry(Proto::Tcp, "0.0.0.0:8083", "0.0.0.0:0", TCP_LISTEN, 3),
        ];
        sockets[0].uid = 1000;
        sockets[2].uid = 1000;
        let mut owners = Owners::default();
        owners.add(1, 10, "rootlessport");
        owners.add(2, 20, "rootlessport");
        owners.add(3, 30, "rootlessport");
        let facts = |uid, exe: &str| ProcessFacts {
            uid: Some(uid),
            exe: Some(exe.to_string()),
            exe_root_only: true,
        };
        owners
            .processes
            .insert(10, facts(1000, "/usr/libexec/podman/rootlessport"));
        owners
            .processes
            .insert(20, facts(0, "/usr/libexec/podman/rootlessport"));
        owners.processes.insert(30, facts(1000, "/usr/bin/python3"));
        let accounts = Accounts::from_texts(None, Some("alice:x:1000:1000::/home/alice:/bin/sh\n"));
        let names = ServiceTable::with_etc_services("tproxy 8081/tcp # Transparent Proxy\n");
        let got = listeners(sockets, &owners, &names, &accounts);
        let by_port = |port| got.iter().find(|l| l.port == port).unwrap();
        let alice = by_port(8081);
        assert_eq!(
            (alice.service.as_str(), alice.rootless_container.as_deref()),
            ("rootless-container", Some("alice"))
        );
        assert_ne!(
            by_port(8082).service,
            "rootless-container",
            "root's is no user's container"
        );
        assert_eq!(by_port(8082).rootless_container, None);
        assert_eq!(by_port(8083).service, "unknown", "an unproven name");
        assert_eq!(by_port(8083).rootless_container, None);
        assert_eq!(names.name_listener(Proto::Tcp, 8081, &[]), "tproxy");
    }

    #[test]
    fn client_sockets_are_a_processs_udp_on_ephemeral_ports() {
        let sockets = vec![
            entry(Proto::Udp, "0.0.0.0:45969", "0.0.0.0:0", TCP_CLOSE, 1),
            entry(Proto::Udp, "0.0.0.0:60001", "0.0.0.0:0", TCP_CLOSE, 2),
            entry(Proto::Udp, "0.0.0.0:4789", "0.0.0.0:0", TCP_CLOSE, 0),
            entry(Proto::Udp, "0.0.0.0:51000", "0.0.0.0:0", TCP_CLOSE, 0),
            entry(Proto::Udp, "0.0.0.0:123", "0.0.0.0:0", TCP_CLOSE, 3),
            entry(Proto::Tcp, "0.0.0.0:40000", "0.0.0.0:0", TCP_LISTEN, 4),
            entry(Proto::Udp, "0.0.0.0:61000", "0.0.0.0:0", TCP_CLOSE, 5),
        ];
        let mut owners = Owners::default();
        owners.add(1, 10, "ntpdate");
        owners.add(2, 20, "mosh-server");
        owners.add(3, 30, "chronyd");
        owners.add(4, 40, "app");
        owners.add(5, 50, "dig");
        daemons_own_names(&mut owners);
        let unmarked = listeners(
            sockets,
            &owners,
            &ServiceTable::builtin(),
            &Accounts::from_texts(None, None),
        );
        let mut got = unmarked.clone();
        mark_client_sockets(&mut got, Some((32768, 60999)));
        let clients: Vec<(Proto, u16)> = got
            .iter()
            .filter(|l| l.client_socket)
            .map(|l| (l.proto, l.port))
            .collect();
        // Not: mosh-server (serves there), the kernel's sockets (no process),
        // a port outside the range, TCP.
        assert_eq!(clients, [(Proto::Udp, 45969)]);
        // Without the range, nothing is called a client.
        let mut unknown = unmarked;
        mark_client_sockets(&mut unknown, None);
        assert_eq!(unknown.iter().filter(|l| l.client_socket).count(), 0);
    }

    #[test]
    fn interfaces_only_for_specific_addresses() {
        let sockets = vec![
            entry(Proto::Tcp, "10.9.0.5:9100", "0.0.0.0:0", TCP_LISTEN, 1),
            entry(
                Proto::Tcp,
                "[::ffff:10.9.0.5]:9101",
                "[::]:0",
                TCP_LISTEN,
                2,
            ),
            entry(Proto::Tcp, "0.0.0.0:22", "0.0.0.0:0", TCP_LISTEN, 3),
            entry(Proto::Tcp, "127.0.0.1:25", "0.0.0.0:0", TCP_LISTEN, 4),
            entry(Proto::Tcp, "[fe80::1]:80", "[::]:0", TCP_LISTEN, 5),
        ];
        let got = with_interfaces(
            sockets,
            &[
                ("10.9.0.5", "eth1"),
                ("127.0.0.1", "lo"),
                ("fe80::1", "eth0"),
            ],
        );
        let found: Vec<(u16, Option<&str>)> = got
            .iter()
            .map(|l| (l.port, l.interface.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (22, None),
                (25, None),
                (80, Some("eth0")),
                (9100, Some("eth1")),
                (9101, Some("eth1"))
            ]
        );
    }

    /// A socket bound to a device is its own listener, reached only from
    /// that device: a routing bridge's (even with a public address) or a
    /// private link's is not public; `lo`'s is loopback; a public link's
    /// stays public.
    #[test]
    fn device_bound_sockets_are_exposed_as_their_device() {
        let bound = |local: &str, inode, device: &str| SocketEntry {
            device: Some(device.to_string()),
            ..entry(Proto::Udp, local, "0.0.0.0:0", TCP_CLOSE, inode)
        };
        let sockets = vec![
            bound("0.0.0.0:67", 1, "virbr0"),
            bound("0.0.0.0:67", 2, "virbr1"),
            entry(Proto::Udp, "0.0.0.0:67", "0.0.0.0:0", TCP_CLOSE, 3),
            bound("0.0.0.0:161", 4, "eth1"),
            bound("0.0.0.0:162", 5, "eth0"),
            bound("0.0.0.0:163", 6, "lo"),
            bound("0.0.0.0:164", 7, "dummy0"),
        ];
        let got = with_interfaces(
            sockets,
            &[
                ("192.0.2.1", "virbr0"),
                ("10.9.0.5", "eth1"),
                ("fe80::1", "eth1"),
                ("203.0.113.10", "eth0"),
            ],
        );
        let found: Vec<(u16, String, Exposure, Option<&str>)> = got
            .iter()
            .map(|l| (l.port, l.address_text(), l.exposure, l.interface.as_deref()))
            .collect();
        use Exposure::*;
        assert_eq!(
            found,
            [
                (67, "0.0.0.0".into(), Public, None),
                (67, "0.0.0.0%virbr0".into(), Private, Some("virbr0")),
                (67, "0.0.0.0%virbr1".into(), Private, Some("virbr1")),
                (161, "0.0.0.0%eth1".into(), Private, Some("eth1")),
                (162, "0.0.0.0%eth0".into(), Public, Some("eth0")),
                (163, "0.0.0.0%lo".into(), Loopback, Some("lo")),
                (164, "0.0.0.0%dummy0".into(), Public, Some("dummy0")),
            ]
        );
    }

    #[test]
    fn classify_exact_ranges() {
        use Exposure::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.53", Loopback),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", Public), // just past fe80::/10
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("172.15.255.255", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("100.128.0.1", Public),
            ("100.63.255.255", Public),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fe00::1", Public),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.1.1", LinkLocal),
            ("::ffff:203.0.113.10", Public),
            ("0.0.0.0", Public),
            ("::", Public),
            ("192.0.2.1", Public),
            ("198.51.100.1", Public),
            ("203.0.113.10", Public),
            ("2001:db8::1", Public),
            ("8.8.8.8", Public),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn listeners_are_tcp_listen_and_unconnected_udp() {
        assert!(entry(Proto::Tcp, "0.0.0.0:22", "0.0.0.0:0", TCP_LISTEN, 1).is_listener());
        assert!(!entry(Proto::Tcp, "1.2.3.4:22", "5.6.7.8:999", TCP_ESTABLISHED, 1).is_listener());
        // A TCP socket in CLOSE (bound, not listening) is not a listener.
        assert!(!entry(Proto::Tcp, "0.0.0.0:22", "0.0.0.0:0", TCP_CLOSE, 1).is_listener());
        assert!(entry(Proto::Udp, "0.0.0.0:53", "0.0.0.0:0", TCP_CLOSE, 1).is_listener());
        assert!(entry(Proto::Udp, "[::]:53", "[::]:0", TCP_CLOSE, 1).is_listener());
        assert!(
            !entry(
                Proto::Udp,
                "10.0.0.1:40000",
                "9.9.9.9:53",
                TCP_ESTABLISHED,
                1
            )
            .is_listener()
        );
        // Belt and braces: a peer address means connected whatever the state says.
        assert!(!entry(Proto::Udp, "10.0.0.1:40000", "9.9.9.9:53", TCP_CLOSE, 1).is_listener());
    }

    #[test]
    fn join_dedups_names_flags_and_keeps_unowned() {
        let sockets = vec![
            // apache2: master and two workers share one socket; a reuseport
            // twin on the same address adds another owner.
            entry(Proto::Tcp, "0.0.0.0:8080", "0.0.0.0:0", TCP_LISTEN, 10),
            entry(Proto::Tcp, "0.0.0.0:8080", "0.0.0.0:0", TCP_LISTEN, 11),
            entry(Proto::Tcp, "[::]:8080", "[::]:0", TCP_LISTEN, 12),
            entry(Proto::Tcp, "0.0.0.0:3306", "0.0.0.0:0", TCP_LISTEN, 20),
            entry(Proto::Tcp, "127.0.0.1:6379", "0.0.0.0:0", TCP_LISTEN, 30),
            entry(Proto::Udp, "0.0.0.0:51820", "0.0.0.0:0", TCP_CLOSE, 0),
            // Not listeners: never listed.
            entry(
                Proto::Tcp,
                "1.2.3.4:8080",
                "5.6.7.8:4444",
                TCP_ESTABLISHED,
                40,
            ),
            entry(
                Proto::Udp,
                "1.2.3.4:5000",
                "5.6.7.8:53",
                TCP_ESTABLISHED,
                41,
            ),
        ];
        let mut owners = Owners::default();
        owners.add(10, 590, "apache2");
        owners.add(10, 592, "apache2");
        owners.add(10, 591, "apache2");
        owners.add(11, 600, "apache2");
        owners.add(12, 590, "apache2");
        owners.add(20, 296, "mysqld");
        owners.add(30, 700, "redis-server");
        owners.add(40, 590, "apache2");
        daemons_own_names(&mut owners);
        let got = listeners(
            sockets,
            &owners,
            &ServiceTable::builtin(),
            &Accounts::from_texts(None, None),
        );
        let summary: Vec<String> = got
            .iter()
            .map(|l| {
                format!(
                    "{} {} {} {} {} {} {:?} {}",
                    l.proto, l.address, l.port, l.exposure, l.service, l.process, l.pids, l.risky
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "tcp 0.0.0.0 3306 public mysql mysqld [296] true",
                "tcp 127.0.0.1 6379 loopback redis redis-server [700] false",
                "tcp 0.0.0.0 8080 public http apache2 [590, 591, 592, 600] false",
                "tcp :: 8080 public http apache2 [590] false",
                // Kernel-owned (WireGuard): no process, named by port.
                "udp 0.0.0.0 51820 public wireguard  [] false",
            ]
        );
    }

    #[test]
    fn several_programs_on_one_socket_are_all_named() {
        let sockets = vec![entry(
            Proto::Tcp,
            "0.0.0.0:7000",
            "0.0.0.0:0",
            TCP_LISTEN,
            1,
        )];
        let mut owners = Owners::default();
        owners.add(1, 20, "sshd");
        owners.add(1, 10, "launcher");
        daemons_own_names(&mut owners);
        let got = listeners(
            sockets,
            &owners,
            &ServiceTable::builtin(),
            &Accounts::from_texts(None, None),
        );
        assert_eq!(got[0].process, "launcher,sshd");
        assert_eq!(got[0].pids, [10, 20]);
        assert_eq!(got[0].service, "ssh");
    }
}
