//! The elements of autofw's blocklist sets, written and read over netlink
//! (`NFT_MSG_NEWSETELEM`, `DELSETELEM`, `GETSETELEM`) instead of through
//! `nft`: a million elements cost nft about 380 MB and 3 s to parse, the
//! kernel about 16 bytes each on the wire (docs/propose.md has the numbers;
//! docs/design.md says why no crate does this for us).
//!
//! Every change is one nf_tables transaction: a batch (`BATCH_BEGIN`, the
//! element messages, `BATCH_END`) sent in one `sendmsg`, which the kernel
//! commits whole or not at all, and whose every message is acknowledged, so
//! a failure anywhere is reported and nothing changed. Rules and set
//! declarations stay nft's job (`nft -f`); this module only touches
//! elements of `table inet autofw`.

use std::os::fd::AsRawFd;

use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

use crate::blocklist::{
    FamilySets, Key, SHARDS, SetContents, SetKind, address_set_name, address_shards, set_name,
};
use crate::error::host_failure;
use crate::nfnetlink::{attributes, messages};
use crate::propose::render_nft::TABLE;
use crate::propose::ruleset::Family;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_EXCL: u16 = 0x200;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFPROTO_INET: u8 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// An attribute's length is a u16: keep each message's element list well
/// under 64 KiB.
const MAX_ELEMENTS_BYTES: usize = 60_000;

fn msg_type(cmd: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | cmd
}

/// One transaction over the blocklist sets, built in memory, then sent.
struct Transaction {
    buf: Vec<u8>,
    seq: u32,
    /// Messages that the kernel acknowledges (all but begin and end).
    acked: u32,
}

impl Transaction {
    fn new() -> Transaction {
        let mut t = Transaction {
            buf: Vec::new(),
            seq: 1,
            acked: 0,
        };
        t.batch_marker(NFNL_MSG_BATCH_BEGIN);
        t
    }

    fn batch_marker(&mut self, kind: u16) {
        let at = self.header(kind, NLM_F_REQUEST, 0);
        // res_id of a batch marker names the subsystem.
        let len = self.buf.len();
        self.buf[len - 2..].copy_from_slice(&NFNL_SUBSYS_NFTABLES.to_be_bytes());
        self.finish(at);
    }

    /// Start a message: nlmsghdr + nfgenmsg; returns where it starts.
    fn header(&mut self, kind: u16, flags: u16, family: u8) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, fixed in finish
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.seq += 1;
        self.buf.extend_from_slice(&[family, 0, 0, 0]);
        at
    }

    fn finish(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Begin a set-element message for autofw's `set`: the header, then
    /// the table and set it is about. The caller adds the rest and finishes.
    fn set_header(&mut self, cmd: u16, flags: u16, set: &str) -> usize {
        let at = self.header(msg_type(cmd), flags, NFPROTO_INET);
        put_str(&mut self.buf, NFTA_SET_ELEM_LIST_TABLE, TABLE);
        put_str(&mut self.buf, NFTA_SET_ELEM_LIST_SET, set);
        at
    }

    /// Begin the message for `set` and open its element list.
    fn elements_message(&mut self, cmd: u16, flags: u16, set: &str) -> (usize, usize) {
        let at = self.set_header(cmd, NLM_F_REQUEST | NLM_F_ACK | flags, set);
        let list = begin_nested(&mut self.buf, NFTA_SET_ELEM_LIST_ELEMENTS);
        self.acked += 1;
        (at, list)
    }

    /// Add or delete elements (`key`, interval end?) in messages of at most
    /// [`MAX_ELEMENTS_BYTES`].
    fn elements<K: Key>(&mut self, cmd: u16, set: &str, items: impl Iterator<Item = (K, bool)>) {
        // Exclusive: autofw adds only what a set lacks, so an element already
        // there means another hand is in the set: refused, never merged.
        let flags = if cmd == NFT_MSG_NEWSETELEM {
            NLM_F_CREATE | NLM_F_EXCL
        } else {
            0
        };
        let mut open: Option<(usize, usize)> = None;
        for (key, end) in items {
            if let Some((at, list)) = open
                && self.buf.len() - list > MAX_ELEMENTS_BYTES
            {
                end_nested(&mut self.buf, list);
                self.finish(at);
                open = None;
            }
            let (_, _) = *open.get_or_insert_with(|| self.elements_message(cmd, flags, set));
            let elem = begin_nested(&mut self.buf, NFTA_LIST_ELEM);
            let k = begin_nested(&mut self.buf, NFTA_SET_ELEM_KEY);
            let value = begin_attr(&mut self.buf, NFTA_DATA_VALUE);
            key.put_be(&mut self.buf);
            end_attr(&mut self.buf, value);
            end_nested(&mut self.buf, k);
            if end {
                put_attr(
                    &mut self.buf,
                    NFTA_SET_ELEM_FLAGS,
                    &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
                );
            }
            end_nested(&mut self.buf, elem);
        }
        if let Some((at, list)) = open {
            end_nested(&mut self.buf, list);
            self.finish(at);
        }
    }

    /// Add single addresses to a hash set.
    fn add_addresses<K: Key>(&mut self, set: &str, keys: &[K]) {
        self.elements(NFT_MSG_NEWSETELEM, set, keys.iter().map(|k| (*k, false)));
    }

    /// Delete single addresses from a hash set.
    fn delete_addresses<K: Key>(&mut self, set: &str, keys: &[K]) {
        self.elements(NFT_MSG_DELSETELEM, set, keys.iter().map(|k| (*k, false)));
    }

    /// Add inclusive ranges to an interval set, as nft does: the first
    /// address, and the address after the last flagged as an interval end
    /// (none when the range runs to the end of the address space).
    fn add_networks<K: Key>(&mut self, set: &str, ranges: &[(K, K)]) {
        let items = ranges.iter().flat_map(|&(a, b)| {
            std::iter::once((a, false)).chain(b.next().map(|after| (after, true)))
        });
        self.elements(NFT_MSG_NEWSETELEM, set, items);
    }

    /// Empty a set (a `DELSETELEM` without elements), in this transaction.
    fn flush(&mut self, set: &str) {
        let at = self.set_header(NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK, set);
        self.acked += 1;
        self.finish(at);
    }

    /// Send the batch and wait for every acknowledgement. On error the
    /// kernel aborted the whole transaction: nothing changed.
    fn commit(mut self) -> anyhow::Result<()> {
        if self.acked == 0 {
            return Ok(());
        }
        self.batch_marker(NFNL_MSG_BATCH_END);
        let socket = open_socket()?;
        // The whole batch is one datagram: let the socket take it.
        let size = libc::c_int::try_from(self.buf.len() + 65_536).unwrap_or(libc::c_int::MAX);
        setsockopt_int(&socket, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size)?;
        socket.send(&self.buf, 0).map_err(|e| {
            host_failure(format!(
                "cannot send the blocklist elements to nf_tables: {e}"
            ))
        })?;
        drop(std::mem::take(&mut self.buf));
        let mut pending = self.acked;
        let mut first_error: Option<String> = None;
        let mut buf = vec![0u8; 1 << 16];
        // The kernel handles the batch inside `sendmsg`: every answer is
        // queued by now. Never wait for one that will not come.
        while pending > 0 {
            let Some(n) = recv(&socket, &mut buf, libc::MSG_DONTWAIT)? else {
                return Err(host_failure(match first_error {
                    Some(problem) => format!(
                        "nf_tables refused the blocklist elements ({problem}); the transaction was aborted, nothing changed"
                    ),
                    None => format!(
                        "nf_tables left {pending} blocklist message(s) unanswered; check the live sets with `autofw status`"
                    ),
                }));
            };
            for (kind, payload) in messages(&buf[..n]) {
                if kind != NLMSG_ERROR {
                    continue;
                }
                pending = pending.saturating_sub(1);
                if let Some(problem) = error_of(payload) {
                    first_error.get_or_insert(problem);
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(problem) => Err(host_failure(format!(
                "nf_tables refused the blocklist elements ({problem}); the transaction was aborted, nothing changed"
            ))),
        }
    }
}

/// The elements of one set of `table inet autofw`: `(key, interval end?)`,
/// in the kernel's order. `None` when the table or the set does not exist.
fn dump<K: Key>(set: &str) -> anyhow::Result<Option<Vec<(K, bool)>>> {
    let socket = open_socket()?;
    let mut req = Transaction {
        buf: Vec::new(),
        seq: 1,
        acked: 0,
    };
    let at = req.set_header(NFT_MSG_GETSETELEM, NLM_F_REQUEST | NLM_F_DUMP, set);
    req.finish(at);
    socket
        .send(&req.buf, 0)
        .map_err(|e| host_failure(format!("cannot ask nf_tables for set {set}: {e}")))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = recv(&socket, &mut buf, 0)?.unwrap_or(0);
        if n == 0 {
            return Err(host_failure(format!(
                "the listing of set {set} ended early"
            )));
        }
        for (kind, payload) in messages(&buf[..n]) {
            match kind {
                NLMSG_DONE => return Ok(Some(out)),
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or_default()));
                    if code == -libc::ENOENT {
                        return Ok(None);
                    }
                    if let Some(problem) = error_of(payload) {
                        return Err(host_failure(format!("cannot list set {set}: {problem}")));
                    }
                }
                k if k == msg_type(NFT_MSG_NEWSETELEM) => parse_elements(payload, &mut out),
                _ => {}
            }
        }
    }
}

/// Elements of one `NEWSETELEM` dump message into `out`.
fn parse_elements<K: Key>(payload: &[u8], out: &mut Vec<(K, bool)>) {
    // Skip nfgenmsg.
    let Some(attrs) = payload.get(4..) else {
        return;
    };
    for (kind, list) in attributes(attrs) {
        if kind != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for (kind, elem) in attributes(list) {
            if kind != NFTA_LIST_ELEM {
                continue;
            }
            let mut key = None;
            let mut end = false;
            for (kind, value) in attributes(elem) {
                match kind {
                    NFTA_SET_ELEM_KEY => {
                        key = attributes(value)
                            .find(|(k, _)| *k == NFTA_DATA_VALUE)
                            .and_then(|(_, bytes)| K::from_be(bytes.get(..K::LEN)?));
                    }
                    NFTA_SET_ELEM_FLAGS => {
                        end = value.get(..4).is_some_and(|b| {
                            u32::from_be_bytes(b.try_into().unwrap_or_default())
                                & NFT_SET_ELEM_INTERVAL_END
                                != 0
                        });
                    }
                    _ => {}
                }
            }
            if let Some(key) = key {
                out.push((key, end));
            }
        }
    }
}

/// The content of a family's two sets, read back from the kernel, and how
/// many hash sets hold its single addresses (one, or [`SHARDS`] named
/// `blocklist_v4_00`...; whichever the loaded ruleset declares).
fn read_family<K: Key>(family: Family) -> anyhow::Result<Option<(FamilySets<K>, u32)>> {
    let unsharded = set_name(family, SetKind::Addresses);
    let (found, shards) = match dump::<K>(unsharded)? {
        Some(found) => (found, 1),
        None => {
            let mut found = Vec::new();
            for shard in 0..SHARDS {
                match dump::<K>(&address_set_name(family, shard, SHARDS))? {
                    Some(part) => found.extend(part),
                    None => return Ok(None),
                }
            }
            (found, SHARDS)
        }
    };
    let Some(bounds) = dump::<K>(set_name(family, SetKind::Networks))? else {
        return Ok(None);
    };
    let mut addresses: Vec<K> = found.into_iter().map(|(k, _)| k).collect();
    addresses.sort_unstable();
    let sets = FamilySets {
        addresses,
        networks: crate::blocklist::ranges_from_bounds(bounds),
    };
    Ok(Some((sets, shards)))
}

/// The live content of the four blocklist sets; `None` when autofw's table
/// has no blocklist sets.
pub(crate) fn live_sets() -> anyhow::Result<Option<SetContents>> {
    let v4 = read_family::<u32>(Family::Ipv4)?;
    let v6 = read_family::<u128>(Family::Ipv6)?;
    let shards = match (&v4, &v6) {
        (None, None) => return Ok(None),
        (Some((_, shards)), _) | (None, Some((_, shards))) => *shards,
    };
    Ok(Some(SetContents {
        v4: v4.map(|(sets, _)| sets).unwrap_or_default(),
        v6: v6.map(|(sets, _)| sets).unwrap_or_default(),
        shards,
    }))
}

/// Fill the (empty) blocklist sets with `content`, in one transaction,
/// each single address in the hash set its shard names.
pub(crate) fn fill(content: &SetContents) -> anyhow::Result<()> {
    let mut t = Transaction::new();
    fill_family(&mut t, Family::Ipv4, &content.v4, content.shards);
    fill_family(&mut t, Family::Ipv6, &content.v6, content.shards);
    t.commit()
}

fn fill_family<K: Key>(t: &mut Transaction, family: Family, sets: &FamilySets<K>, shards: u32) {
    for (name, keys) in address_shards(family, &sets.addresses, shards) {
        t.add_addresses(&name, &keys);
    }
    t.add_networks(set_name(family, SetKind::Networks), &sets.networks);
}

/// Bring the live sets from `live` to `new`, in one transaction, stored as
/// the live sets are (`live.shards`): single addresses by adding the new
/// and deleting the gone; an interval set that changed at all is emptied
/// and refilled (its elements are networks, few even in long lists).
/// Returns the `(added, removed)` count of each set.
pub(crate) fn update(live: &SetContents, new: &SetContents) -> anyhow::Result<Vec<(usize, usize)>> {
    let mut t = Transaction::new();
    let changes = [
        update_family(&mut t, Family::Ipv4, &live.v4, &new.v4, live.shards),
        update_family(&mut t, Family::Ipv6, &live.v6, &new.v6, live.shards),
    ];
    t.commit()?;
    Ok(changes.into_iter().flatten().collect())
}

fn update_family<K: Key>(
    t: &mut Transaction,
    family: Family,
    live: &FamilySets<K>,
    new: &FamilySets<K>,
    shards: u32,
) -> [(usize, usize); 2] {
    let (add, del) = crate::blocklist::delta(&live.addresses, &new.addresses);
    for (name, keys) in address_shards(family, &del, shards) {
        t.delete_addresses(&name, &keys);
    }
    for (name, keys) in address_shards(family, &add, shards) {
        t.add_addresses(&name, &keys);
    }
    let net_change = crate::blocklist::delta(&live.networks, &new.networks);
    if live.networks != new.networks {
        let name = set_name(family, SetKind::Networks);
        t.flush(name);
        t.add_networks(name, &new.networks);
    }
    [
        (add.len(), del.len()),
        (net_change.0.len(), net_change.1.len()),
    ]
}

fn open_socket() -> anyhow::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)
        .map_err(|e| host_failure(format!("cannot open a netfilter netlink socket: {e}")))?;
    socket
        .bind_auto()
        .map_err(|e| host_failure(format!("cannot bind a netfilter netlink socket: {e}")))?;
    // Acks without the request echoed (a batch has hundreds), with the
    // kernel's own words on errors.
    let _ = socket.set_cap_ack(true);
    let _ = socket.set_ext_ack(true);
    let _ = setsockopt_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 4 << 20);
    Ok(socket)
}

fn setsockopt_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> anyhow::Result<()> {
    // SAFETY: a valid fd and a pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(host_failure(format!(
            "cannot size the netlink socket: {}",
            std::io::Error::last_os_error()
        )))
    }
}

/// One datagram; `None` when `MSG_DONTWAIT` finds nothing queued.
fn recv(socket: &Socket, buf: &mut [u8], flags: libc::c_int) -> anyhow::Result<Option<usize>> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        };
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(host_failure(format!("cannot read nf_tables' answer: {e}"))),
        }
    }
}

/// The problem an `NLMSG_ERROR` reports, or `None` for an acknowledgement.
fn error_of(payload: &[u8]) -> Option<String> {
    let code = i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?);
    if code == 0 {
        return None;
    }
    let mut text = std::io::Error::from_raw_os_error(-code).to_string();
    if -code == libc::EEXIST {
        text.push_str(
            ": an element autofw adds is already in the set, or overlaps one: \
             is another program editing autofw's blocklist sets?",
        );
    }
    // With NETLINK_CAP_ACK the request's header follows (16 bytes), then
    // the extended-ack attributes.
    if let Some(attrs) = payload.get(20..) {
        for (kind, value) in attributes(attrs) {
            if kind == NLMSGERR_ATTR_MSG {
                let msg = String::from_utf8_lossy(value);
                text.push_str(&format!(": {}", msg.trim_end_matches('\0')));
            }
        }
    }
    Some(text)
}

fn begin_attr(buf: &mut Vec<u8>, kind: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    at
}

fn end_attr(buf: &mut Vec<u8>, at: usize) {
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn begin_nested(buf: &mut Vec<u8>, kind: u16) -> usize {
    begin_attr(buf, kind | NLA_F_NESTED)
}

fn end_nested(buf: &mut Vec<u8>, at: usize) {
    end_attr(buf, at);
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let at = begin_attr(buf, kind);
    buf.extend_from_slice(value);
    end_attr(buf, at);
}

fn put_str(buf: &mut Vec<u8>, kind: u16, value: &str) {
    let at = begin_attr(buf, kind);
    buf.extend_from_slice(value.as_bytes());
    buf.push(0);
    end_attr(buf, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_aligned_and_split_under_64k() {
        let mut t = Transaction::new();
        let keys: Vec<u32> = (0..10_000).collect();
        t.add_addresses("blocklist_v4", &keys);
        t.batch_marker(NFNL_MSG_BATCH_END);
        let msgs: Vec<(u16, usize)> = messages(&t.buf).map(|(k, p)| (k, p.len())).collect();
        assert_eq!(msgs.first().unwrap().0, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(msgs.last().unwrap().0, NFNL_MSG_BATCH_END);
        let element_msgs = msgs.len() - 2;
        assert_eq!(element_msgs as u32, t.acked);
        assert!(element_msgs >= 3, "{element_msgs}");
        assert!(msgs.iter().all(|(_, len)| *len < 65_536));
        // Read back what was written, as a dump would be.
        let mut back: Vec<(u32, bool)> = Vec::new();
        for (kind, payload) in messages(&t.buf) {
            if kind == msg_type(NFT_MSG_NEWSETELEM) {
                parse_elements(payload, &mut back);
            }
        }
        assert_eq!(back.len(), 10_000);
        assert_eq!(back[9_999], (9_999, false));
    }
}
