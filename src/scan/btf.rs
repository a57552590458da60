//! The few facts the kernel's `task_file` iterator program
//! ([`super::task_files`]) needs from the kernel's own type information
//! (BTF, `/sys/kernel/btf/vmlinux`): where `struct file` keeps its inode,
//! where `struct inode` keeps its mode and number, where `struct
//! task_struct` keeps its process id (they move between kernel builds),
//! and the type id of the iterator's function, which names the iterator
//! when the program is loaded.
//!
//! One pass over the type section, looking for four names, instead of a
//! crate that indexes all of the kernel's ~130,000 types by name: this is
//! on the path of a scan, and the pass takes about a millisecond. Damaged
//! or unexpected data is an error, never a panic; the caller then walks
//! `/proc` instead. Format: the kernel's Documentation/bpf/btf.rst.

/// `BTF_KIND_STRUCT`, `BTF_KIND_UNION`, `BTF_KIND_FUNC`.
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_FUNC: u32 = 12;
const MAGIC: u16 = 0xeb9f;

/// What the iterator program needs: byte offsets of the fields it reads,
/// and the type id of `bpf_iter_task_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IteratorFacts {
    pub(super) iterator_function: u32,
    pub(super) file_inode: u32,
    pub(super) inode_mode: u32,
    pub(super) inode_number: u32,
    pub(super) task_tgid: u32,
}

/// The type section and the strings of one BTF blob, and where each type
/// starts (index: type id - 1).
struct Types<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    starts: Vec<u32>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The facts, from the bytes of `/sys/kernel/btf/vmlinux`.
pub(super) fn iterator_facts(blob: &[u8]) -> Result<IteratorFacts, String> {
    let types = Types::read(blob)?;
    let mut wanted = [
        (KIND_STRUCT, &b"file"[..], None),
        (KIND_STRUCT, b"inode", None),
        (KIND_STRUCT, b"task_struct", None),
        (KIND_FUNC, b"bpf_iter_task_file", None),
    ];
    for id in 1..=types.starts.len() as u32 {
        let (name, info) = types.header(id).ok_or("a type runs past the type section")?;
        let kind = (info >> 24) & 0x1f;
        for (want_kind, want_name, found) in wanted.iter_mut() {
            // A struct with no members is a forward declaration.
            if found.is_none()
                && kind == *want_kind
                && (kind == KIND_FUNC || info & 0xffff > 0)
                && types.name(name) == Some(*want_name)
            {
                *found = Some(id);
            }
        }
    }
    let id = |i: usize| {
        wanted[i].2.ok_or_else(|| {
            format!(
                "the kernel's BTF has no {}",
                String::from_utf8_lossy(wanted[i].1)
            )
        })
    };
    let member = |id: u32, name: &str| {
        types
            .member_offset(id, name.as_bytes(), 0)
            .ok_or_else(|| format!("the kernel's BTF has no member {name}"))
    };
    let (file, inode, task) = (id(0)?, id(1)?, id(2)?);
    Ok(IteratorFacts {
        iterator_function: id(3)?,
        file_inode: member(file, "f_inode")?,
        inode_mode: member(inode, "i_mode")?,
        inode_number: member(inode, "i_ino")?,
        task_tgid: member(task, "tgid")?,
    })
}

impl<'a> Types<'a> {
    fn read(blob: &'a [u8]) -> Result<Types<'a>, String> {
        let magic = blob.get(0..2).map(|m| u16::from_le_bytes([m[0], m[1]]));
        if magic != Some(MAGIC) {
            return Err("not BTF (no 0xeb9f magic)".into());
        }
        let field = |at| u32_at(blob, at).map(|v| v as usize).ok_or("a short BTF header");
        let (header, type_off, type_len, str_off, str_len) =
            (field(4)?, field(8)?, field(12)?, field(16)?, field(20)?);
        let section = |off: usize, len: usize| {
            let start = header.checked_add(off)?;
            blob.get(start..start.checked_add(len)?)
        };
        let types = section(type_off, type_len).ok_or("the type section runs past the end")?;
        let strings = section(str_off, str_len).ok_or("the strings run past the end")?;
        let mut starts = Vec::with_capacity(type_len / 16);
        let mut at = 0;
        while at < types.len() {
            starts.push(at as u32);
            let info = u32_at(types, at + 4).ok_or("a type runs past the type section")?;
            let count = (info & 0xffff) as usize;
            at += 12 + match (info >> 24) & 0x1f {
                // INT, VAR, DECL_TAG: one u32.
                1 | 14 | 17 => 4,
                // ARRAY: struct btf_array.
                3 => 12,
                // STRUCT, UNION, DATASEC, ENUM64: 12 bytes per entry.
                4 | 5 | 15 | 19 => count * 12,
                // ENUM, FUNC_PROTO: 8 bytes per entry.
                6 | 13 => count * 8,
                // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC,
                // FLOAT, TYPE_TAG: nothing after the header.
                2 | 7..=12 | 16 | 18 => 0,
                kind => return Err(format!("an unknown BTF kind {kind}")),
            };
        }
        Ok(Types {
            types,
            strings,
            starts,
        })
    }

    /// A type's name offset and info word.
    fn header(&self, id: u32) -> Option<(u32, u32)> {
        let at = *self.starts.get(id.checked_sub(1)? as usize)? as usize;
        Some((u32_at(self.types, at)?, u32_at(self.types, at + 4)?))
    }

    fn name(&self, offset: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(offset as usize..)?;
        Some(&rest[..rest.iter().position(|&c| c == 0)?])
    }

    /// The byte offset of member `name` of struct or union `id`, looking
    /// into its anonymous structs and unions (`depth` bounds a loop in
    /// damaged data).
    fn member_offset(&self, id: u32, name: &[u8], depth: u32) -> Option<u32> {
        let (_, info) = self.header(id)?;
        let kind = (info >> 24) & 0x1f;
        if depth > 8 || (kind != KIND_STRUCT && kind != KIND_UNION) {
            return None;
        }
        let start = *self.starts.get(id as usize - 1)? as usize + 12;
        for index in 0..(info & 0xffff) as usize {
            let at = start + index * 12;
            let (member_name, member_type) = (u32_at(self.types, at)?, u32_at(self.types, at + 4)?);
            let mut bits = u32_at(self.types, at + 8)?;
            // With kind_flag, the top 8 bits are a bitfield's size.
            if info >> 31 == 1 {
                bits &= 0x00ff_ffff;
            }
            let found = if member_name == 0 {
                self.member_offset(member_type, name, depth + 1)
            } else if self.name(member_name) == Some(name) {
                Some(0)
            } else {
                None
            };
            if let Some(inner) = found {
                return (bits / 8).checked_add(inner);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small BTF blob: `struct file { void *pad; struct inode *f_inode; }`,
    /// `struct inode { u16 i_mode; union { long x; unsigned long i_ino; } }`
    /// at offset 64 (through an anonymous union), `struct task_struct`
    /// with `tgid` at 1268, and the iterator's FUNC, after a forward
    /// declaration of `file` that must not be taken.
    fn blob() -> Vec<u8> {
        let mut strings = b"\0".to_vec();
        let mut name = |s: &str| {
            let at = strings.len() as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        };
        let names: Vec<u32> = [
            "file", "f_inode", "pad", "inode", "i_mode", "i_ino", "x", "task_struct", "tgid",
            "bpf_iter_task_file", "int",
        ]
        .iter()
        .map(|s| name(s))
        .collect();
        let mut types = Vec::new();
        let mut ty = |name: u32, kind: u32, count: u32, size: u32, extra: &[u32]| {
            for v in [name, (kind << 24) | count, size].iter().chain(extra) {
                types.extend_from_slice(&v.to_le_bytes());
            }
        };
        // 1: int
        ty(names[10], 1, 0, 4, &[32]);
        // 2: FWD file
        ty(names[0], 7, 0, 0, &[]);
        // 3: struct file { pad @0, f_inode @ 32 bytes }
        ty(names[0], 4, 2, 40, &[names[2], 1, 0, names[1], 1, 256]);
        // 4: anonymous union { x, i_ino }
        ty(0, 5, 2, 8, &[names[6], 1, 0, names[5], 1, 0]);
        // 5: struct inode { i_mode @0, <anon> @ 64 bytes }
        ty(names[3], 4, 2, 72, &[names[4], 1, 0, 0, 4, 512]);
        // 6: struct task_struct { tgid @ 1268 bytes }
        ty(names[7], 4, 1, 2000, &[names[8], 1, 1268 * 8]);
        // 7: FUNC_PROTO (no params) 8: FUNC
        ty(0, 13, 0, 1, &[]);
        ty(names[9], 12, 0, 7, &[]);
        let mut blob = Vec::new();
        blob.extend_from_slice(&MAGIC.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        for v in [24u32, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            blob.extend_from_slice(&v.to_le_bytes());
        }
        blob.extend_from_slice(&types);
        blob.extend_from_slice(&strings);
        blob
    }

    #[test]
    fn finds_each_field_through_anonymous_unions_and_skips_forward_declarations() {
        assert_eq!(
            iterator_facts(&blob()),
            Ok(IteratorFacts {
                iterator_function: 8,
                file_inode: 32,
                inode_mode: 0,
                inode_number: 64,
                task_tgid: 1268,
            })
        );
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let good = blob();
        assert!(iterator_facts(&[]).is_err());
        assert!(iterator_facts(b"not btf at all, not at all").is_err());
        for cut in (0..good.len()).step_by(7) {
            let _ = iterator_facts(&good[..cut]);
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0xff;
            let _ = iterator_facts(&bad);
        }
        let mut no_func = good.clone();
        let at = no_func
            .windows(18)
            .position(|w| w == b"bpf_iter_task_file")
            .unwrap();
        no_func[at] = b'X';
        assert_eq!(
            iterator_facts(&no_func).unwrap_err(),
            "the kernel's BTF has no bpf_iter_task_file"
        );
    }
}
