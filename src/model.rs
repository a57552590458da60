//! The data every stage shares: what `scan` finds and what `propose` reads.
//!
//! These types are also the `scan --json` schema (see `docs/json-schema.md`),
//! so `propose --from FILE` can read a scan saved on another machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `tcp` or `udp`, as rules, engines and `/etc/services` spell them.
    pub fn from_name(name: &str) -> Option<Proto> {
        match name {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }

    /// As shown and written in rules: `tcp`, `udp`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who can reach an address: decides whether a listener needs a rule.
/// Ordered from the most closed to the most open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    Loopback,
    LinkLocal,
    Private,
    Public,
}

impl Exposure {
    /// As shown: `loopback`, `link-local`, `private`, `public`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Exposure::Loopback => "loopback",
            Exposure::LinkLocal => "link-local",
            Exposure::Private => "private",
            Exposure::Public => "public",
        }
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One listening endpoint: a distinct (proto, address, port), with every
/// process that holds a socket on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub proto: Proto,
    pub address: IpAddr,
    /// Never 0 (nothing listens there): a saved scan saying so is refused
    /// where it says it, with its line.
    #[serde(deserialize_with = "listening_port")]
    pub port: u16,
    pub exposure: Exposure,
    /// Common service name (`ssh`, `http`, ...) or `unknown`.
    #[serde(deserialize_with = "short_text")]
    pub service: String,
    /// The owning program names joined by `,` (`sshd`), or empty when no
    /// owner could be read.
    #[serde(deserialize_with = "short_text")]
    pub process: String,
    /// Every owning pid, ascending.
    pub pids: Vec<u32>,
    /// True for a database, cache or admin service that is not loopback-only:
    /// almost always an accident, so `propose` keeps it closed by default.
    pub risky: bool,
    /// The socket's owner uid, as the kernel records it (sock_diag and
    /// `/proc/net` both carry it); the highest when several sockets share the
    /// endpoint, as that is the one trust depends on. `None` in scans saved
    /// before autofw recorded it.
    #[serde(default)]
    pub uid: Option<u32>,
    /// The account name of `uid` on the scanned host, if it has one.
    #[serde(default, deserialize_with = "short_text_opt")]
    pub user: Option<String>,
    /// Every process holding the socket, with who runs it and what it runs.
    /// Empty for kernel sockets, unreadable processes and older scans.
    #[serde(default)]
    pub owners: Vec<Owner>,
    /// Why the listener is not named after its program although the program
    /// name is a known one (`sshd` run by python3): a name is only taken from
    /// a program that can prove it (see `trust::program_name_problem`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "short_text_opt"
    )]
    pub name_note: Option<String>,
    /// The interface holding `address`, for a listener bound to one
    /// address (not a wildcard, not loopback): `propose` matches it with
    /// `iifname` when the address is private or link-local.
    #[serde(default, deserialize_with = "interface_name_opt")]
    pub interface: Option<String>,
    /// The device the socket is bound to (`SO_BINDTODEVICE`, or an IPv6
    /// link-local address's scope): the kernel delivers it only packets
    /// that arrive on that interface, whatever its address says. dnsmasq,
    /// as libvirt starts it, binds DHCP as `0.0.0.0%virbr0:67`. Read from
    /// sock_diag (`idiag_if`); `/proc/net` cannot tell, so scans read from
    /// there have none. `propose` matches it with `iifname`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "interface_name_opt"
    )]
    pub device: Option<String>,
    /// An unconnected UDP socket of a process on an ephemeral port: a
    /// resolver's or an NTP client's, not a service (see docs/scan.md).
    /// Hidden by `scan` without `--all`; `propose` opens nothing for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_socket: bool,
    /// What in the kernel holds a socket no process holds (`VXLAN device
    /// vx0 (VNI 42)...`, WireGuard, nfsd): never "owner unknown" when the
    /// kernel can say.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "short_text_opt"
    )]
    pub kernel: Option<String>,
    /// The systemd socket unit that declared a socket PID 1 holds for
    /// socket activation (`ssh.socket`); it names the service.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "short_text_opt"
    )]
    pub unit: Option<String>,
    /// Where the host forwards this port (`172.17.0.2:80`): a DNAT in a nat
    /// prerouting hook sends its packets through FORWARD, not INPUT. `None`
    /// for an ordinary listener.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "short_text_opt"
    )]
    pub forwarded_to: Option<String>,
    /// The container that publishes the port, as Docker or podman names it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "short_text_opt"
    )]
    pub container: Option<String>,
    /// The account (name, or uid) whose rootless container engine publishes
    /// the port: podman's `rootlessport` or rootless Docker's `rootlesskit`
    /// holds it on the host for that user's containers. The listener is
    /// then named `rootless-container`, not by its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_container: Option<String>,
}

/// The longest text a saved scan may hold in one field: a path (an
/// executable's, at most `PATH_MAX`) is the longest a scan writes; process
/// and interface names are 15 bytes. A longer one was not written by
/// `autofw scan`, and would be quoted whole in rules and messages.
pub(crate) const MAX_FIELD_BYTES: usize = 4096;

/// A text field of a saved scan, refused past [`MAX_FIELD_BYTES`] where it
/// is (serde_json then names its line and column).
fn short_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match text.len() {
        n if n > MAX_FIELD_BYTES => Err(serde::de::Error::custom(format!(
            "a text of {n} bytes, where a scan writes at most {MAX_FIELD_BYTES}"
        ))),
        _ => Ok(text),
    }
}

fn short_text_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) if text.len() > MAX_FIELD_BYTES => Err(serde::de::Error::custom(format!(
            "a text of {} bytes, where a scan writes at most {MAX_FIELD_BYTES}",
            text.len()
        ))),
        text => Ok(text),
    }
}

/// An interface name from a saved scan: it becomes `iifname "NAME"` /
/// `-i NAME`, so only a name the kernel could have given an interface,
/// refused where it is (serde_json then names its line and column).
fn interface_name_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(name) if !is_interface_name(&name) => Err(serde::de::Error::custom(format!(
            "`{}` is not an interface name (1 to 15 characters, letters, digits and `-_.@+`)",
            crate::terminal::excerpt(&name)
        ))),
        name => Ok(name),
    }
}

/// A name Linux could give an interface (`dev_valid_name`: 1 to 15 bytes,
/// no `/`, `:` or blank, not `.` or `..`), narrowed to what names are made
/// of in practice, so that it needs no escaping in any rule language.
pub(crate) fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))
}

/// A listener's port from a saved scan: 1 to 65535.
fn listening_port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    match u16::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "a listener has port 0, which nothing can listen on",
        )),
        port => Ok(port),
    }
}

impl Listener {
    /// A socket at `address:port` that nothing is known about yet: no owner,
    /// no name, no notes. Each reader fills in what it finds.
    pub fn bare(proto: Proto, address: IpAddr, port: u16, exposure: Exposure) -> Listener {
        Listener {
            proto,
            address,
            port,
            exposure,
            service: String::new(),
            process: String::new(),
            pids: Vec::new(),
            risky: false,
            uid: None,
            user: None,
            owners: Vec::new(),
            name_note: None,
            interface: None,
            device: None,
            client_socket: false,
            kernel: None,
            unit: None,
            forwarded_to: None,
            container: None,
            rootless_container: None,
        }
    }
}

/// One process that holds a listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// `/proc/PID/comm`: what the process calls itself (any process can
    /// change it, so it names a service only when its executable agrees).
    #[serde(deserialize_with = "short_text")]
    pub program: String,
    /// The effective uid, from `/proc/PID/status`.
    #[serde(default)]
    pub uid: Option<u32>,
    /// The account name of `uid` on the scanned host, if it has one.
    #[serde(default, deserialize_with = "short_text_opt")]
    pub user: Option<String>,
    /// Where `/proc/PID/exe` points, if it could be read.
    #[serde(default, deserialize_with = "short_text_opt")]
    pub exe: Option<String>,
    /// The executable is owned by root and writable by no one else, so only
    /// root could have put this program there.
    #[serde(default)]
    pub exe_root_only: bool,
}

/// The result of a scan: the listeners, plus what could not be seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub listeners: Vec<Listener>,
    /// Processes whose file descriptors could not be read (not root): their
    /// sockets show with no owner. Said to the user, never silently dropped.
    #[serde(default)]
    pub unreadable_processes: usize,
    /// Those of them the scan could name: each pid, with its `comm` where
    /// even that was readable, so the operator knows which process to look
    /// at. Empty in older scans and in fixtures that only count them.
    #[serde(default)]
    pub unreadable: Vec<UnreadableProcess>,
    /// Whether the host routes (containers, VMs): decides what `propose`
    /// does with FORWARD. Part of the scan so that `propose --from FILE`
    /// drafts for the machine the scan came from.
    #[serde(default)]
    pub host: HostFacts,
    /// `UID_MIN` of the scanned host's `/etc/login.defs` (1000 if it does not
    /// say): uids below it are system accounts. `None` in scans saved before
    /// autofw recorded owners; `propose` then opens as it used to, and says so.
    #[serde(default)]
    pub uid_min: Option<u32>,
    /// Whether the scan ran as root: decides how a warning about unreadable
    /// processes is worded (a missing sudo, or a hardened `/proc`).
    #[serde(default)]
    pub as_root: Option<bool>,
}

/// A process whose file descriptors the scan could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableProcess {
    pub pid: u32,
    /// `/proc/PID/comm`, when it could be read.
    #[serde(default)]
    pub program: Option<String>,
}

/// How many named processes [`Scan::unreadable_named`] lists before it says
/// "and N more".
const UNREADABLE_NAMED: usize = 5;

impl Scan {
    /// The unreadable processes the scan could name, for the note that
    /// counts them: `pid 4242 (openvpn)`, `pids 4242 (openvpn), 4250 and 3
    /// more`; `None` when it named none.
    pub fn unreadable_named(&self) -> Option<String> {
        let named = &self.unreadable;
        if named.is_empty() {
            return None;
        }
        let mut items: Vec<String> = named
            .iter()
            .take(UNREADABLE_NAMED)
            .map(|p| match &p.program {
                Some(program) => format!("{} ({program})", p.pid),
                None => p.pid.to_string(),
            })
            .collect();
        let more = self.unreadable_processes.max(named.len()) - items.len();
        let prefix = if items.len() == 1 && more == 0 {
            "pid"
        } else {
            "pids"
        };
        let last = if more > 0 {
            format!("{more} more")
        } else {
            items.pop().unwrap_or_default()
        };
        Some(if items.is_empty() {
            format!("{prefix} {last}")
        } else {
            format!("{prefix} {} and {last}", items.join(", "))
        })
    }
}

/// Facts about the host, beyond its sockets, that shape the ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `net.ipv4.ip_forward` or `net.ipv6.conf.all.forwarding` is on.
    #[serde(default)]
    pub ip_forward: bool,
    /// Container and VM bridges present (docker0, br-*, virbr*, lxdbr*,
    /// cni-podman*, podman*), sorted: their traffic crosses FORWARD.
    #[serde(default)]
    pub bridges: Vec<String>,
    /// `net.ipv4.ip_local_port_range`: the ports the kernel picks for
    /// client sockets (also used for IPv6). `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port_range: Option<(u16, u16)>,
}

/// Bridge name prefixes that Docker, libvirt, LXD/Incus, LXC, podman and
/// Kubernetes CNI plugins create: traffic to their guests crosses FORWARD.
pub(crate) const ROUTING_BRIDGES: &[&str] = &[
    "docker",
    "br-",
    "virbr",
    "lxdbr",
    "incusbr",
    "lxcbr",
    "cni-podman",
    "podman",
    "cni",
    "kube-bridge",
];

impl Listener {
    /// `0.0.0.0`, or `0.0.0.0%virbr0` for a socket bound to a device (as
    /// `ss` writes it).
    pub fn address_text(&self) -> String {
        match &self.device {
            Some(device) => format!("{}%{device}", self.address),
            None => self.address.to_string(),
        }
    }
}

/// Is this interface a bridge that containers or VMs route through?
pub(crate) fn is_routing_bridge(name: &str) -> bool {
    ROUTING_BRIDGES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_processes_are_named_up_to_five() {
        let process = |pid: u32, program: Option<&str>| UnreadableProcess {
            pid,
            program: program.map(str::to_string),
        };
        let mut scan = Scan {
            unreadable_processes: 1,
            ..Scan::default()
        };
        assert_eq!(scan.unreadable_named(), None, "counted, not named");
        scan.unreadable = vec![process(4242, Some("openvpn"))];
        assert_eq!(scan.unreadable_named().unwrap(), "pid 4242 (openvpn)");
        scan.unreadable.push(process(4250, None));
        scan.unreadable_processes = 2;
        assert_eq!(
            scan.unreadable_named().unwrap(),
            "pids 4242 (openvpn) and 4250"
        );
        scan.unreadable = (1..=7).map(|pid| process(pid, Some("x"))).collect();
        scan.unreadable_processes = 9;
        assert_eq!(
            scan.unreadable_named().unwrap(),
            "pids 1 (x), 2 (x), 3 (x), 4 (x), 5 (x) and 4 more"
        );
    }
}
