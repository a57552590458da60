//! Facts about the host beyond its sockets that decide what `propose` does
//! with FORWARD: is IP forwarding on, and which container or VM bridges
//! exist. Read from `/proc/sys` and `/sys/class/net` of the current network
//! namespace; the name test is pure.

use crate::model::HostFacts;
use crate::services::ServiceTable;
use std::path::Path;

/// Bridge name prefixes that Docker, libvirt, LXD/Incus, LXC, podman and
/// Kubernetes CNI plugins create: traffic to their guests crosses FORWARD.
pub const ROUTING_BRIDGES: &[&str] = &[
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

/// Is this interface a bridge that containers or VMs route through?
pub fn is_routing_bridge(name: &str) -> bool {
    ROUTING_BRIDGES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Read the facts of this host. What cannot be read counts as off or
/// absent: a host without IPv6 has no `net/ipv6` sysctls, a container may
/// have no `/sys`.
pub fn read_host_facts() -> HostFacts {
    let on = |path: &str| std::fs::read_to_string(path).is_ok_and(|value| value.trim() == "1");
    let ip_forward =
        on("/proc/sys/net/ipv4/ip_forward") || on("/proc/sys/net/ipv6/conf/all/forwarding");
    HostFacts {
        ip_forward,
        bridges: routing_bridges(Path::new("/sys/class/net")),
    }
}

fn routing_bridges(class_net: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(class_net) else {
        return Vec::new();
    };
    let mut bridges: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| is_routing_bridge(name))
        .collect();
    bridges.sort();
    bridges
}

/// The service table for this host: the built-in one under `/etc/services`
/// if that can be read.
pub fn read_service_table() -> ServiceTable {
    match std::fs::read_to_string("/etc/services") {
        Ok(text) => ServiceTable::with_etc_services(&text),
        Err(_) => ServiceTable::builtin(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names() {
        for name in [
            "docker0",
            "br-1a2b3c",
            "virbr0",
            "lxdbr0",
            "cni-podman0",
            "podman1",
            "cni0",
        ] {
            assert!(is_routing_bridge(name), "{name}");
        }
        for name in ["eth0", "lo", "wg0", "ens3", "bond0", "veth12ab"] {
            assert!(!is_routing_bridge(name), "{name}");
        }
    }
}
