//! Which interface holds each local address: a listener bound to a private
//! or link-local address gets a rule that matches that interface
//! (`iifname`), since Linux accepts packets for any local address on any
//! interface. Read with one `RTM_GETADDR` dump over rtnetlink in the
//! current network namespace, each interface named from its index.
//!
//! Not `getifaddrs(3)`: it dumps every link too (`RTM_GETLINK`, with each
//! link's statistics: a third of its time), and names an IPv4 address by
//! its label, which for an alias is `eth0:1`, a name no `iifname` matches.

use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use std::collections::BTreeMap;
use std::net::IpAddr;

const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// Every address of this network namespace and the interface holding it.
/// An address held by several interfaces (anycast, a misconfiguration) keeps
/// the first, in the kernel's order. Empty if the list cannot be read.
pub(crate) fn local_addresses() -> BTreeMap<IpAddr, String> {
    let mut found = BTreeMap::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let _ = dump_addresses(|socket, index, address| {
        let name = names.entry(index).or_insert_with(|| name_on(socket, index));
        found.entry(address).or_insert_with(|| name.clone());
    });
    found
}

/// Each address of the dump as (interface index, address), in the kernel's
/// order, with the dump's socket (to name the interface through).
fn dump_addresses(mut each: impl FnMut(&Socket, u32, IpAddr)) -> std::io::Result<()> {
    // Unbound: the first send binds it (scan::netlink::diag_socket).
    let socket = Socket::new(NETLINK_ROUTE)?;
    // nlmsghdr + struct ifaddrmsg (family 0: both).
    let mut request = Vec::with_capacity(24);
    request.extend_from_slice(&24u32.to_ne_bytes());
    request.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[0; 8]);
    super::netlink::dump_messages(&socket, &request, &mut Vec::new(), |kind, payload| {
        if kind == RTM_NEWADDR
            && let Some((index, address)) = address_of(payload)
        {
            each(&socket, index, address);
        }
        Ok(())
    })
}

/// The interface index and the local address of an `RTM_NEWADDR` message:
/// `struct ifaddrmsg` (family, prefix length, flags, scope, index), then
/// attributes. The local address is `IFA_LOCAL` where there is one (on a
/// point-to-point link `IFA_ADDRESS` is the peer's), `IFA_ADDRESS` otherwise,
/// as getifaddrs takes it.
fn address_of(payload: &[u8]) -> Option<(u32, IpAddr)> {
    let family = *payload.first()?;
    let index = u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let ip = |value: &[u8]| -> Option<IpAddr> {
        match i32::from(family) {
            libc::AF_INET => Some(<[u8; 4]>::try_from(value).ok()?.into()),
            libc::AF_INET6 => Some(<[u8; 16]>::try_from(value).ok()?.into()),
            _ => None,
        }
    };
    let (mut local, mut address) = (None, None);
    for (kind, value) in crate::nfnetlink::attributes(payload.get(8..)?) {
        match kind {
            IFA_LOCAL => local = ip(value),
            IFA_ADDRESS => address = ip(value),
            _ => {}
        }
    }
    Some((index, local.or(address)?))
}

/// [`name_of_index`], asked through the rtnetlink socket already open (any
/// socket answers `SIOCGIFNAME`) rather than one that `if_indextoname`
/// opens and closes for each name. A name that is not UTF-8 is left to
/// `name_of_index`, which keeps what it can of it.
fn name_on(socket: &Socket, index: u32) -> String {
    rustix::net::netdevice::index_to_name(socket, index).unwrap_or_else(|_| name_of_index(index))
}

/// The name of the interface with index `index` (`if_indextoname(3)`), as
/// sock_diag reports a socket's bound device by index. A device removed
/// since the socket was bound has no name: `if<INDEX>`, which no rule's
/// `iifname` will ever match (as nothing arrives on a device that is gone).
pub(crate) fn name_of_index(index: u32) -> String {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer is IF_NAMESIZE bytes, as if_indextoname requires;
    // on success it holds a NUL-terminated name, read only then.
    unsafe {
        if libc::if_indextoname(index, buffer.as_mut_ptr()).is_null() {
            return format!("if{index}");
        }
        std::ffi::CStr::from_ptr(buffer.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_on_lo() {
        let addresses = local_addresses();
        assert_eq!(
            addresses.get(&"127.0.0.1".parse::<IpAddr>().unwrap()),
            Some(&"lo".to_string()),
            "{addresses:?}"
        );
        assert_eq!(name_of_index(1), "lo");
        // Where IPv6 is on (a machine may boot without it).
        if std::fs::read_to_string("/proc/net/if_inet6")
            .is_ok_and(|t| t.contains("00000000000000000000000000000001"))
        {
            assert_eq!(
                addresses.get(&"::1".parse::<IpAddr>().unwrap()),
                Some(&"lo".to_string()),
                "{addresses:?}"
            );
        }
    }

    /// An `RTM_NEWADDR` payload: ifaddrmsg, then the attributes.
    fn new_addr(family: i32, index: u32, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut payload = vec![family as u8, 24, 0, 0];
        payload.extend_from_slice(&index.to_ne_bytes());
        for (kind, value) in attributes {
            payload.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
            payload.extend_from_slice(&kind.to_ne_bytes());
            payload.extend_from_slice(value);
            payload.resize(crate::nfnetlink::align(payload.len()), 0);
        }
        payload
    }

    #[test]
    fn the_local_address_is_ifa_local_where_the_kernel_gives_one() {
        const IFA_LABEL: u16 = 3;
        // A point-to-point link: IFA_ADDRESS is the peer.
        let ptp = new_addr(
            libc::AF_INET,
            7,
            &[
                (IFA_ADDRESS, &[192, 0, 2, 2]),
                (IFA_LOCAL, &[192, 0, 2, 1]),
                (IFA_LABEL, b"tun0\0"),
            ],
        );
        assert_eq!(address_of(&ptp), Some((7, "192.0.2.1".parse().unwrap())));
        let v6: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let plain = new_addr(libc::AF_INET6, 3, &[(IFA_ADDRESS, &v6)]);
        assert_eq!(
            address_of(&plain),
            Some((3, "2001:db8::1".parse().unwrap()))
        );
        // Cut short, or of another family: nothing.
        assert_eq!(address_of(&ptp[..6]), None);
        assert_eq!(
            address_of(&new_addr(libc::AF_PACKET, 3, &[(IFA_ADDRESS, &v6)])),
            None
        );
        assert_eq!(address_of(&new_addr(libc::AF_INET, 3, &[])), None);
    }
}
