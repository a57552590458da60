//! How a scan is shown: which listeners (loopback-only ones only with
//! `--all`), as a table for people or JSON for scripts, plus the notes that
//! go to stderr. Pure: returns strings.

use crate::human::count;
use crate::model::{Exposure, Listener, Scan};
use crate::terminal::escape_controls;
use std::borrow::Cow;
use std::fmt::Write as _;
use tabled::grid::dimension::{ConstDimension, ConstSize};
use tabled::grid::util::string::get_line_width;
use tabled::settings::Style;
use tabled::tables::CompactTable;

/// At most this many pids in a table cell; JSON has them all.
const PIDS_SHOWN: usize = 4;

/// Is `l` shown? Without `all`, loopback-only listeners (nothing outside
/// the host can reach them) and client sockets (not services) are left
/// out, for the table and JSON alike.
fn is_shown(l: &Listener, all: bool) -> bool {
    all || (l.exposure != Exposure::Loopback && !l.client_socket)
}

/// The scan as it is shown ([`is_shown`]): the listeners left out are
/// dropped, not copied (take the [`notes`] on them first).
pub(crate) fn visible(mut scan: Scan, all: bool) -> Scan {
    scan.listeners.retain(|l| is_shown(l, all));
    scan
}

/// The table's columns, in order.
const HEADER: [&str; 9] = [
    "PROTO", "ADDRESS", "PORT", "SERVICE", "USER", "PROCESS", "PIDS", "EXPOSURE", "NOTE",
];

/// A table with one row per listener, or a sentence when there is none.
///
/// Laid out by tabled's `CompactTable`, which takes the column widths
/// instead of measuring every cell into a grid of its own: the same text as
/// `Table` with `Style::blank` (every cell is one line: names are escaped),
/// in half the time (0.09 ms of a small host's scan, docs/scan.md).
pub(crate) fn table(listeners: &[Listener]) -> String {
    if listeners.is_empty() {
        return "no listeners found\n".to_string();
    }
    // Cells borrow what they can (the fixed words, names with nothing to
    // escape): a row allocates only for the text it makes.
    let mut rows: Vec<[Cow<'_, str>; 9]> = Vec::with_capacity(listeners.len() + 1);
    rows.push(HEADER.map(Cow::Borrowed));
    rows.extend(listeners.iter().map(|l| {
        [
            Cow::Borrowed(l.proto.as_str()),
            // `0.0.0.0%virbr0` for a socket bound to a device, as `ss` shows it.
            Cow::Owned(escape_controls(&l.address_text()).into_owned()),
            Cow::Owned(l.port.to_string()),
            // Names are whatever a process, an account or an interface
            // called itself: escaped for the terminal.
            escape_controls(&l.service),
            Cow::Owned(escape_controls(&user_cell(l)).into_owned()),
            if l.process.is_empty() && l.kernel.is_some() {
                Cow::Borrowed("[kernel]")
            } else if l.process.is_empty() {
                Cow::Borrowed("-")
            } else {
                escape_controls(&l.process)
            },
            Cow::Owned(pids_cell(&l.pids)),
            Cow::Borrowed(l.exposure.as_str()),
            Cow::Owned(escape_controls(&note_cell(l)).into_owned()),
        ]
    }));
    // Each column as wide as its widest cell as the terminal shows it,
    // plus a blank either side.
    let mut widths = [0; 9];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(get_line_width(cell) + 2);
        }
    }
    let count = rows.len();
    let layout = ConstDimension::new(ConstSize::List(widths), ConstSize::<0>::Value(1));
    let text = CompactTable::with_dimension(&rows, layout)
        .columns(9)
        .rows(count)
        .with(Style::blank())
        .to_string();
    // Style::blank pads every line to the widest; trailing blanks only get
    // in the way of people copying from a terminal.
    let mut trimmed = String::with_capacity(text.len() + 1);
    for line in text.lines() {
        trimmed.push_str(line.trim_end());
        trimmed.push('\n');
    }
    trimmed
}

/// Where a forwarded port goes, risky, and why a known program name was not taken (in short: the JSON
/// has the whole reason).
fn note_cell(l: &Listener) -> String {
    let mut notes = Vec::new();
    if let Some(to) = &l.forwarded_to {
        notes.push(match &l.container {
            Some(c) => format!("forwarded to {to} (container {c})"),
            None => format!("forwarded to {to}"),
        });
    }
    if l.client_socket {
        notes.push("client socket (ephemeral port): not a service".to_string());
    }
    if let Some(kernel) = &l.kernel {
        notes.push(format!("kernel: {kernel}"));
    }
    if let Some(account) = &l.rootless_container {
        notes.push(format!("rootless container of {account}"));
    }
    if let Some(unit) = &l.unit {
        notes.push(format!("socket activation: {unit}"));
    }
    if l.risky {
        notes.push("risky: should not face the network".to_string());
    }
    if l.name_note.is_some() {
        notes.push("program name unproven: named by port".to_string());
    }
    notes.join("; ")
}

/// The socket's user, as `netstat -e` shows it, then any other user an
/// owning process runs as: `root`, `root,alice`, `1001` (no name), `-` (an
/// older scan).
fn user_cell(l: &Listener) -> String {
    let name = |uid: Option<u32>, user: &Option<String>| match (user, uid) {
        (Some(user), _) => Some(user.clone()),
        (None, Some(uid)) => Some(uid.to_string()),
        (None, None) => None,
    };
    let mut users: Vec<String> = Vec::new();
    let socket = name(l.uid, &l.user);
    let processes = l.owners.iter().map(|o| name(o.uid, &o.user));
    for user in std::iter::once(socket).chain(processes).flatten() {
        if !users.contains(&user) {
            users.push(user);
        }
    }
    if users.is_empty() {
        "-".to_string()
    } else {
        users.join(",")
    }
}

fn pids_cell(pids: &[u32]) -> String {
    if pids.is_empty() {
        return "-".to_string();
    }
    let mut cell = String::new();
    for (index, pid) in pids.iter().take(PIDS_SHOWN).enumerate() {
        let comma = if index > 0 { "," } else { "" };
        let _ = write!(cell, "{comma}{pid}");
    }
    if pids.len() > PIDS_SHOWN {
        let _ = write!(cell, ",+{}", pids.len() - PIDS_SHOWN);
    }
    cell
}

/// The `scan --json` document (schema in docs/json-schema.md).
pub(crate) fn json(scan: &Scan) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(scan)?;
    text.push('\n');
    Ok(text)
}

/// What stderr should say about what the output leaves out (`all`: as
/// [`visible`] takes it) of `scan`, the whole scan. `as_root` says
/// whether the scan ran as root: the fix for unreadable processes differs.
pub(crate) fn notes(scan: &Scan, all: bool, as_root: bool) -> Vec<String> {
    let mut notes = Vec::new();
    let hidden = |kind: fn(&Listener) -> bool| {
        scan.listeners
            .iter()
            .filter(|l| kind(l) && !is_shown(l, all))
            .count()
    };
    let loopback = hidden(|l| l.exposure == Exposure::Loopback);
    let clients = hidden(|l| l.exposure != Exposure::Loopback && l.client_socket);
    if loopback > 0 {
        notes.push(format!(
            "{} not shown (unreachable from outside); `--all` shows them",
            count(
                loopback,
                "loopback-only listener",
                "loopback-only listeners"
            )
        ));
    }
    if clients > 0 {
        notes.push(format!(
            "{} not shown (UDP on an ephemeral port, a process's own queries: not a service); `--all` shows them",
            count(clients, "client socket", "client sockets")
        ));
    }
    if scan.unreadable_processes > 0 {
        let n = scan.unreadable_processes;
        let mut what = count(n, "process", "processes");
        if let Some(named) = scan.unreadable_named() {
            what = format!("{what}, {named},");
        }
        notes.push(if as_root {
            format!(
                "{what} could not be read even as root (permission denied: a hardened /proc, or a sandbox's init), so some listeners may show fewer owners or none"
            )
        } else {
            format!(
                "{what} could not be read (not root: other users' processes are closed to you), so some listeners may show fewer owners or none; run as root to see them all"
            )
        });
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;

    fn listener(port: u16, address: &str, exposure: Exposure, pids: Vec<u32>) -> Listener {
        Listener {
            service: "mysql".to_string(),
            process: if pids.is_empty() {
                String::new()
            } else {
                "mysqld".to_string()
            },
            pids,
            risky: exposure != Exposure::Loopback,
            uid: Some(110),
            user: Some("mysql".to_string()),
            ..Listener::bare(Proto::Tcp, address.parse().unwrap(), port, exposure)
        }
    }

    fn scan() -> Scan {
        Scan {
            listeners: vec![
                listener(3306, "127.0.0.1", Exposure::Loopback, vec![296]),
                listener(3306, "::", Exposure::Public, vec![1, 2, 3, 4, 5, 6]),
                listener(3307, "10.0.0.1", Exposure::Private, vec![]),
            ],
            unreadable_processes: 1,
            ..Scan::default()
        }
    }

    #[test]
    fn default_hides_loopback() {
        let s = scan();
        assert_eq!(visible(s.clone(), false).listeners.len(), 2);
        assert_eq!(visible(s.clone(), true).listeners.len(), 3);
        assert_eq!(
            notes(&s, false, false),
            [
                "1 loopback-only listener not shown (unreachable from outside); `--all` shows them",
                "1 process could not be read (not root: other users' processes are closed to you), so some listeners may show fewer owners or none; run as root to see them all"
            ]
        );
        assert!(notes(&s, true, true)[0].contains("even as root"));
        // Named where the walk knew them.
        let mut named = s.clone();
        named.unreadable = vec![crate::model::UnreadableProcess {
            pid: 4242,
            program: Some("openvpn".into()),
        }];
        assert_eq!(
            notes(&named, true, true)[0],
            "1 process, pid 4242 (openvpn), could not be read even as root (permission denied: a hardened /proc, or a sandbox's init), so some listeners may show fewer owners or none"
        );
        assert_eq!(notes(&Scan::default(), false, false), Vec::<String>::new());
    }

    #[test]
    fn hidden_client_sockets_are_counted_apart_from_loopback() {
        let mut s = scan();
        s.unreadable_processes = 0;
        for (port, address, exposure) in [
            (45969, "0.0.0.0", Exposure::Public),
            (45970, "10.0.0.1", Exposure::Private),
            (45971, "127.0.0.1", Exposure::Loopback),
        ] {
            let mut client = listener(port, address, exposure, vec![7]);
            client.client_socket = true;
            s.listeners.push(client);
        }
        assert_eq!(visible(s.clone(), false).listeners.len(), 2);
        assert_eq!(
            notes(&s, false, true),
            [
                "2 loopback-only listeners not shown (unreachable from outside); `--all` shows them",
                "2 client sockets not shown (UDP on an ephemeral port, a process's own queries: not a service); `--all` shows them"
            ]
        );
        assert_eq!(notes(&s, true, true), Vec::<String>::new());
    }

    #[test]
    fn table_rows() {
        let text = table(&visible(scan(), false).listeners);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "PROTO", "ADDRESS", "PORT", "SERVICE", "USER", "PROCESS", "PIDS", "EXPOSURE",
                "NOTE"
            ]
        );
        let first: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            first[..8],
            [
                "tcp",
                "::",
                "3306",
                "mysql",
                "mysql",
                "mysqld",
                "1,2,3,4,+2",
                "public"
            ]
        );
        assert!(lines[1].contains("risky"));
        let second: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(second[4..8], ["mysql", "-", "-", "private"]);
        assert_eq!(table(&[]), "no listeners found\n");
    }

    /// Columns line up as a terminal shows them: a wide character takes
    /// two columns, and a control character is shown escaped.
    #[test]
    fn table_columns_are_as_wide_as_the_terminal_shows_them() {
        let mut wide = listener(80, "192.0.2.1", Exposure::Public, vec![7]);
        wide.service = "http".into();
        wide.process = "ウェブ".into();
        wide.risky = false;
        let mut control = listener(8080, "192.0.2.1", Exposure::Public, vec![8]);
        control.service = "http-alt".into();
        control.process = "a\x1b[2Jb".into();
        control.risky = false;
        assert_eq!(
            table(&[wide, control]),
            concat!(
                " PROTO   ADDRESS     PORT   SERVICE    USER    PROCESS     PIDS   EXPOSURE   NOTE\n",
                " tcp     192.0.2.1   80     http       mysql   ウェブ      7      public\n",
                " tcp     192.0.2.1   8080   http-alt   mysql   a\\x1b[2Jb   8      public\n",
            )
        );
    }

    #[test]
    fn json_round_trips() {
        let s = scan();
        let text = json(&s).unwrap();
        let back: Scan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert!(text.contains("\"exposure\": \"public\""));
    }
}
