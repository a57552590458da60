//! Facts about the host beyond its sockets that decide what `propose` does
//! with FORWARD: is IP forwarding on, and which container or VM bridges
//! exist. Read from `/proc/sys` and `/sys/class/net` of the current network
//! namespace; the name test is pure.

use super::kernel::{self, KernelSocket, SocketUnit};
use crate::model::{HostFacts, is_routing_bridge};
use crate::services::ServiceTable;
use std::path::Path;
use std::process::{Command, Stdio};

/// The kernel's own listeners: VXLAN and GENEVE devices (`ip -d -j link
/// show`), WireGuard (`wg show all listen-port`, when wireguard-tools is
/// installed), the NFS server (`/proc/fs/nfsd/portlist`). What cannot be
/// read adds nothing: those sockets are then named by port.
pub(crate) fn read_kernel_sockets() -> Vec<KernelSocket> {
    let mut found = Vec::new();
    if let Some(json) = output_of("ip", &["-d", "-j", "link", "show"]) {
        found.extend(kernel::tunnels_of_ip_link(&json).unwrap_or_default());
    }
    if let Some(text) = output_of("wg", &["show", "all", "listen-port"]) {
        found.extend(kernel::wireguard_of_wg(&text));
    }
    if let Ok(text) = std::fs::read_to_string("/proc/fs/nfsd/portlist") {
        found.extend(kernel::nfsd_of_portlist(&text));
    }
    found
}

/// systemd's view of the sockets it listens on for units (socket
/// activation), from `systemctl`. Empty where systemd does not run.
pub(crate) fn read_socket_units() -> Vec<SocketUnit> {
    output_of(
        "systemctl",
        &[
            "list-sockets",
            "--all",
            "--show-types",
            "--full",
            "--no-legend",
            "--no-pager",
        ],
    )
    .map(|text| kernel::parse_list_sockets(&text))
    .unwrap_or_default()
}

/// A helper's stdout, if it ran and succeeded (these are optional facts: a
/// missing tool is not an error).
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    read_tool(program, args)?.ok()
}

/// Run a read-only tool (here and in [`super::nat`]); `None` when it is
/// not installed, `Err` (saying why) when it fails.
pub(super) fn read_tool(program: &str, args: &[&str]) -> Option<Result<String, String>> {
    let out = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("cannot run `{program}`: {e}"))),
    };
    if out.status.success() {
        Some(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Some(Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Read the facts of this host. What cannot be read counts as off or
/// absent: a host without IPv6 has no `net/ipv6` sysctls, a container may
/// have no `/sys`.
pub(crate) fn read_host_facts() -> HostFacts {
    let on = |path: &str| std::fs::read_to_string(path).is_ok_and(|value| value.trim() == "1");
    let ip_forward =
        on("/proc/sys/net/ipv4/ip_forward") || on("/proc/sys/net/ipv6/conf/all/forwarding");
    HostFacts {
        ip_forward,
        bridges: routing_bridges(Path::new("/sys/class/net")),
        local_port_range: std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| parse_port_range(&text)),
    }
}

/// `ip_local_port_range`'s text (`32768\t60999\n`) as (low, high).
pub(crate) fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    match (fields.next(), fields.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
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
pub(crate) fn read_service_table() -> ServiceTable {
    ServiceTable::with_etc_services_from(|| std::fs::read_to_string("/etc/services").ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("x"), None);
    }

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
