//! Whether nf_tables holds any nat chain, asked over netlink
//! (`NFT_MSG_GETCHAIN` dump) instead of by spawning `nft`: on a host with no
//! NAT, scan then starts no process at all (issue 20: the three readers
//! `nat.rs` used to run on every scan were half of a small host's scan).
//!
//! A DNAT can only sit in a chain of type `nat` (nft refuses `dnat` in any
//! other, and iptables-nft's `nat` table is made of such chains), reached
//! from a base chain of that type: no base chain of type `nat` in a family,
//! no forwarded port in it. Only base chains carry a type, so the answer is
//! the families that have one.
//!
//! The dump loop is `scan::netlink::dump_messages` (shared with the TCP and
//! address dumps), the attribute walking `crate::nfnetlink`'s (shared with
//! `blocklist/netlink.rs`, which writes and reads set elements).

use crate::nfnetlink::attributes;
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};
use std::collections::BTreeSet;
use std::io;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NFTA_CHAIN_TYPE: u16 = 7;

/// The nf_tables families (`NFPROTO_*`: 1 inet, 2 ip, 10 ip6, ...) that
/// hold a base chain of type `nat`, in this network namespace. An error
/// when nf_tables cannot be asked (not root, no netlink): the caller then
/// reads the rules as if NAT could be there.
pub(crate) fn nat_chain_families() -> io::Result<BTreeSet<u8>> {
    // Unbound: the first send binds it (scan::netlink::diag_socket).
    let socket = Socket::new(NETLINK_NETFILTER)?;
    // nlmsghdr + nfgenmsg (family 0: every family).
    let mut request = Vec::with_capacity(20);
    request.extend_from_slice(&20u32.to_ne_bytes());
    request.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN).to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[0, 0, 0, 0]);
    let mut families = BTreeSet::new();
    super::netlink::dump_messages(&socket, &request, &mut Vec::new(), |kind, payload| {
        if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN
            && let Some(family) = nat_chain_family(payload)
        {
            families.insert(family);
        }
        Ok(())
    })?;
    Ok(families)
}

/// The family of a `NEWCHAIN` message's chain if it is a base chain of
/// type `nat`: nfgenmsg (family, version, resource id), then attributes.
fn nat_chain_family(payload: &[u8]) -> Option<u8> {
    let family = *payload.first()?;
    attributes(payload.get(4..)?)
        .any(|(kind, value)| {
            kind == NFTA_CHAIN_TYPE && value.split(|b| *b == 0).next() == Some(b"nat")
        })
        .then_some(family)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfnetlink::align;

    /// A `NEWCHAIN` payload as the kernel sends it: nfgenmsg, then the
    /// table, name and (for a base chain) type attributes.
    fn chain(family: u8, kind: Option<&str>) -> Vec<u8> {
        let mut payload = vec![family, 0, 0, 0];
        let mut put = |attr: u16, value: &[u8]| {
            let len = 4 + value.len();
            payload.extend_from_slice(&(len as u16).to_ne_bytes());
            payload.extend_from_slice(&attr.to_ne_bytes());
            payload.extend_from_slice(value);
            payload.resize(align(payload.len()), 0);
        };
        put(1, b"nat\0");
        put(3, b"PREROUTING\0");
        if let Some(kind) = kind {
            put(NFTA_CHAIN_TYPE, format!("{kind}\0").as_bytes());
        }
        payload
    }

    #[test]
    fn only_base_chains_of_type_nat_count() {
        assert_eq!(nat_chain_family(&chain(2, Some("nat"))), Some(2));
        assert_eq!(nat_chain_family(&chain(10, Some("nat"))), Some(10));
        assert_eq!(nat_chain_family(&chain(1, Some("filter"))), None);
        // A regular chain (no type), even in a table called nat.
        assert_eq!(nat_chain_family(&chain(2, None)), None);
        assert_eq!(nat_chain_family(&[]), None);
    }
}
