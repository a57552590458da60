//! Listeners grouped by (port, proto): what propose decides about and what
//! status compares, named and described the same way in both. Pure.

use crate::model::{Exposure, Listener, Proto, Scan};
use crate::trust::{self, OwnerTrust};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Programs whose listening socket only stands in for a port that Docker
/// publishes with DNAT (the packets then cross FORWARD, not INPUT). Not
/// the rootless engines' forwarders (`services::ROOTLESS_PROXIES`): theirs
/// are the host's sockets, which INPUT governs.
pub(crate) const DOCKER_PROXIES: &[&str] = &["docker-proxy"];

/// Every listener on one (proto, port), merged.
#[derive(Debug, Default)]
pub(crate) struct PortGroup {
    services: Vec<String>,
    programs: Vec<String>,
    pids: Vec<u32>,
    /// Where it listens, sorted.
    pub addresses: Vec<IpAddr>,
    /// The same as people read it: `0.0.0.0%virbr0` for a socket bound to
    /// a device, sorted.
    places: Vec<String>,
    /// The widest exposure of its listeners.
    pub exposure: Option<Exposure>,
    /// A database, cache or admin service (scan's `risky`).
    pub risky: bool,
    /// A Docker proxy holds the port: Docker forwards it past INPUT.
    pub docker_proxy: bool,
    /// Where the host forwards the port with DNAT (`172.17.0.2:80`), sorted.
    pub forwarded_to: Vec<String>,
    /// The containers that publish it, sorted.
    pub containers: Vec<String>,
    /// Why an owner is not trusted to have the port opened unasked (the
    /// first listener that fails [`trust::judge_owners`]).
    pub distrust: Option<String>,
    /// What in the kernel holds it, for a socket no process holds.
    kernel: Vec<String>,
    /// The systemd socket units that hold it for a service.
    units: Vec<String>,
}

impl PortGroup {
    /// Add a listener; `uid_min` is the scan's, for the trust judgement.
    /// The lists stay unsorted until [`PortGroup::of`] tidies them.
    fn add(&mut self, l: &Listener, uid_min: Option<u32>) {
        if self.distrust.is_none()
            && let OwnerTrust::NotSystem { reason } = trust::judge_owners(l, uid_min)
        {
            self.distrust = Some(reason);
        }
        self.services.push(l.service.clone());
        for program in l.process.split(',').filter(|p| !p.is_empty()) {
            self.programs.push(program.to_string());
        }
        self.pids.extend(&l.pids);
        self.kernel.extend(l.kernel.clone());
        self.units.extend(l.unit.clone());
        self.addresses.push(l.address);
        self.places.push(l.address_text());
        self.exposure = self.exposure.max(Some(l.exposure));
        self.risky |= l.risky;
        // Only a proven name: any process can call itself docker-proxy.
        self.docker_proxy |= trust::trusted_programs(l)
            .iter()
            .any(|p| DOCKER_PROXIES.contains(p));
        self.forwarded_to.extend(l.forwarded_to.clone());
        self.containers.extend(l.container.clone());
    }

    /// Every listener of `listeners` in one group, its lists sorted and
    /// without repeats. Sorted once, after the last listener: sorting on
    /// every `add` made a port held by many listeners quadratic (issue 21).
    pub(crate) fn of<'a>(
        listeners: impl IntoIterator<Item = &'a Listener>,
        uid_min: Option<u32>,
    ) -> Self {
        let mut group = PortGroup::default();
        for l in listeners {
            group.add(l, uid_min);
        }
        group.tidy();
        group
    }

    /// Sort and deduplicate what `add` collected.
    fn tidy(&mut self) {
        for v in [
            &mut self.services,
            &mut self.programs,
            &mut self.kernel,
            &mut self.units,
            &mut self.forwarded_to,
            &mut self.containers,
            &mut self.places,
        ] {
            v.sort_unstable();
            v.dedup();
        }
        self.pids.sort_unstable();
        self.pids.dedup();
        self.addresses.sort_unstable();
        self.addresses.dedup();
    }

    /// The name to call it by: a known name over `unknown`.
    pub(crate) fn service(&self) -> &str {
        self.services
            .iter()
            .find(|s| *s != "unknown")
            .or(self.services.first())
            .map_or("unknown", String::as_str)
    }

    /// `sshd, pid 630` / `dovecot, pids 261, 262` / `systemd for
    /// ssh.socket, pid 1` / `the kernel: VXLAN device ...` / `owner unknown` /
    /// `container cache, forwarded to 172.17.0.3:6379`.
    pub(crate) fn owner(&self) -> String {
        let forwarded = self.forwarding();
        let programs = if !self.programs.is_empty() {
            let mut programs = self.programs.join(", ");
            if !self.units.is_empty() {
                programs.push_str(&format!(" for {}", self.units.join(", ")));
            }
            programs
        } else if !self.kernel.is_empty() {
            self.kernel.join("; ")
        } else if let Some(forwarded) = &forwarded {
            return forwarded.clone();
        } else {
            "owner unknown".to_string()
        };
        let owner = match self.pids.as_slice() {
            [] => programs,
            [pid] => format!("{programs}, pid {pid}"),
            pids => {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                format!("{programs}, pids {}", pids.join(", "))
            }
        };
        match forwarded {
            Some(forwarded) => format!("{owner}; {forwarded}"),
            None => owner,
        }
    }

    /// `container cache, forwarded to 172.17.0.3:6379`, or `None` for a
    /// port the host does not forward.
    fn forwarding(&self) -> Option<String> {
        if self.forwarded_to.is_empty() {
            return None;
        }
        let to = format!("forwarded to {}", self.forwarded_to.join(", "));
        Some(match self.containers.as_slice() {
            [] => to,
            [one] => format!("container {one}, {to}"),
            many => format!("containers {}, {to}", many.join(", ")),
        })
    }

    /// `http (nginx, pid 12)` or `an unnamed service (stray, pid 13)`.
    pub(crate) fn describe(&self) -> String {
        match self.service() {
            "unknown" => format!("an unnamed service ({})", self.owner()),
            service => format!("{service} ({})", self.owner()),
        }
    }

    /// `192.0.2.1, 2001:db8::1`, `0.0.0.0%virbr0`.
    pub(crate) fn addresses_text(&self) -> String {
        self.places.join(", ")
    }
}

/// Services beyond loopback, one group per (port, proto), sorted. Client
/// sockets are not services: their port moves with every restart, so they
/// are neither opened nor drift.
pub(crate) fn beyond_loopback(scan: &Scan) -> BTreeMap<(u16, Proto), PortGroup> {
    let mut members: BTreeMap<(u16, Proto), Vec<&Listener>> = BTreeMap::new();
    for l in &scan.listeners {
        if l.exposure != Exposure::Loopback && !l.client_socket {
            members.entry((l.port, l.proto)).or_default().push(l);
        }
    }
    members
        .into_iter()
        .map(|(key, listeners)| (key, PortGroup::of(listeners, scan.uid_min)))
        .collect()
}
