//! The `/proc/net/{tcp,tcp6,udp,udp6}` reader: parses a socket table from
//! any reader (the live file, or a saved fixture) with procfs's own parsers.
//!
//! On a busy host these files hold every connection (40,000 lines for 20,000
//! loopback connections), so lines are streamed, and only those whose state
//! can be a listener ([`core::may_listen`]) are handed to procfs; the others
//! are only checked for shape. Every error names the file and the line.

use super::core::{self, SocketEntry};
use crate::model::Proto;
use procfs::FromBufReadSI;
use procfs::net::{TcpNetEntries, UdpNetEntries};
use std::fmt;
use std::io::{BufRead, BufReader, Cursor};
use std::net::SocketAddr;
use std::path::Path;

/// One of the four kernel socket tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}

impl Table {
    pub(crate) const ALL: [Table; 4] = [Table::Tcp, Table::Tcp6, Table::Udp, Table::Udp6];

    /// The file name under `/proc/net/` (and in a fixture directory).
    pub(crate) fn file_name(self) -> &'static str {
        match self {
            Table::Tcp => "tcp",
            Table::Tcp6 => "tcp6",
            Table::Udp => "udp",
            Table::Udp6 => "udp6",
        }
    }

    pub(crate) fn proto(self) -> Proto {
        match self {
            Table::Tcp | Table::Tcp6 => Proto::Tcp,
            Table::Udp | Table::Udp6 => Proto::Udp,
        }
    }

    pub(crate) fn is_v6(self) -> bool {
        matches!(self, Table::Tcp6 | Table::Udp6)
    }
}

/// A socket table or owner map that does not parse: which file, which
/// line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub file: String,
    /// 1-based; 0 when the file could not be read at all.
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "`{}`: {}", self.file, self.problem)
        } else {
            write!(f, "`{}` line {}: {}", self.file, self.line, self.problem)
        }
    }
}

impl std::error::Error for LineError {}

/// Fields every table line has up to the inode:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`.
const FIELDS_TO_INODE: usize = 10;

/// Parse one table from `reader`; `file` names it in errors. Returns the
/// entries whose state can be a listener; the caller's core decides the rest.
pub(crate) fn parse_table<R: BufRead>(
    mut reader: R,
    table: Table,
    file: &str,
) -> Result<Vec<SocketEntry>, LineError> {
    let error = |line: usize, problem: String| LineError {
        file: file.to_string(),
        line,
        problem,
    };
    let mut entries = Vec::new();
    let mut bytes = Vec::with_capacity(256);
    let mut number = 0;
    loop {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| error(number + 1, format!("cannot read: {e}")))?;
        if read == 0 {
            break;
        }
        number += 1;
        let line = std::str::from_utf8(&bytes)
            .map_err(|_| error(number, "is not UTF-8 text".to_string()))?;
        if number == 1 {
            if !line.trim_start().starts_with("sl") {
                return Err(error(
                    number,
                    format!(
                        "expected the header `sl local_address rem_address st ...`, found `{}`",
                        excerpt(line)
                    ),
                ));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let state = line_state(line).map_err(|problem| error(number, problem))?;
        if !core::may_listen(table.proto(), state) {
            continue;
        }
        let entry = parse_line(line, table).map_err(|problem| error(number, problem))?;
        entries.push(entry);
    }
    if number == 0 {
        return Err(error(0, "is empty (not even the header line)".to_string()));
    }
    Ok(entries)
}

/// Check a line's shape without parsing its addresses, and return its state.
fn line_state(line: &str) -> Result<u8, String> {
    let fields = line.split_ascii_whitespace();
    let count = fields.clone().take(FIELDS_TO_INODE).count();
    let state = match fields.clone().nth(3) {
        Some(state) if count == FIELDS_TO_INODE => state,
        _ => {
            return Err(format!(
                "expected at least {FIELDS_TO_INODE} fields (sl, local_address, rem_address, st, ..., inode), found {count}: `{}`",
                excerpt(line)
            ));
        }
    };
    match u8::from_str_radix(state, 16) {
        Ok(state_number) if state.len() == 2 => Ok(state_number),
        _ => Err(format!(
            "state `{state}` is not a two-digit hex number: `{}`",
            excerpt(line)
        )),
    }
}

/// Check that an address field is the kernel's `HEXADDR:HEXPORT` (8 or 32
/// hex digits, a colon, 4 hex digits), so a bad one is reported in autofw's
/// words rather than procfs's. (The family is checked after parsing.)
fn check_address(field: &str, which: &str, line: &str) -> Result<(), String> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match field.split_once(':') {
        Some((addr, port))
            if matches!(addr.len(), 8 | 32) && hex(addr) && port.len() == 4 && hex(port) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{which} `{}` is not 8 or 32 hex digits, a colon and a 4-digit hex port: `{}`",
            excerpt(field),
            excerpt(line)
        )),
    }
}

/// Parse one data line with procfs (which wants a header line first).
fn parse_line(line: &str, table: Table) -> Result<SocketEntry, String> {
    let mut fields = line.split_ascii_whitespace().skip(1);
    for which in ["local_address", "rem_address"] {
        check_address(fields.next().unwrap_or(""), which, line)?;
    }
    let text = format!("sl\n{line}");
    let info = procfs::current_system_info();
    // TCP and UDP rows are two procfs types with the same fields.
    macro_rules! first_entry {
        ($entries:ty) => {{
            let parsed = <$entries>::from_buf_read(Cursor::new(text), info)
                .map_err(|e| procfs_problem(&e, line))?;
            let e = parsed.0.into_iter().next().ok_or("no entry")?;
            (
                e.local_address,
                e.remote_address,
                e.state.to_u8(),
                e.inode,
                e.uid,
            )
        }};
    }
    let (local, remote, state, inode, uid) = match table.proto() {
        Proto::Tcp => first_entry!(TcpNetEntries),
        Proto::Udp => first_entry!(UdpNetEntries),
    };
    let v6 = matches!(local, SocketAddr::V6(_)) && matches!(remote, SocketAddr::V6(_));
    let v4 = matches!(local, SocketAddr::V4(_)) && matches!(remote, SocketAddr::V4(_));
    if (table.is_v6() && !v6) || (!table.is_v6() && !v4) {
        return Err(format!(
            "expected {} addresses in `{}`: `{}`",
            if table.is_v6() { "IPv6" } else { "IPv4" },
            table.file_name(),
            excerpt(line)
        ));
    }
    Ok(SocketEntry {
        proto: table.proto(),
        local,
        remote,
        state,
        inode,
        uid,
        // `/proc/net` does not say which device a socket is bound to.
        device: None,
    })
}

/// procfs reports a bad field as an "internal error, please report" with
/// its own source location; keep only the part that describes the input.
fn procfs_problem(err: &procfs::ProcError, line: &str) -> String {
    let text = err.to_string();
    let detail = text
        .rsplit("Internal Unwrap Error: ")
        .next()
        .unwrap_or(&text)
        .trim();
    format!("malformed entry ({detail}): `{}`", excerpt(line))
}

/// The line as it can be quoted in an error: trimmed, escaped and cut as
/// every quoted input is ([`crate::terminal::excerpt_of`]; a saved table is
/// an input file like any other).
fn excerpt(line: &str) -> String {
    crate::terminal::excerpt_of(line.trim(), 100)
}

/// Read `table` from `dir` (`/proc/net`, or a fixture directory). A missing
/// IPv6 table means IPv6 is off: empty, not an error. A missing IPv4 one is.
pub(crate) fn read_table(dir: &Path, table: Table) -> Result<Vec<SocketEntry>, LineError> {
    let path = dir.join(table.file_name());
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && table.is_v6() => {
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(LineError {
                file: path.display().to_string(),
                line: 0,
                problem: format!("cannot open: {e}"),
            });
        }
    };
    parse_table(
        BufReader::with_capacity(64 * 1024, file),
        table,
        &path.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::core::{TCP_CLOSE, TCP_LISTEN};

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 15321 1 0000000000000000 100 0 0 10 0
   1: 0A7100CB:15F6 0700C6C6:C822 01 00000000:00000000 02:0009F5C6 00000000     0        0 17001 4 0000000000000000 20 4 29 10 -1
";

    #[test]
    fn parses_listeners_and_skips_established() {
        let got = parse_table(TCP.as_bytes(), Table::Tcp, "tcp").unwrap();
        assert_eq!(
            got,
            [SocketEntry {
                proto: Proto::Tcp,
                local: "127.0.0.1:3306".parse().unwrap(),
                remote: "0.0.0.0:0".parse().unwrap(),
                state: TCP_LISTEN,
                inode: 15321,
                uid: 110,
                device: None,
            }]
        );
    }

    #[test]
    fn parses_v6_and_mapped_udp() {
        let text = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0000000000000000FFFF00000100007F:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 501 2 0000000000000000 0
  101: B80D0120000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 502 2 0000000000000000 0
";
        let got = parse_table(text.as_bytes(), Table::Udp6, "udp6").unwrap();
        let locals: Vec<String> = got.iter().map(|e| e.local.to_string()).collect();
        assert_eq!(locals, ["[::ffff:127.0.0.1]:53", "[2001:db8::1]:53"]);
        assert!(got.iter().all(|e| e.state == TCP_CLOSE));
    }

    fn err(text: &str, table: Table) -> String {
        parse_table(text.as_bytes(), table, "fx/tcp")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn quoted_lines_are_escaped_and_cut() {
        let header = TCP.lines().next().unwrap();
        let hostile = format!("{header}\n   0: \x1b[2J\u{202e}{}\n", "x".repeat(500));
        let e = err(&hostile, Table::Tcp);
        assert!(!e.contains('\x1b') && !e.contains('\u{202e}'), "{e:?}");
        assert!(e.contains("bytes)"), "{e}");
        assert!(e.len() < 400, "{} bytes", e.len());
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let header = TCP.lines().next().unwrap();
        let bad_port = format!(
            "{header}\n   0: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n"
        );
        let e = err(&bad_port, Table::Tcp);
        assert!(
            e.starts_with(
                "`fx/tcp` line 2: local_address `0100007F:ZZZZ` is not 8 or 32 hex digits"
            ),
            "{e}"
        );

        let short = format!("{header}\n   0: 0100007F:0016 00000000:0000 0A\n");
        let e = err(&short, Table::Tcp);
        assert!(
            e.starts_with("`fx/tcp` line 2: expected at least 10 fields"),
            "{e}"
        );

        let state = format!(
            "{header}\n{}\n   1: 0100007F:0016 00000000:0000 XQ 00000000:00000000 00:00000000 00000000 0 0 1 1\n",
            TCP.lines().nth(1).unwrap()
        );
        assert!(err(&state, Table::Tcp).starts_with("`fx/tcp` line 3: state `XQ`"));

        let no_header = TCP.lines().nth(1).unwrap();
        assert!(err(no_header, Table::Tcp).contains("line 1: expected the header"));
        assert!(err("", Table::Tcp).contains("is empty"));

        let v4_in_v6 = TCP.to_string();
        assert!(err(&v4_in_v6, Table::Tcp6).contains("line 2: expected IPv6 addresses"));

        let mut latin1 = format!("{header}\n").into_bytes();
        latin1.extend_from_slice(b"   0: \xff\n");
        let e = parse_table(&latin1[..], Table::Tcp, "fx/tcp").unwrap_err();
        assert_eq!(e.to_string(), "`fx/tcp` line 2: is not UTF-8 text");
    }

    #[test]
    fn blank_lines_are_ignored() {
        let text = format!("{TCP}\n\n");
        assert_eq!(
            parse_table(text.as_bytes(), Table::Tcp, "t").unwrap().len(),
            1
        );
    }
}
