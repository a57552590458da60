//! Sockets no process holds, and sockets systemd holds for a service: who
//! they belong to, from what the kernel and systemd say of themselves.
//!
//! - The kernel's own listeners: VXLAN and GENEVE devices (their UDP port,
//!   from `ip -d -j link`'s link info), WireGuard (`wg show all
//!   listen-port`), the NFS server (`/proc/fs/nfsd/portlist`). A scan would
//!   otherwise say "owner unknown" where the kernel can say.
//! - systemd socket activation: PID 1 holds the socket (`ssh.socket` on
//!   Ubuntu 24.04, where sshd no longer owns port 22), and the unit that
//!   declared it names the service (`systemctl list-sockets`).
//!
//! Pure: the texts are handed in by the edges (`host.rs`) or read from a
//! fixture directory.

use crate::model::{Listener, Proto};
use crate::services::{ServiceTable, is_risky_listener};
use std::net::{IpAddr, SocketAddr};

/// A listening socket the kernel itself holds, and what holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelSocket {
    pub proto: Proto,
    pub port: u16,
    /// The service name it is listed under (`vxlan`, `wireguard`, `nfs`).
    pub service: String,
    /// `VXLAN device vx0 (VNI 42)`: said in the scan and the proposal.
    pub description: String,
}

/// The VXLAN and GENEVE devices in `ip -d -j link show` output, with their
/// UDP ports, and the WireGuard devices (whose ports `wg` tells).
pub(crate) fn tunnels_of_ip_link(json: &str) -> Result<Vec<KernelSocket>, String> {
    let links: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("not `ip -j link` output: {e}"))?;
    let mut found = Vec::new();
    for link in &links {
        let name = link["ifname"].as_str().unwrap_or("?");
        let info = &link["linkinfo"];
        let data = &info["info_data"];
        let port = data["port"].as_u64().and_then(|p| u16::try_from(p).ok());
        let id = data["id"].as_u64();
        let (service, kind) = match info["info_kind"].as_str() {
            Some("vxlan") => ("vxlan", "VXLAN"),
            Some("geneve") => ("geneve", "GENEVE"),
            _ => continue,
        };
        // GENEVE and VXLAN fall back to their default ports when none is set.
        let port = port.unwrap_or(if service == "vxlan" { 8472 } else { 6081 });
        let vni = id.map(|id| format!(" (VNI {id})")).unwrap_or_default();
        found.push(KernelSocket {
            proto: Proto::Udp,
            port,
            service: service.to_string(),
            description: format!(
                "{kind} device {name}{vni}: unauthenticated layer-2 tunnel, held by the kernel"
            ),
        });
    }
    Ok(found)
}

/// `wg show all listen-port` output: `wg0\t51820` per device.
pub(crate) fn wireguard_of_wg(text: &str) -> Vec<KernelSocket> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (name, port) = (fields.next()?, fields.next()?.parse::<u16>().ok()?);
            (port != 0).then(|| KernelSocket {
                proto: Proto::Udp,
                port,
                service: "wireguard".to_string(),
                description: format!("WireGuard device {name}, held by the kernel"),
            })
        })
        .collect()
}

/// `/proc/fs/nfsd/portlist` (`tcp 2049`, `udp 2049`): the kernel NFS server.
pub(crate) fn nfsd_of_portlist(text: &str) -> Vec<KernelSocket> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let proto = Proto::from_name(fields.next()?)?;
            let port = fields.next()?.parse::<u16>().ok()?;
            Some(KernelSocket {
                proto,
                port,
                service: "nfs".to_string(),
                description: "the kernel NFS server (nfsd)".to_string(),
            })
        })
        .collect()
}

/// Give the kernel's sockets their owner: a listener no process holds, on
/// the port of a tunnel or server the kernel runs, is named and flagged
/// after it (VXLAN and GENEVE are risky: anyone who reaches them injects
/// frames into the bridged network; WireGuard authenticates every packet).
pub(crate) fn describe_kernel_sockets(listeners: &mut [Listener], kernel: &[KernelSocket]) {
    for l in listeners.iter_mut().filter(|l| l.pids.is_empty()) {
        if let Some(k) = kernel
            .iter()
            .find(|k| k.proto == l.proto && k.port == l.port)
        {
            l.service = k.service.clone();
            l.kernel = Some(k.description.clone());
            l.risky = is_risky_listener(&l.service, l.exposure);
        }
    }
}

/// A socket systemd listens on for a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketUnit {
    pub proto: Proto,
    pub local: SocketAddr,
    /// `ssh.socket`.
    pub unit: String,
}

/// `systemctl list-sockets --all --show-types --full --no-legend
/// --no-pager` output: `LISTEN TYPE UNIT ACTIVATES...`, one socket a line.
/// Only IP sockets are kept (`[::]:22 Stream ssh.socket ssh.service`); unix
/// paths, netlink and FIFOs are not listeners a firewall sees.
pub(crate) fn parse_list_sockets(text: &str) -> Vec<SocketUnit> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let listen = fields.next()?;
            let proto = match fields.next()? {
                "Stream" => Proto::Tcp,
                "Datagram" => Proto::Udp,
                _ => return None,
            };
            let unit = fields.next()?.to_string();
            let local: SocketAddr = listen.parse().ok()?;
            Some(SocketUnit { proto, local, unit })
        })
        .collect()
}

/// Is this listener held by systemd itself (PID 1), for socket activation?
pub(crate) fn held_by_systemd(l: &Listener) -> bool {
    l.owners
        .iter()
        .any(|o| o.pid == 1 && o.program == "systemd")
}

/// Name the listeners PID 1 holds after the socket unit that declared them
/// (`ssh.socket` → ssh), falling back to the port when the unit's name says
/// nothing known. The unit is recorded in `unit`.
pub(crate) fn name_socket_units(
    listeners: &mut [Listener],
    units: &[SocketUnit],
    names: &ServiceTable,
) {
    for l in listeners.iter_mut().filter(|l| held_by_systemd(l)) {
        let same_address = |u: &&SocketUnit| {
            let (a, b): (IpAddr, IpAddr) = (u.local.ip().to_canonical(), l.address.to_canonical());
            a == b || (a.is_unspecified() && b.is_unspecified())
        };
        let Some(unit) = units
            .iter()
            .filter(|u| u.proto == l.proto && u.local.port() == l.port)
            .find(same_address)
        else {
            continue;
        };
        let stem = unit.unit.strip_suffix(".socket").unwrap_or(&unit.unit);
        // A template instance (`foo@1.socket`) is named by its template.
        let stem = stem.split('@').next().unwrap_or(stem);
        l.service = names.name_of_unit(l.proto, l.port, stem);
        l.unit = Some(unit.unit.clone());
        l.risky = is_risky_listener(&l.service, l.exposure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Owner;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/kernel")
                .join(name),
        )
        .unwrap()
    }

    fn unowned(proto: Proto, address: &str, port: u16) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        Listener {
            service: "unknown".into(),
            uid: Some(0),
            user: Some("root".into()),
            ..Listener::bare(proto, address, port, crate::scan::core::classify(address))
        }
    }

    #[test]
    fn vxlan_devices_from_this_kernel() {
        // Captured from `ip -d -j link show` in a namespace with two VXLAN
        // devices, one on the IANA port and one on Linux's default.
        let found = tunnels_of_ip_link(&fixture("ip-link-vxlan.json")).unwrap();
        let ports: Vec<(u16, &str)> = found.iter().map(|k| (k.port, k.service.as_str())).collect();
        assert_eq!(ports, [(4789, "vxlan"), (8472, "vxlan")]);
        assert!(
            found[0]
                .description
                .starts_with("VXLAN device vx0 (VNI 42)")
        );
        assert!(tunnels_of_ip_link("not json").is_err());
    }

    #[test]
    fn geneve_wireguard_and_nfsd_from_fixtures() {
        // This kernel has no GENEVE, WireGuard or nfsd: their texts as the
        // tools print them.
        let geneve = tunnels_of_ip_link(&fixture("ip-link-geneve-wireguard.json")).unwrap();
        assert_eq!(geneve.len(), 1);
        assert_eq!(
            (geneve[0].port, geneve[0].service.as_str()),
            (6081, "geneve")
        );
        let wg = wireguard_of_wg(&fixture("wg-listen-port"));
        assert_eq!(wg.len(), 1, "a device with port 0 listens nowhere");
        assert_eq!((wg[0].port, wg[0].service.as_str()), (51820, "wireguard"));
        assert!(wg[0].description.contains("wg0"));
        let nfsd = nfsd_of_portlist(&fixture("nfsd-portlist"));
        let ports: Vec<(Proto, u16)> = nfsd.iter().map(|k| (k.proto, k.port)).collect();
        assert_eq!(ports, [(Proto::Tcp, 2049), (Proto::Udp, 2049)]);
    }

    #[test]
    fn kernel_sockets_are_described_and_vxlan_is_risky() {
        let mut listeners = vec![
            unowned(Proto::Udp, "0.0.0.0", 4789),
            unowned(Proto::Udp, "0.0.0.0", 51820),
            unowned(Proto::Tcp, "0.0.0.0", 2049),
            unowned(Proto::Udp, "0.0.0.0", 9999),
        ];
        let mut kernel = tunnels_of_ip_link(&fixture("ip-link-vxlan.json")).unwrap();
        kernel.extend(wireguard_of_wg("wg0\t51820\n"));
        kernel.extend(nfsd_of_portlist("tcp 2049\n"));
        describe_kernel_sockets(&mut listeners, &kernel);
        let got: Vec<(&str, bool, bool)> = listeners
            .iter()
            .map(|l| (l.service.as_str(), l.risky, l.kernel.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("vxlan", true, true),
                ("wireguard", false, true),
                ("nfs", true, true),
                ("unknown", false, false)
            ]
        );
    }

    #[test]
    fn socket_activation_is_named_after_the_unit() {
        let units = parse_list_sockets(&fixture("systemctl-list-sockets"));
        assert_eq!(units.len(), 4, "{units:?}");
        let systemd = Owner {
            pid: 1,
            program: "systemd".into(),
            uid: Some(0),
            user: Some("root".into()),
            exe: Some("/usr/lib/systemd/systemd".into()),
            exe_root_only: true,
        };
        let mut listeners = vec![
            unowned(Proto::Tcp, "::", 22),
            unowned(Proto::Tcp, "0.0.0.0", 111),
            unowned(Proto::Udp, "0.0.0.0", 111),
            unowned(Proto::Tcp, "::", 9090),
            unowned(Proto::Tcp, "0.0.0.0", 7000),
        ];
        for l in &mut listeners {
            l.owners = vec![systemd.clone()];
            l.pids = vec![1];
            l.process = "systemd".into();
        }
        // Not PID 1: never renamed by a unit.
        listeners[4].owners[0].pid = 77;
        let names = ServiceTable::builtin();
        name_socket_units(&mut listeners, &units, &names);
        let got: Vec<(&str, Option<&str>, bool)> = listeners
            .iter()
            .map(|l| (l.service.as_str(), l.unit.as_deref(), l.risky))
            .collect();
        assert_eq!(
            got,
            [
                ("ssh", Some("ssh.socket"), false),
                ("sunrpc", Some("rpcbind.socket"), true),
                ("sunrpc", Some("rpcbind.socket"), true),
                // cockpit: unknown name and port: falls back to the port.
                ("unknown", Some("cockpit.socket"), false),
                ("unknown", None, false),
            ]
        );
    }
}
