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

/// The type section and the strings of one BTF blob.
struct Types<'a> {
    types: &'a [u8],
    strings: &'a [u8],
}

/// One type: its id, where it starts in the type section, its name
/// offset and info word.
#[derive(Clone, Copy)]
struct Type {
    id: u32,
    at: usize,
    name: u32,
    info: u32,
}

impl Type {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn count(&self) -> usize {
        (self.info & 0xffff) as usize
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The facts, from the bytes of `/sys/kernel/btf/vmlinux`.
pub(super) fn iterator_facts(blob: &[u8]) -> Result<IteratorFacts, String> {
    let types = Types::read(blob)?;
    let wanted: [(u32, &[u8]); 4] = [
        (KIND_STRUCT, b"file"),
        (KIND_STRUCT, b"inode"),
        (KIND_STRUCT, b"task_struct"),
        (KIND_FUNC, b"bpf_iter_task_file"),
    ];
    let mut found: [Option<Type>; 4] = [None; 4];
    types.each(|ty| {
        let kind = ty.kind();
        // A struct with no members is a forward declaration.
        if kind == KIND_FUNC || (kind == KIND_STRUCT && ty.count() > 0) {
            let name = types.name(ty.name);
            for (slot, (want_kind, want_name)) in found.iter_mut().zip(&wanted) {
                if slot.is_none() && kind == *want_kind && name == Some(*want_name) {
                    *slot = Some(ty);
                }
            }
        }
        found.iter().any(Option::is_none)
    })?;
    let ty = |i: usize| {
        found[i].ok_or_else(|| {
            format!(
                "the kernel's BTF has no {}",
                String::from_utf8_lossy(wanted[i].1)
            )
        })
    };
    let member = |ty: Type, name: &str| {
        types
            .member_offset(ty, name.as_bytes(), 0)
            .ok_or_else(|| format!("the kernel's BTF has no member {name}"))
    };
    Ok(IteratorFacts {
        iterator_function: ty(3)?.id,
        file_inode: member(ty(0)?, "f_inode")?,
        inode_mode: member(ty(1)?, "i_mode")?,
        inode_number: member(ty(1)?, "i_ino")?,
        task_tgid: member(ty(2)?, "tgid")?,
    })
}

impl<'a> Types<'a> {
    fn read(blob: &'a [u8]) -> Result<Types<'a>, String> {
        let magic = blob.get(0..2).map(|m| u16::from_le_bytes([m[0], m[1]]));
        if magic != Some(MAGIC) {
            return Err("not BTF (no 0xeb9f magic)".into());
        }
        let field = |at| {
            u32_at(blob, at)
                .map(|v| v as usize)
                .ok_or("a short BTF header")
        };
        let (header, type_off, type_len, str_off, str_len) =
            (field(4)?, field(8)?, field(12)?, field(16)?, field(20)?);
        let section = |off: usize, len: usize| {
            let start = header.checked_add(off)?;
            blob.get(start..start.checked_add(len)?)
        };
        Ok(Types {
            types: section(type_off, type_len).ok_or("the type section runs past the end")?,
            strings: section(str_off, str_len).ok_or("the strings run past the end")?,
        })
    }

    /// Call `visit` with each type in order, while it returns true.
    fn each(&self, mut visit: impl FnMut(Type) -> bool) -> Result<(), String> {
        let mut at = 0;
        let mut id = 1;
        while at < self.types.len() {
            let (Some(name), Some(info)) = (u32_at(self.types, at), u32_at(self.types, at + 4))
            else {
                return Err("a type runs past the type section".into());
            };
            let ty = Type { id, at, name, info };
            if !visit(ty) {
                return Ok(());
            }
            let count = ty.count();
            at += 12
                + match ty.kind() {
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
            id += 1;
        }
        Ok(())
    }

    /// The type with this id (another pass: only an anonymous member
    /// asks for one).
    fn by_id(&self, id: u32) -> Option<Type> {
        let mut found = None;
        self.each(|ty| {
            if ty.id == id {
                found = Some(ty);
            }
            ty.id < id
        })
        .ok()?;
        found
    }

    fn name(&self, offset: u32) -> Option<&'a [u8]> {
        let rest = self.strings.get(offset as usize..)?;
        Some(&rest[..rest.iter().position(|&c| c == 0)?])
    }

    /// The members of struct or union `ty`: (name offset, type id, byte
    /// offset), `None` where one runs past the type section.
    fn members(&self, ty: Type) -> impl Iterator<Item = Option<(u32, u32, u32)>> + '_ {
        (0..ty.count()).map(move |index| {
            let at = ty.at + 12 + index * 12;
            let mut bits = u32_at(self.types, at + 8)?;
            // With kind_flag, the top 8 bits are a bitfield's size.
            if ty.info >> 31 == 1 {
                bits &= 0x00ff_ffff;
            }
            Some((
                u32_at(self.types, at)?,
                u32_at(self.types, at + 4)?,
                bits / 8,
            ))
        })
    }

    /// The byte offset of member `name` of struct or union `ty`: its own
    /// members first, then inside its anonymous structs and unions
    /// (`depth` bounds a loop in damaged data).
    fn member_offset(&self, ty: Type, name: &[u8], depth: u32) -> Option<u32> {
        if depth > 8 || (ty.kind() != KIND_STRUCT && ty.kind() != KIND_UNION) {
            return None;
        }
        for member in self.members(ty) {
            let (member_name, _, offset) = member?;
            if member_name != 0 && self.name(member_name) == Some(name) {
                return Some(offset);
            }
        }
        for member in self.members(ty) {
            let (member_name, member_type, offset) = member?;
            if member_name == 0
                && let Some(inner) = self
                    .by_id(member_type)
                    .and_then(|inner| self.member_offset(inner, name, depth + 1))
            {
                return offset.checked_add(inner);
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
            "file",
            "f_inode",
            "pad",
            "inode",
            "i_mode",
            "i_ino",
            "x",
            "task_struct",
            "tgid",
            "bpf_iter_task_file",
            "int",
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
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
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
