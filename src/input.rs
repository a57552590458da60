//! Files the operator names (`--policy`, blocklist files, `--from`, the
//! blocklist files a record names, `log --file`, a fixture directory's
//! tables), all opened one way. A path can name anything: a FIFO (whose
//! `open` waits for a writer, and whose reads never end), `/dev/zero` or
//! `/dev/urandom` (read until memory runs out), a directory, a terminal. So
//! a file is opened non-blocking and without becoming a controlling
//! terminal, `fstat`ed, and refused unless it is a regular file; it is read
//! up to a cap that fits its kind; text must be UTF-8, and the first byte
//! that is not is named by line and byte offset. Every refusal is bad
//! input (exit 2) naming the path. Edge.

use crate::error::bad_input;
use crate::terminal;
use std::fs::{Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

const MIB: u64 = 1 << 20;

/// What a file is for: names it in messages and decides its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--policy`: a few hundred lines written by hand.
    Policy,
    /// A blocklist file, given in a policy or recorded by apply.
    Blocklist,
    /// `propose --from`: a saved `scan --json`.
    SavedScan,
    /// `log --file`: a saved kernel log.
    KernelLog,
    /// A file of a saved scan directory (`scan --fixture`).
    SavedTable,
}

impl Kind {
    /// How messages call it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Policy => "policy file",
            Kind::Blocklist => "blocklist file",
            Kind::SavedScan => "saved scan",
            Kind::KernelLog => "kernel log",
            Kind::SavedTable => "saved table",
        }
    }

    /// The most bytes a file of this kind is read to. Each is far above
    /// any real file and far below what would hurt the host:
    /// - a policy file is written by hand; 1 MiB is some 30,000 lines
    ///   (inline blocklist addresses included: long lists go in files);
    /// - a blocklist of some million lines: a line is 8 to 43 bytes
    ///   (`192.0.2.1` to a full IPv6 network), Spamhaus DROP's with its
    ///   comment 25 (`1.10.16.0/20 ; SBL256894`), so ten million such lines
    ///   fit in 256 MiB, ten times the million autofw is measured at; the
    ///   parsed ranges take as much memory again, so a larger cap would let
    ///   one file cost more than the host should spend on a firewall;
    /// - a saved scan is about 400 bytes a listener: 256 MiB is 600,000
    ///   listeners, six times the 100,000 propose is measured at;
    /// - a kernel log is counted line by line; 256 MiB is about two million
    ///   drop lines (filter a longer log with `grep 'autofw'` first);
    /// - a saved socket table holds one socket per 150 bytes: 64 MiB.
    pub(crate) fn cap(self) -> u64 {
        match self {
            Kind::Policy => MIB,
            Kind::Blocklist | Kind::SavedScan | Kind::KernelLog => 256 * MIB,
            Kind::SavedTable => 64 * MIB,
        }
    }

    fn cap_text(self) -> String {
        format!("{} MiB", self.cap() / MIB)
    }
}

/// The bytes of a file of `kind` at `path`.
pub(crate) fn read_bytes(path: &Path, kind: Kind) -> anyhow::Result<Vec<u8>> {
    let shown = terminal::path(path);
    let what = kind.name();
    let cannot = |e: std::io::Error| bad_input(format!("cannot read {what} {shown}: {e}"));
    // Refused before it is opened where possible: opening a device can act
    // (a tape rewinds, a terminal may become ours), a FIFO's open waits.
    refuse_unless_regular(&std::fs::metadata(path).map_err(cannot)?, kind, &shown)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    // And again on what was opened: the path may have changed in between.
    let meta = file.metadata().map_err(cannot)?;
    refuse_unless_regular(&meta, kind, &shown)?;
    let too_big = || {
        bad_input(format!(
            "{what} {shown} is larger than {}, the most autofw reads for a {what}",
            kind.cap_text()
        ))
    };
    if meta.len() > kind.cap() {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Files that say size 0 (/proc) or grow while read stop at the cap too.
    file.take(kind.cap() + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > kind.cap() {
        return Err(too_big());
    }
    Ok(bytes)
}

/// The text of a file of `kind` at `path`: UTF-8 (a UTF-8 byte order mark,
/// as some Windows editors write, is dropped), without NUL bytes.
pub(crate) fn read_text(path: &Path, kind: Kind) -> anyhow::Result<String> {
    let bytes = read_bytes(path, kind)?;
    text_of(bytes).map_err(|problem| {
        bad_input(format!(
            "{} {} is not UTF-8 text: {problem}",
            kind.name(),
            terminal::path(path)
        ))
    })
}

/// [`read_text`], with a missing file `None` (the optional files of a
/// saved scan directory, a policy file `autofw allow` creates, the policy
/// file status compares with the one applied).
pub(crate) fn read_text_if_exists(path: &Path, kind: Kind) -> anyhow::Result<Option<String>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read_text(path, kind).map(Some),
    }
}

fn refuse_unless_regular(meta: &Metadata, kind: Kind, shown: &str) -> anyhow::Result<()> {
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let is = if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(bad_input(format!(
        "{} {shown} is {is}, not a regular file; give the path of a file",
        kind.name()
    )))
}

/// `bytes` as text, or what is wrong: a UTF-16 byte order mark, or the
/// line and byte offset of the first byte that is not UTF-8 or is NUL.
/// Pure, for the unit tests.
fn text_of(mut bytes: Vec<u8>) -> Result<String, String> {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(
            "it is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8".to_string(),
        );
    }
    if bytes.starts_with(&[0xef, 0xbb, 0xbf]) {
        bytes.drain(..3);
    }
    let nul = bytes.iter().position(|&b| b == 0);
    let invalid = std::str::from_utf8(&bytes).err().map(|e| e.valid_up_to());
    let first = match (nul, invalid) {
        (Some(n), Some(i)) => Some(n.min(i)),
        (n, i) => n.or(i),
    };
    let Some(at) = first else {
        // Checked just above: valid UTF-8.
        return String::from_utf8(bytes).map_err(|e| e.to_string());
    };
    let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    Err(if bytes[at] == 0 {
        format!(
            "line {line} (byte {at}) holds a NUL byte: a binary file, or UTF-16 without a byte \
             order mark?"
        )
    } else {
        format!(
            "line {line} (byte {at}) holds the byte 0x{:02x}, which is not UTF-8; save it as UTF-8",
            bytes[at]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_and_the_first_bad_byte_is_named() {
        assert_eq!(
            text_of(b"allow = [\"ssh\"]\n".to_vec()).unwrap(),
            "allow = [\"ssh\"]\n"
        );
        assert_eq!(
            text_of(b"\xef\xbb\xbf192.0.2.1\n".to_vec()).unwrap(),
            "192.0.2.1\n"
        );
        let e = text_of(b"192.0.2.1\n192.0.2.2\nab\xe9cd\n".to_vec()).unwrap_err();
        assert_eq!(
            e,
            "line 3 (byte 22) holds the byte 0xe9, which is not UTF-8; save it as UTF-8"
        );
        let e = text_of(b"\xff\xfe1\x009\x002\x00".to_vec()).unwrap_err();
        assert!(e.contains("UTF-16"), "{e}");
        let e = text_of(b"\xfe\xff\x001".to_vec()).unwrap_err();
        assert!(e.contains("UTF-16"), "{e}");
        let e = text_of(b"ok\n1\x009\x00".to_vec()).unwrap_err();
        assert!(e.starts_with("line 2 (byte 4) holds a NUL byte"), "{e}");
        // Whichever comes first.
        let e = text_of(b"\xc3\n\x00".to_vec()).unwrap_err();
        assert!(e.starts_with("line 1 (byte 0) holds the byte 0xc3"), "{e}");
    }

    #[test]
    fn caps_fit_their_kind() {
        assert_eq!(Kind::Policy.cap(), 1 << 20);
        assert_eq!(Kind::Blocklist.cap_text(), "256 MiB");
        // Ten million IPv4 lines with a Spamhaus-like comment fit.
        assert!(10_000_000 * "1.10.16.0/20 ; SBL256894\n".len() as u64 <= Kind::Blocklist.cap());
        for kind in [
            Kind::Policy,
            Kind::Blocklist,
            Kind::SavedScan,
            Kind::KernelLog,
            Kind::SavedTable,
        ] {
            assert!(kind.cap() <= 256 * MIB, "{kind:?}");
        }
    }

    #[test]
    fn special_files_are_refused_by_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let err = |path: &Path, kind| format!("{:#}", read_bytes(path, kind).unwrap_err());
        let e = err(dir.path(), Kind::Policy);
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        let e = err(Path::new("/dev/zero"), Kind::Blocklist);
        assert_eq!(
            e,
            "blocklist file /dev/zero is a character device, not a regular file; give the path of a file"
        );
        let fifo = dir.path().join("f\x1b[2J");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = err(&fifo, Kind::SavedScan);
        assert!(
            e.contains("is a FIFO (named pipe)") && e.contains("f\\x1b[2J"),
            "{e}"
        );
        let e = err(&dir.path().join("missing"), Kind::Policy);
        assert!(
            e.starts_with("cannot read policy file") && e.contains("No such file"),
            "{e}"
        );
    }

    #[test]
    fn a_file_past_its_cap_is_refused_naming_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, vec![b'#'; (MIB + 1) as usize]).unwrap();
        let e = format!("{:#}", read_text(&path, Kind::Policy).unwrap_err());
        assert!(
            e.contains("larger than 1 MiB, the most autofw reads for a policy file"),
            "{e}"
        );
        std::fs::write(&path, vec![b'#'; MIB as usize]).unwrap();
        assert_eq!(read_text(&path, Kind::Policy).unwrap().len(), MIB as usize);
    }
}
