//! The pure core of `scan`: which socket table entries are listeners, who can
//! reach an address, and how sockets and their owners become one
//! [`Listener`] per (proto, address, port).
//!
//! Nothing here touches the host: the edges ([`super::procnet`],
//! [`super::netlink`], [`super::owners`]) hand in plain values, so every rule
//! is tested on fixtures and literals.

use crate::model::{Exposure, Listener, Proto};
use crate::services::{ServiceTable, is_risky};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Kernel socket states (`include/net/tcp_states.h`). `/proc/net/*` and
/// sock_diag both report them, for UDP too: a connected UDP socket is
/// `TCP_ESTABLISHED`, an unconnected one `TCP_CLOSE`.
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_CLOSE: u8 = 7;
pub const TCP_LISTEN: u8 = 10;

/// One row of a kernel socket table, from `/proc/net/*` or sock_diag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's state number (see [`TCP_LISTEN`]).
    pub state: u8,
    /// The socket's inode: what `/proc/PID/fd/N` links to as `socket:[INODE]`.
    pub inode: u64,
}

/// Can a socket in `state` be a listener at all? The state alone decides for
/// TCP; UDP also needs an unset peer ([`SocketEntry::is_listener`]). Shared
/// by the `/proc` reader (to skip the 20,000 established lines of a busy host
/// without parsing them) and the netlink request (to filter in the kernel).
pub fn may_listen(proto: Proto, state: u8) -> bool {
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
    pub fn is_listener(&self) -> bool {
        may_listen(self.proto, self.state)
            && match self.proto {
                Proto::Tcp => true,
                Proto::Udp => self.remote.port() == 0 && self.remote.ip().is_unspecified(),
            }
    }
}

/// Who owns which sockets: what the fd walk (or a saved owner map) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owners {
    /// Socket inode → every pid that holds it open (a shared listening
    /// socket has several: a master and its workers).
    pub pids_by_inode: HashMap<u64, BTreeSet<u32>>,
    /// Pid → program name (`/proc/PID/comm`).
    pub programs: HashMap<u32, String>,
    /// Processes whose descriptors could not be read: their sockets show
    /// with fewer owners, or none.
    pub unreadable: usize,
}

impl Owners {
    /// Record that `pid` (running `program`) holds socket `inode`.
    pub fn add(&mut self, inode: u64, pid: u32, program: &str) {
        self.pids_by_inode.entry(inode).or_default().insert(pid);
        self.programs
            .entry(pid)
            .or_insert_with(|| program.to_string());
    }
}

/// Who can reach `ip`: the exact ranges of issue 2. IPv4-mapped IPv6
/// (`::ffff:127.0.0.1`) is classified as its IPv4 address; wildcards
/// (`0.0.0.0`, `::`) are public, and so are the documentation ranges, so a
/// test host in a namespace behaves like a real VPS.
pub fn classify(ip: IpAddr) -> Exposure {
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
/// groups, a master and its workers), classify, name and flag each.
/// Sorted by proto, port, then address, so the same host always prints the
/// same way.
pub fn listeners(
    sockets: impl IntoIterator<Item = SocketEntry>,
    owners: &Owners,
    names: &ServiceTable,
) -> Vec<Listener> {
    let mut groups: BTreeMap<(Proto, u16, IpAddr), BTreeSet<u32>> = BTreeMap::new();
    for socket in sockets.into_iter().filter(SocketEntry::is_listener) {
        let pids = groups
            .entry((socket.proto, socket.local.port(), socket.local.ip()))
            .or_default();
        if let Some(owning) = owners.pids_by_inode.get(&socket.inode) {
            pids.extend(owning);
        }
    }
    groups
        .into_iter()
        .map(|((proto, port, address), pids)| {
            let programs: BTreeSet<&str> = pids
                .iter()
                .filter_map(|pid| owners.programs.get(pid))
                .map(String::as_str)
                .collect();
            let programs: Vec<&str> = programs.into_iter().collect();
            let exposure = classify(address);
            let service = names.name_listener(proto, port, &programs);
            let risky = exposure != Exposure::Loopback && is_risky(&service);
            Listener {
                proto,
                address,
                port,
                exposure,
                process: programs.join(","),
                pids: pids.into_iter().collect(),
                service,
                risky,
                forwarded_to: None,
                container: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn entry(proto: Proto, local: &str, remote: &str, state: u8, inode: u64) -> SocketEntry {
        SocketEntry {
            proto,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            inode,
        }
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
        let got = listeners(sockets, &owners, &ServiceTable::builtin());
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
        let got = listeners(sockets, &owners, &ServiceTable::builtin());
        assert_eq!(got[0].process, "launcher,sshd");
        assert_eq!(got[0].pids, [10, 20]);
        assert_eq!(got[0].service, "ssh");
    }
}
