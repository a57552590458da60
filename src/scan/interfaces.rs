//! Which interface holds each local address: a listener bound to a private
//! or link-local address gets a rule that matches that interface
//! (`iifname`), since Linux accepts packets for any local address on any
//! interface. Read with `getifaddrs(3)` in the current network namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Every address of this network namespace and the interface holding it.
/// An address held by several interfaces (anycast, a misconfiguration) keeps
/// the first, in the kernel's order. Empty if the list cannot be read.
pub(crate) fn local_addresses() -> BTreeMap<IpAddr, String> {
    let mut found = BTreeMap::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that we only read,
    // and free with freeifaddrs once done; every pointer is checked for null.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return found;
        }
        let mut cursor = list;
        while !cursor.is_null() {
            let entry = &*cursor;
            cursor = entry.ifa_next;
            if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
                continue;
            }
            let address = match i32::from((*entry.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(entry.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
                }
                libc::AF_INET6 => {
                    let sin6 = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::from(sin6.sin6_addr.s6_addr)
                }
                _ => continue,
            };
            let name = std::ffi::CStr::from_ptr(entry.ifa_name)
                .to_string_lossy()
                .into_owned();
            found.entry(address).or_insert(name);
        }
        libc::freeifaddrs(list);
    }
    found
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
    }
}
