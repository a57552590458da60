//! Netlink datagrams read as nf_tables sends them: the messages a datagram
//! holds and the attributes a payload holds. Shared by the two nf_tables
//! edges, `scan::nft_nat` (the nat chain dump) and `blocklist::netlink` (set
//! elements), and by `scan::interfaces` (rtnetlink's address attributes
//! are laid out the same way); it sits at the bottom of the import order so
//! all may use it.

/// Attribute type bits; the two top bits are the nested and byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// A netlink message's or attribute's length rounded up to the 4-byte
/// boundary the next one starts at.
pub(crate) fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// `(type, payload)` of each netlink message in a datagram.
pub(crate) fn messages(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u32::from_ne_bytes(data.get(..4)?.try_into().ok()?) as usize;
        if len < 16 || len > data.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(data[4..6].try_into().ok()?);
        let payload = &data[16..len];
        data = &data[align(len).min(data.len())..];
        Some((kind, payload))
    })
}

/// `(type, value)` of each attribute, the nested/byte-order bits masked off.
pub(crate) fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(data.get(..2)?.try_into().ok()?) as usize;
        if len < 4 || len > data.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(data[2..4].try_into().ok()?) & NLA_TYPE_MASK;
        let value = &data[4..len];
        data = &data[align(len).min(data.len())..];
        Some((kind, value))
    })
}
