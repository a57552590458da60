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

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
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

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exposure::Loopback => "loopback",
            Exposure::LinkLocal => "link-local",
            Exposure::Private => "private",
            Exposure::Public => "public",
        })
    }
}

/// One listening endpoint: a distinct (proto, address, port), with every
/// process that holds a socket on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub proto: Proto,
    pub address: IpAddr,
    pub port: u16,
    pub exposure: Exposure,
    /// Common service name (`ssh`, `http`, ...) or `unknown`.
    pub service: String,
    /// The owning program names joined by `,` (`sshd`), or empty when no
    /// owner could be read.
    pub process: String,
    /// Every owning pid, ascending.
    pub pids: Vec<u32>,
    /// True for a database, cache or admin service that is not loopback-only:
    /// almost always an accident, so `propose` keeps it closed by default.
    pub risky: bool,
    /// Where the host forwards this port (`172.17.0.2:80`): a DNAT in a nat
    /// prerouting hook sends its packets through FORWARD, not INPUT. `None`
    /// for an ordinary listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<String>,
    /// The container that publishes the port, as Docker or podman names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// The result of a scan: the listeners, plus what could not be seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub listeners: Vec<Listener>,
    /// Processes whose file descriptors could not be read (not root): their
    /// sockets show with no owner. Said to the user, never silently dropped.
    #[serde(default)]
    pub unreadable_processes: usize,
    /// Whether the host routes (containers, VMs): decides what `propose`
    /// does with FORWARD. Part of the scan so that `propose --from FILE`
    /// drafts for the machine the scan came from.
    #[serde(default)]
    pub host: HostFacts,
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
}
