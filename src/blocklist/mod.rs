//! Blocklists at internet scale, pure: the list formats people download
//! (one address or network a line, `#`/`;` comments, Spamhaus DROP's
//! `CIDR ; SBLnnn`, FireHOL netsets, `a-b` ranges, IPv4 and IPv6 mixed),
//! merged in O(n log n) into sorted, disjoint, non-adjacent ranges per
//! family, and split the way the kernel matches them best: single addresses
//! in a hash set, networks and ranges in an interval set.
//!
//! Everything here works on plain integers (`u32` for IPv4, `u128` for
//! IPv6) so that a million entries cost a few megabytes, not a million
//! `String`s: docs/propose.md has the measurements.

pub(crate) mod format;
pub(crate) mod netlink;
pub(crate) mod refresh;

use crate::human::thousands;
use serde::Serialize;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::propose::ruleset::Family;

pub(crate) use format::{Collected, Entry, Listed, lines_listing, parse_entry, parse_list};

/// An address as an integer: `u32` (IPv4) or `u128` (IPv6).
pub trait Key: Copy + Ord + Eq + std::fmt::Debug + Default {
    /// Bytes of the key on the wire (nft set keys are in network order).
    const LEN: usize;
    const FAMILY: Family;
    /// The next address, or `None` after the last one.
    fn next(self) -> Option<Self>;
    /// The network order bytes, appended to `out`.
    fn put_be(self, out: &mut Vec<u8>);
    /// From network order bytes (exactly `LEN` of them).
    fn from_be(bytes: &[u8]) -> Option<Self>;
    /// The address as text.
    fn show(self) -> String;
    /// The address as text, appended to `out` (no allocation).
    fn write_to(self, out: &mut String);
    /// Number of trailing zero bits (for CIDR covering).
    fn trailing_zeros(self) -> u32;
    /// The last address of the block of `2^bits` addresses starting at `self`.
    fn block_end(self, bits: u32) -> Self;
    const BITS: u32;
    /// The lowest 32 bits: which hash set of a sharded family holds it.
    fn low_bits(self) -> u32;
}

impl Key for u32 {
    const LEN: usize = 4;
    const FAMILY: Family = Family::Ipv4;
    const BITS: u32 = 32;
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn put_be(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn from_be(bytes: &[u8]) -> Option<Self> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
    fn show(self) -> String {
        Ipv4Addr::from(self).to_string()
    }
    fn write_to(self, out: &mut String) {
        let _ = write!(out, "{}", Ipv4Addr::from(self));
    }
    fn trailing_zeros(self) -> u32 {
        u32::trailing_zeros(self)
    }
    fn block_end(self, bits: u32) -> Self {
        if bits >= 32 {
            u32::MAX
        } else {
            self | ((1u32 << bits) - 1)
        }
    }
    fn low_bits(self) -> u32 {
        self
    }
}

impl Key for u128 {
    const LEN: usize = 16;
    const FAMILY: Family = Family::Ipv6;
    const BITS: u32 = 128;
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn put_be(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn from_be(bytes: &[u8]) -> Option<Self> {
        Some(u128::from_be_bytes(bytes.try_into().ok()?))
    }
    fn show(self) -> String {
        Ipv6Addr::from(self).to_string()
    }
    fn write_to(self, out: &mut String) {
        let _ = write!(out, "{}", Ipv6Addr::from(self));
    }
    fn trailing_zeros(self) -> u32 {
        u128::trailing_zeros(self)
    }
    fn block_end(self, bits: u32) -> Self {
        if bits >= 128 {
            u128::MAX
        } else {
            self | ((1u128 << bits) - 1)
        }
    }
    fn low_bits(self) -> u32 {
        self as u32
    }
}

/// Sorted, disjoint, non-adjacent inclusive ranges of one family: the
/// merged blocklist. A range of one address is an address; any longer one
/// is a network (or an `a-b` range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges<K: Key>(Vec<(K, K)>);

impl<K: Key> Ranges<K> {
    /// Merge ranges given in any order, overlapping or touching: sort, then
    /// one pass. A million entries take well under a second.
    pub fn merge(mut ranges: Vec<(K, K)>) -> Ranges<K> {
        ranges.sort_unstable();
        let mut out: Vec<(K, K)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            if let Some(last) = out.last_mut() {
                // Overlapping or adjacent (start right after last.1): extend.
                if start <= last.1 || last.1.next() == Some(start) {
                    if end > last.1 {
                        last.1 = end;
                    }
                    continue;
                }
            }
            out.push((start, end));
        }
        out.shrink_to_fit();
        Ranges(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Entries after merging (addresses plus networks).
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn ranges(&self) -> &[(K, K)] {
        &self.0
    }
    /// The single addresses, sorted: the hash set's content.
    pub fn addresses(&self) -> impl Iterator<Item = K> + '_ {
        self.0.iter().filter(|(a, b)| a == b).map(|(a, _)| *a)
    }
    /// The ranges of more than one address, sorted: the interval set's content.
    pub fn networks(&self) -> impl Iterator<Item = (K, K)> + '_ {
        self.0.iter().filter(|(a, b)| a != b).copied()
    }
    pub fn contains(&self, key: K) -> bool {
        let i = self.0.partition_point(|(start, _)| *start <= key);
        i > 0 && self.0[i - 1].1 >= key
    }
    /// Is `key` a single address of the list (`true`) or inside one of its
    /// networks (`false`)? `None` if not listed.
    pub fn kind_of(&self, key: K) -> Option<SetKind> {
        let i = self.0.partition_point(|(start, _)| *start <= key);
        let (a, b) = *self.0.get(i.checked_sub(1)?)?;
        (b >= key).then_some(if a == b {
            SetKind::Addresses
        } else {
            SetKind::Networks
        })
    }
}

/// The smallest CIDR blocks that cover `start..=end` exactly, as text
/// (`198.51.100.0/24`); for ipset and for showing a range.
pub(crate) fn cidrs<K: Key>(start: K, end: K) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = start;
    loop {
        // The largest aligned block starting at `at` that stays within `end`.
        let mut bits = at.trailing_zeros().min(K::BITS);
        while bits > 0 && at.block_end(bits) > end {
            bits -= 1;
        }
        let block_end = at.block_end(bits);
        out.push(format!("{}/{}", at.show(), K::BITS - bits));
        match block_end.next() {
            Some(next) if block_end < end => at = next,
            _ => break,
        }
    }
    out
}

/// A range as nft writes an element: `a`, `a/p` when it is one CIDR block,
/// `a-b` otherwise.
pub(crate) fn nft_element<K: Key>(start: K, end: K) -> String {
    if start == end {
        return start.show();
    }
    let blocks = cidrs(start, end);
    match blocks.as_slice() {
        [one] => one.clone(),
        _ => format!("{}-{}", start.show(), end.show()),
    }
}

/// Which of a family's two sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetKind {
    /// Single addresses: a hash set, one hash lookup per packet.
    Addresses,
    /// Networks and ranges: an interval set.
    Networks,
}

/// The nft set of a family and kind.
pub(crate) fn set_name(family: Family, kind: SetKind) -> &'static str {
    match (family, kind) {
        (Family::Ipv4, SetKind::Addresses) => "blocklist_v4",
        (Family::Ipv6, SetKind::Addresses) => "blocklist_v6",
        (Family::Ipv4, SetKind::Networks) => "blocklist_net_v4",
        (Family::Ipv6, SetKind::Networks) => "blocklist_net_v6",
    }
}

/// How many hash sets hold a family's single addresses when they come from
/// blocklist files (up to millions): an address goes in the set its lowest
/// six bits name, and one `vmap` on those bits sends a packet to the one
/// set that can hold its source. Reading a set back (status, rollback) is
/// quadratic in its size, because the kernel walks it from the start again
/// for every 32 KiB message it sends: one set of a million takes about 23 s,
/// 64 sets of 15,600 about 0.6 s (docs/propose.md). The few addresses of
/// `--blocklist` and a policy's `addresses` stay in one set.
pub(crate) const SHARDS: u32 = 64;

/// The number of hash sets for single addresses: [`SHARDS`] when blocklist
/// files are named, else one.
pub(crate) fn shards_for(files_named: bool) -> u32 {
    if files_named { SHARDS } else { 1 }
}

/// The hash set that holds `shard`'s single addresses of `family`:
/// `blocklist_v4` unsharded, `blocklist_v4_07` when sharded.
pub(crate) fn address_set_name(family: Family, shard: u32, shards: u32) -> String {
    let name = set_name(family, SetKind::Addresses);
    if shards <= 1 {
        name.to_string()
    } else {
        format!("{name}_{shard:02}")
    }
}

/// Sorted addresses split over `shards` hash sets by their low bits, each
/// part still sorted, named as [`address_set_name`] names them.
pub(crate) fn address_shards<K: Key>(
    family: Family,
    sorted: &[K],
    shards: u32,
) -> Vec<(String, Vec<K>)> {
    let shards = shards.max(1);
    let mut parts: Vec<Vec<K>> = vec![Vec::new(); shards as usize];
    for &key in sorted {
        parts[(key.low_bits() % shards) as usize].push(key);
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(shard, keys)| (address_set_name(family, shard as u32, shards), keys))
        .collect()
}

/// Every blocklist set, in the order they are declared and summarised.
pub(crate) const SETS: [(Family, SetKind); 4] = [
    (Family::Ipv4, SetKind::Addresses),
    (Family::Ipv4, SetKind::Networks),
    (Family::Ipv6, SetKind::Addresses),
    (Family::Ipv6, SetKind::Networks),
];

/// The content of a family's two sets: single addresses (hash set) and
/// inclusive ranges (interval set), each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FamilySets<K: Key> {
    pub addresses: Vec<K>,
    pub networks: Vec<(K, K)>,
}

impl<K: Key> FamilySets<K> {
    pub fn of(ranges: &Ranges<K>) -> FamilySets<K> {
        FamilySets {
            addresses: ranges.addresses().collect(),
            networks: ranges.networks().collect(),
        }
    }
    fn summary(&self, family: Family, kind: SetKind) -> SetSummary {
        let name = set_name(family, kind).to_string();
        match kind {
            SetKind::Addresses => SetSummary {
                name,
                entries: self.addresses.len(),
                digest: digest(self.addresses.iter().map(|a| (*a, *a))),
            },
            SetKind::Networks => SetSummary {
                name,
                entries: self.networks.len(),
                digest: digest(self.networks.iter().copied()),
            },
        }
    }
}

/// The content of the four blocklist sets: what is loaded, read back from
/// the kernel, kept for a rollback (compactly, as text: see
/// [`SetContents::to_text`]), and over how many hash sets the single
/// addresses are spread in the kernel ([`SHARDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetContents {
    pub v4: FamilySets<u32>,
    pub v6: FamilySets<u128>,
    /// Hash sets a family's single addresses are stored in: 1 or [`SHARDS`].
    pub shards: u32,
}

impl Default for SetContents {
    fn default() -> Self {
        SetContents {
            v4: FamilySets::default(),
            v6: FamilySets::default(),
            shards: 1,
        }
    }
}

impl SetContents {
    /// Is `addr` in one of the sets (IPv4-mapped IPv6 as IPv4)?
    pub fn contains(&self, addr: std::net::IpAddr) -> bool {
        fn listed<K: Key>(sets: &FamilySets<K>, key: K) -> bool {
            let i = sets.networks.partition_point(|(start, _)| *start <= key);
            sets.addresses.binary_search(&key).is_ok() || (i > 0 && sets.networks[i - 1].1 >= key)
        }
        match addr.to_canonical() {
            std::net::IpAddr::V4(a) => listed(&self.v4, u32::from(a)),
            std::net::IpAddr::V6(a) => listed(&self.v6, u128::from(a)),
        }
    }

    pub fn of(blocklist: &crate::propose::ruleset::Blocklist) -> SetContents {
        SetContents {
            v4: FamilySets::of(&blocklist.ipv4),
            v6: FamilySets::of(&blocklist.ipv6),
            shards: blocklist.shards.max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.addresses.is_empty()
            && self.v4.networks.is_empty()
            && self.v6.addresses.is_empty()
            && self.v6.networks.is_empty()
    }

    /// Count and digest of each set, in [`SETS`] order.
    pub fn summaries(&self) -> Vec<SetSummary> {
        SETS.iter()
            .map(|&(family, kind)| match family {
                Family::Ipv4 => self.v4.summary(family, kind),
                Family::Ipv6 => self.v6.summary(family, kind),
            })
            .collect()
    }

    /// One entry a line, `a` or `first-last`, under `# set NAME` headers
    /// (the logical sets; a first `# shards N` line when the addresses are
    /// sharded): about 14 bytes an IPv4 address, and read back by
    /// [`SetContents::parse_text`].
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.shards > 1 {
            let _ = writeln!(out, "# shards {}", self.shards);
        }
        fn family<K: Key>(out: &mut String, f: Family, sets: &FamilySets<K>) {
            let _ = writeln!(out, "# set {}", set_name(f, SetKind::Addresses));
            for a in &sets.addresses {
                a.write_to(out);
                out.push('\n');
            }
            let _ = writeln!(out, "# set {}", set_name(f, SetKind::Networks));
            for (a, b) in &sets.networks {
                a.write_to(out);
                out.push('-');
                b.write_to(out);
                out.push('\n');
            }
        }
        family(&mut out, Family::Ipv4, &self.v4);
        family(&mut out, Family::Ipv6, &self.v6);
        out
    }

    /// The inverse of [`SetContents::to_text`]. `origin` names the file.
    pub fn parse_text(text: &str, origin: &str) -> Result<SetContents, String> {
        let mut out = SetContents::default();
        let mut current: Option<(Family, SetKind)> = None;
        for (i, line) in text.lines().enumerate() {
            if let Some(n) = line.strip_prefix("# shards ") {
                out.shards = match n.trim().parse() {
                    Ok(n) if n == 1 || n == SHARDS => n,
                    _ => {
                        return Err(format!(
                            "{origin}:{}: `# shards {n}`: expected 1 or {SHARDS}",
                            i + 1
                        ));
                    }
                };
                continue;
            }
            if let Some(name) = line.strip_prefix("# set ") {
                current = SETS
                    .iter()
                    .copied()
                    .find(|&(f, k)| set_name(f, k) == name.trim());
                if current.is_none() {
                    return Err(format!("{origin}:{}: unknown set `{name}`", i + 1));
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let Some((family, kind)) = current else {
                return Err(format!(
                    "{origin}:{}: an entry before any `# set` line",
                    i + 1
                ));
            };
            let entry = parse_entry(line.trim()).map_err(|e| format!("{origin}:{}: {e}", i + 1))?;
            match (entry, family, kind) {
                (Entry::V4(a, _), Family::Ipv4, SetKind::Addresses) => out.v4.addresses.push(a),
                (Entry::V4(a, b), Family::Ipv4, SetKind::Networks) => out.v4.networks.push((a, b)),
                (Entry::V6(a, _), Family::Ipv6, SetKind::Addresses) => out.v6.addresses.push(a),
                (Entry::V6(a, b), Family::Ipv6, SetKind::Networks) => out.v6.networks.push((a, b)),
                _ => return Err(format!("{origin}:{}: wrong family for its set", i + 1)),
            }
        }
        Ok(out)
    }
}

/// Ranges from an interval set's elements as the kernel lists them: a
/// start, then the address after the last flagged as the end. An end with
/// no start before it (nft's leading `0 end` element) starts nothing; a
/// start with no end runs to the last address.
pub(crate) fn ranges_from_bounds<K: Key>(mut bounds: Vec<(K, bool)>) -> Vec<(K, K)> {
    // At one key an end sorts before a start (an end closes the range before).
    bounds.sort_unstable_by_key(|&(k, end)| (k, !end));
    let mut out = Vec::new();
    let mut open: Option<K> = None;
    for (key, end) in bounds {
        match (end, open) {
            (false, None) => open = Some(key),
            (false, Some(_)) => {}
            (true, Some(start)) => {
                // key > start here: the end is the address after the last.
                let last = prev(key).unwrap_or(start);
                out.push((start, last));
                open = None;
            }
            (true, None) => {}
        }
    }
    if let Some(start) = open {
        out.push((start, max_key::<K>()));
    }
    out
}

fn prev<K: Key>(key: K) -> Option<K> {
    // Keys have no predecessor in the trait; search the block arithmetic:
    // key - 1 == the last address of the block ending right before it.
    if key == K::default() {
        return None;
    }
    let bits = key.trailing_zeros();
    // key has `bits` trailing zeros: key - 1 = (key - 2^bits) | (2^bits - 1).
    let base = clear_lowest_bit(key, bits);
    Some(base.block_end(bits))
}

fn clear_lowest_bit<K: Key>(key: K, bit: u32) -> K {
    let mut bytes = Vec::with_capacity(K::LEN);
    key.put_be(&mut bytes);
    let byte = K::LEN - 1 - (bit / 8) as usize;
    bytes[byte] &= !(1u8 << (bit % 8));
    K::from_be(&bytes).unwrap_or(key)
}

fn max_key<K: Key>() -> K {
    K::default().block_end(K::BITS)
}

/// An order-independent fingerprint of a set's content: FNV-1a over the
/// sorted elements. Status compares live sets with the files by count and
/// this, without storing a million elements anywhere.
pub(crate) fn digest<K: Key>(sorted_ranges: impl Iterator<Item = (K, K)>) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    let mut buf = Vec::with_capacity(32);
    for (a, b) in sorted_ranges {
        buf.clear();
        a.put_be(&mut buf);
        b.put_be(&mut buf);
        h.write(&buf);
    }
    format!("{:016x}", h.finish())
}

/// What `sorted_old` lacks of `sorted_new` (to add) and has beyond it (to
/// delete): one merge walk over two sorted slices.
pub(crate) fn delta<T: Ord + Copy>(sorted_old: &[T], sorted_new: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut add, mut del) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < sorted_old.len() || j < sorted_new.len() {
        match (sorted_old.get(i), sorted_new.get(j)) {
            (Some(o), Some(n)) if o == n => {
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) if o < n => {
                del.push(*o);
                i += 1;
            }
            (Some(o), None) => {
                del.push(*o);
                i += 1;
            }
            (_, Some(n)) => {
                add.push(*n);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (add, del)
}

/// The count and digest of one set: what records and status keep instead
/// of the elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SetSummary {
    pub name: String,
    pub entries: usize,
    pub digest: String,
}

impl SetSummary {
    pub fn of<K: Key>(family: Family, kind: SetKind, ranges: &Ranges<K>) -> SetSummary {
        let entries: Vec<(K, K)> = match kind {
            SetKind::Addresses => ranges.addresses().map(|a| (a, a)).collect(),
            SetKind::Networks => ranges.networks().collect(),
        };
        SetSummary {
            name: set_name(family, kind).to_string(),
            entries: entries.len(),
            digest: digest(entries.into_iter()),
        }
    }
}

/// `blocklist_v4: 1,000,000 entries, +12 −3 since the live set`.
pub(crate) fn summary_line(name: &str, entries: usize, change: Option<(usize, usize)>) -> String {
    let mut s = format!("{name}: {} entries", thousands(entries));
    if let Some((added, removed)) = change {
        let _ = write!(
            s,
            ", +{} −{} since the live set",
            thousands(added),
            thousands(removed)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn shards_split_by_the_last_bits_and_stay_sorted() {
        let keys: Vec<u32> = (0..1000u32).map(|i| i * 7).collect();
        let parts = address_shards(Family::Ipv4, &keys, SHARDS);
        assert_eq!(parts.len(), SHARDS as usize);
        assert_eq!(
            parts.iter().map(|(_, k)| k.len()).sum::<usize>(),
            keys.len()
        );
        for (shard, (name, part)) in parts.iter().enumerate() {
            assert_eq!(name, &format!("blocklist_v4_{shard:02}"));
            assert!(part.windows(2).all(|w| w[0] < w[1]));
            assert!(part.iter().all(|k| k % 64 == shard as u32));
        }
        let one = address_shards(Family::Ipv6, &[1u128, 2], 1);
        assert_eq!(one, [("blocklist_v6".to_string(), vec![1u128, 2])]);
        assert_eq!(shards_for(true), SHARDS);
        assert_eq!(shards_for(false), 1);
    }

    #[test]
    fn set_contents_know_which_addresses_they_list() {
        let mut lists = Collected::default();
        parse_list(
            "198.51.100.7\n203.0.113.0/24\n192.0.2.10-192.0.2.20\n2001:db8::/48\n2001:db8:1::1\n",
            "t",
            false,
            &mut lists,
        )
        .unwrap();
        let sets = SetContents {
            v4: FamilySets::of(&Ranges::merge(lists.v4)),
            v6: FamilySets::of(&Ranges::merge(lists.v6)),
            shards: 1,
        };
        let listed = |a: &str| sets.contains(a.parse().unwrap());
        for a in [
            "198.51.100.7",
            "203.0.113.0",
            "203.0.113.255",
            "192.0.2.15",
            "192.0.2.20",
        ] {
            assert!(listed(a), "{a}");
        }
        for a in ["::ffff:198.51.100.7", "2001:db8::5", "2001:db8:1::1"] {
            assert!(listed(a), "{a}");
        }
        for a in [
            "198.51.100.6",
            "192.0.2.21",
            "192.0.2.9",
            "203.0.114.0",
            "2001:db8:1::2",
        ] {
            assert!(!listed(a), "{a}");
        }
    }

    #[test]
    fn saved_sets_say_how_they_were_stored() {
        let text = "# shards 64\n# set blocklist_v4\n192.0.2.3\n";
        let sets = SetContents::parse_text(text, "t").unwrap();
        assert_eq!(sets.shards, SHARDS);
        assert_eq!(
            sets.to_text(),
            format!("{text}# set blocklist_net_v4\n# set blocklist_v6\n# set blocklist_net_v6\n")
        );
        // Written before sharding: one set.
        let old = SetContents::parse_text("# set blocklist_v4\n192.0.2.3\n", "t").unwrap();
        assert_eq!(old.shards, 1);
        let e = SetContents::parse_text("# shards 7\n", "f").unwrap_err();
        assert_eq!(e, "f:1: `# shards 7`: expected 1 or 64");
    }

    #[test]
    fn formats_as_people_get_them() {
        let text = "; Spamhaus DROP List 2024/01/01\n\
                    ; Last-Modified: x\n\
                    1.10.16.0/20 ; SBL256894\n\
                    # FireHOL netset\n\
                    \n\
                    198.51.100.7\n\
                    2001:db8:bad::/48\t# v6\n\
                    203.0.113.10-203.0.113.20\n   \n";
        let mut c = Collected::default();
        parse_list(text, "drop.txt", false, &mut c).unwrap();
        assert_eq!(c.v4.len(), 3);
        assert_eq!(c.v6.len(), 1);
        assert_eq!(c.v4[0], (v4("1.10.16.0"), v4("1.10.31.255")));
        assert_eq!(c.v4[2], (v4("203.0.113.10"), v4("203.0.113.20")));
    }

    #[test]
    fn a_bad_line_names_file_and_line_or_is_counted() {
        let text = "198.51.100.7\nnot-an-ip\n203.0.113.0/33\n10.0.0.1/8\n";
        let mut c = Collected::default();
        let e = parse_list(text, "b.txt", false, &mut c).unwrap_err();
        assert!(e.starts_with("b.txt:2: `not-an-ip`"), "{e}");
        let mut c = Collected::default();
        parse_list(text, "b.txt", true, &mut c).unwrap();
        assert_eq!((c.v4.len(), c.skipped), (1, 3));
        assert!(c.first_skipped.unwrap().starts_with("b.txt:2:"));
        let e = parse_entry("10.0.0.1/8").unwrap_err();
        assert!(e.contains("did you mean `10.0.0.0/8`"), "{e}");
        let e = parse_list("1.2.3.4 5.6.7.8\n", "x", false, &mut Collected::default()).unwrap_err();
        assert!(e.starts_with("x:1:"), "{e}");
    }

    #[test]
    fn merging_joins_overlaps_duplicates_and_neighbours() {
        let r = Ranges::merge(vec![
            (v4("10.0.0.5"), v4("10.0.0.5")),
            (v4("10.0.0.0"), v4("10.0.0.255")),
            (v4("10.0.1.0"), v4("10.0.1.0")),
            (v4("192.0.2.1"), v4("192.0.2.1")),
            (v4("192.0.2.1"), v4("192.0.2.1")),
            (v4("192.0.2.3"), v4("192.0.2.3")),
        ]);
        assert_eq!(
            r.ranges(),
            &[
                (v4("10.0.0.0"), v4("10.0.1.0")),
                (v4("192.0.2.1"), v4("192.0.2.1")),
                (v4("192.0.2.3"), v4("192.0.2.3")),
            ]
        );
        assert_eq!(r.addresses().count(), 2);
        assert_eq!(r.networks().count(), 1);
        assert!(r.contains(v4("10.0.0.200")));
        assert!(!r.contains(v4("192.0.2.2")));
        assert_eq!(r.kind_of(v4("10.0.1.0")), Some(SetKind::Networks));
        assert_eq!(r.kind_of(v4("192.0.2.3")), Some(SetKind::Addresses));
        assert_eq!(
            nft_element(v4("10.0.0.0"), v4("10.0.1.0")),
            "10.0.0.0-10.0.1.0"
        );
        assert_eq!(nft_element(v4("10.0.0.0"), v4("10.0.1.255")), "10.0.0.0/23");
        assert_eq!(
            cidrs(v4("10.0.0.0"), v4("10.0.1.0")),
            ["10.0.0.0/24", "10.0.1.0/32"]
        );
        assert_eq!(cidrs(0u32, u32::MAX), ["0.0.0.0/0"]);
    }

    #[test]
    fn interval_bounds_read_back_as_ranges() {
        let bounds = vec![
            (v4("10.0.2.0"), true),
            (0, true),
            (v4("10.0.0.0"), false),
            (v4("203.0.113.0"), false),
        ];
        assert_eq!(
            ranges_from_bounds(bounds),
            [
                (v4("10.0.0.0"), v4("10.0.1.255")),
                (v4("203.0.113.0"), u32::MAX)
            ]
        );
        assert_eq!(prev(v4("10.0.2.0")), Some(v4("10.0.1.255")));
        assert_eq!(prev(1u128 << 64), Some(u128::from(u64::MAX)));
        let mut c = Collected::default();
        parse_list(
            "192.0.2.1\n10.0.0.0/8\n2001:db8::1\n2001:db8:1::/48\n",
            "x",
            false,
            &mut c,
        )
        .unwrap();
        let b = crate::propose::ruleset::Blocklist {
            enabled: true,
            shards: SHARDS,
            ipv4: Ranges::merge(c.v4),
            ipv6: Ranges::merge(c.v6),
        };
        let sets = SetContents::of(&b);
        assert_eq!(SetContents::parse_text(&sets.to_text(), "t").unwrap(), sets);
        assert_eq!(
            sets.summaries()
                .iter()
                .map(|s| s.entries)
                .collect::<Vec<_>>(),
            [1, 1, 1, 1]
        );
    }

    #[test]
    fn delta_and_digest() {
        let (add, del) = delta(&[1, 2, 4, 7], &[2, 3, 4, 8]);
        assert_eq!((add, del), (vec![3, 8], vec![1, 7]));
        assert_eq!(
            digest([(1u32, 1u32)].into_iter()),
            digest([(1u32, 1u32)].into_iter())
        );
        assert_ne!(
            digest([(1u32, 1u32)].into_iter()),
            digest([(2u32, 2u32)].into_iter())
        );
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(
            summary_line("blocklist_v4", 1_000_000, Some((12, 3))),
            "blocklist_v4: 1,000,000 entries, +12 −3 since the live set"
        );
    }
}
