//! Which SSH session (if any) `apply` runs from: the lockout guard refuses a
//! ruleset that would not accept a new connection like this one.
//!
//! Two sources, in order: `SSH_CONNECTION` ("client_ip client_port
//! server_ip server_port", set by sshd), and, because `sudo` drops that
//! variable by default, the TCP socket held by the nearest `sshd` ancestor
//! process, read from `/proc`.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::blocklist::{Listed, lines_listing};
use crate::model::Proto;

/// The connection an SSH session came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshSession {
    pub client: IpAddr,
    /// The address the client connected to (rules for a listener bound to
    /// one address match it); unknown for `--guard CLIENT:PORT`.
    pub server: Option<IpAddr>,
    pub server_port: u16,
    /// Where this was learnt, for the refusal message.
    pub source: String,
}

impl SshSession {
    /// The protocol the guard asks the proposal about.
    pub(crate) const PROTO: Proto = Proto::Tcp;
}

/// The SSH session this process runs in, if any.
pub(crate) fn current() -> Option<SshSession> {
    if let Some(session) = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|v| parse_ssh_connection(&v))
    {
        return Some(session);
    }
    from_sshd_ancestor()
}

/// Parse `SSH_CONNECTION`. IPv4-mapped IPv6 clients become IPv4, as the
/// ruleset sees them.
pub(crate) fn parse_ssh_connection(value: &str) -> Option<SshSession> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [client, _client_port, server, server_port] = parts.as_slice() else {
        return None;
    };
    let client: IpAddr = client.parse().ok()?;
    let server: IpAddr = server.parse().ok()?;
    Some(SshSession {
        client: client.to_canonical(),
        server: Some(server.to_canonical()),
        server_port: server_port.parse().ok().filter(|p| *p != 0)?,
        source: "SSH_CONNECTION".to_string(),
    })
}

/// The lines of the blocklist files that list `client`, for a refusal to
/// name (read again: only when the guard refuses, and the lists hold only
/// ranges, not where they came from). A file that cannot be read now
/// names nothing.
pub(crate) fn listing(files: &[PathBuf], client: IpAddr) -> Vec<Listed> {
    files
        .iter()
        .filter_map(|path| {
            let text = crate::input::read_text(path, crate::input::Kind::Blocklist).ok()?;
            Some(lines_listing(&text, &crate::terminal::path(path), client))
        })
        .flatten()
        .collect()
}

/// Walk up the parent chain to the first process named `sshd*` and find the
/// established TCP connection among its sockets.
fn from_sshd_ancestor() -> Option<SshSession> {
    use procfs::process::{FDTarget, Process};
    let mut pid = std::process::id() as i32;
    for _ in 0..64 {
        let stat = Process::new(pid).ok()?.stat().ok()?;
        if stat.comm.starts_with("sshd") {
            let process = Process::new(pid).ok()?;
            let inodes: Vec<u64> = process
                .fd()
                .ok()?
                .filter_map(|fd| match fd.ok()?.target {
                    FDTarget::Socket(inode) => Some(inode),
                    _ => None,
                })
                .collect();
            let mut entries = procfs::net::tcp().unwrap_or_default();
            entries.extend(procfs::net::tcp6().unwrap_or_default());
            return entries
                .into_iter()
                .find(|e| {
                    inodes.contains(&e.inode) && e.state == procfs::net::TcpState::Established
                })
                .map(|e| SshSession {
                    client: e.remote_address.ip().to_canonical(),
                    server: Some(e.local_address.ip().to_canonical()),
                    server_port: e.local_address.port(),
                    source: format!("the connection of sshd (pid {pid})"),
                });
        }
        if stat.ppid <= 1 {
            return None;
        }
        pid = stat.ppid;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssh_connection() {
        let s = parse_ssh_connection("192.0.2.2 50312 192.0.2.1 5622").unwrap();
        assert_eq!(s.client, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.server_port, 5622);
        assert_eq!(s.server, "192.0.2.1".parse::<IpAddr>().ok());
        let s = parse_ssh_connection("::ffff:192.0.2.2 50312 ::ffff:192.0.2.1 22").unwrap();
        assert_eq!(s.client, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.server, "192.0.2.1".parse::<IpAddr>().ok());
        assert_eq!(parse_ssh_connection(""), None);
        assert_eq!(parse_ssh_connection("nonsense 1 2"), None);
        assert_eq!(parse_ssh_connection("192.0.2.2 1 192.0.2.1 0"), None);
    }
}
