//! The netlink sock_diag reader: asks the kernel for the listening sockets
//! only, so a host with 20,000 connections answers with its 50 listeners
//! instead of 40,000 lines of `/proc/net/tcp` to read and skip.
//!
//! Uses the crates netstat2 is built on (netlink-sys,
//! netlink-packet-sock-diag) directly: netstat2's own API always asks for
//! every state, and drops the peer address and the state of UDP sockets, so
//! it could neither filter in the kernel nor tell a connected UDP socket from
//! a listening one (see docs/scan.md).
//!
//! Also the one loop for the dumps whose messages autofw reads itself
//! ([`dump_messages`]): the two-family TCP dump here, nf_tables' chains
//! (`nft_nat`) and the addresses (`interfaces`).

use super::core::SocketEntry;
use super::procnet::Table;
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::Socket;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use std::io;

/// Receive buffer: the kernel sizes its dump messages to the largest buffer
/// it has seen us read with, so a large one means fewer round trips.
const RECV_BUFFER: usize = 32 * 1024;

/// One sock_diag socket for a scan's dumps, one after the other (each
/// socket costs four calls to set up), and one receive buffer. A dump that
/// fails leaves the socket unused: the next dump opens another, so nothing
/// left of the failed one is read as the next one's answer.
#[derive(Default)]
pub(crate) struct Diag {
    socket: Option<Socket>,
    buffer: Vec<u8>,
}

impl Diag {
    /// Dump the sockets of `table` whose state can be a listener (the
    /// kernel filters by state; the core still checks UDP peers).
    pub(crate) fn dump(&mut self, table: Table) -> io::Result<Vec<SocketEntry>> {
        let socket = self.socket.take();
        let (socket, result) = dump(socket, &mut self.buffer, table);
        self.socket = socket.filter(|_| result.is_ok());
        result
    }

    /// The listening TCP sockets of both families in one dump (see
    /// [`dump_tcp_both_families`]).
    pub(crate) fn dump_tcp_both_families(&mut self) -> io::Result<Vec<SocketEntry>> {
        let socket = self.socket.take();
        let (socket, result) = dump_tcp_both_families(socket, &mut self.buffer);
        self.socket = socket.filter(|_| result.is_ok());
        result
    }
}

/// `socket`, or a new sock_diag socket if there is none.
fn diag_socket(socket: Option<Socket>) -> io::Result<Socket> {
    if let Some(socket) = socket {
        return Ok(socket);
    }
    // Neither bound nor connected: the kernel binds a netlink socket on its
    // first send, and an unconnected one sends to the kernel (port 0):
    // `bind`, `getsockname` and `connect` fewer (the address and nf_tables
    // sockets skip the first two the same way).
    Socket::new(NETLINK_SOCK_DIAG)
}

/// Receive one datagram into `buffer` (emptied first, room for
/// [`RECV_BUFFER`] bytes), and return it. The kernel writes into the
/// buffer's spare capacity: none of it is zeroed first, and only the pages
/// the answer fills are touched (a scan's answers are a few hundred bytes).
fn receive<'b>(socket: &Socket, buffer: &'b mut Vec<u8>) -> io::Result<&'b [u8]> {
    buffer.clear();
    buffer.reserve(RECV_BUFFER);
    let size = socket.recv(buffer, 0)?;
    if size == 0 {
        return Err(invalid("netlink socket closed before the dump was done"));
    }
    Ok(&buffer[..size.min(buffer.len())])
}

/// Send `request` (a dump) on `socket` and hand each message of the answer
/// to `each` as (type, payload), until the kernel says it is done: the
/// loop of every dump whose messages autofw reads itself (the two-family
/// TCP dump here, nf_tables' chains, the addresses). An error message from
/// the kernel ends it as that error; so does a message cut short.
pub(super) fn dump_messages(
    socket: &Socket,
    request: &[u8],
    buffer: &mut Vec<u8>,
    mut each: impl FnMut(u16, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    const NLMSG_NOOP: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    socket.send(request, 0)?;
    loop {
        let mut data = receive(socket, buffer)?;
        while data.len() >= 16 {
            let length = u32::from_ne_bytes(data[..4].try_into().unwrap_or_default()) as usize;
            let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap_or_default());
            if length < 16 || length > data.len() {
                return Err(invalid("truncated netlink message"));
            }
            let payload = &data[16..length];
            data = &data[((length + 3) & !3).min(data.len())..];
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or_default()));
                    return Err(if code == 0 {
                        invalid("unexpected netlink acknowledgement")
                    } else {
                        io::Error::from_raw_os_error(-code)
                    });
                }
                NLMSG_NOOP => {}
                _ => each(kind, payload)?,
            }
        }
    }
}

/// [`Diag::dump`], on `socket` (or a new one), handing the socket back.
fn dump(
    socket: Option<Socket>,
    buffer: &mut Vec<u8>,
    table: Table,
) -> (Option<Socket>, io::Result<Vec<SocketEntry>>) {
    let socket = match diag_socket(socket) {
        Ok(socket) => socket,
        Err(e) => return (None, Err(e)),
    };
    let result = dump_on(&socket, buffer, table);
    (Some(socket), result)
}

fn dump_on(socket: &Socket, buffer: &mut Vec<u8>, table: Table) -> io::Result<Vec<SocketEntry>> {
    let proto = table.proto();
    let (family, socket_id) = if table.is_v6() {
        (AF_INET6, SocketId::new_v6())
    } else {
        (AF_INET, SocketId::new_v4())
    };
    let protocol = match proto {
        crate::model::Proto::Tcp => IPPROTO_TCP,
        crate::model::Proto::Udp => IPPROTO_UDP,
    };
    // The states `core::may_listen` accepts, as the kernel's filter.
    let states = match proto {
        crate::model::Proto::Tcp => StateFlags::LISTEN,
        crate::model::Proto::Udp => StateFlags::CLOSE,
    };

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut out = vec![0; request.buffer_len()];
    request.serialize(&mut out);
    socket.send(&out, 0)?;

    let mut entries = Vec::new();
    // Device names by index, each asked of the kernel once.
    let mut devices: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    loop {
        let data = receive(socket, buffer)?;
        let size = data.len();
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&data[offset..size])
                .map_err(|e| invalid(&format!("cannot decode a sock_diag message: {e}")))?;
            let length = message.header.length as usize;
            if length == 0 {
                return Err(invalid("sock_diag message of length 0"));
            }
            // Netlink messages are 4-byte aligned.
            offset += (length + 3) & !3;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    let id = &response.header.socket_id;
                    let device = bound_device(id.interface_id, &mut devices);
                    entries.push(SocketEntry {
                        proto,
                        local: (id.source_address, id.source_port).into(),
                        remote: (id.destination_address, id.destination_port).into(),
                        state: response.header.state,
                        inode: u64::from(response.header.inode),
                        uid: response.header.uid,
                        device,
                    });
                }
                NetlinkPayload::Done(_) => return Ok(entries),
                NetlinkPayload::Error(error) => {
                    return Err(match error.code {
                        Some(code) => io::Error::from_raw_os_error(-code.get()),
                        None => invalid("unexpected netlink acknowledgement"),
                    });
                }
                NetlinkPayload::Noop => {}
                _ => return Err(invalid("unexpected netlink message in a sock_diag dump")),
            }
        }
    }
}

/// `TCPDIAG_GETSOCK`: sock_diag's first request type, which Linux still
/// answers (`ss` falls back to it).
const TCPDIAG_GETSOCK: u16 = 18;
/// `struct inet_diag_msg`: what each socket of a dump is described by.
const INET_DIAG_MSG_LEN: usize = 72;

/// The listening TCP sockets of both families in one dump. The kernel walks
/// its whole TCP hash for a dump, however few sockets match (about 3 ms a
/// walk on a 2-core VM with Linux 6.18, most of a small host's scan); the
/// v2 request ([`dump`]) names one family, so IPv4 and IPv6 cost a walk
/// each. The original request (`TCPDIAG_GETSOCK`, `struct inet_diag_req`)
/// names none: the kernel takes it as `AF_UNSPEC`, both in one walk. An
/// error when the kernel does not answer it; the caller then asks per
/// family.
fn dump_tcp_both_families(
    socket: Option<Socket>,
    buffer: &mut Vec<u8>,
) -> (Option<Socket>, io::Result<Vec<SocketEntry>>) {
    let socket = match diag_socket(socket) {
        Ok(socket) => socket,
        Err(e) => return (None, Err(e)),
    };
    let result = dump_tcp_on(&socket, buffer);
    (Some(socket), result)
}

fn dump_tcp_on(socket: &Socket, buffer: &mut Vec<u8>) -> io::Result<Vec<SocketEntry>> {
    // nlmsghdr, then struct inet_diag_req: family, src_len, dst_len, ext,
    // the socket id (48 bytes, zero: any), states, dbs.
    let length = 16 + 4 + 48 + 4 + 4;
    let mut request = Vec::with_capacity(length);
    request.extend_from_slice(&(length as u32).to_ne_bytes());
    request.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&[AF_INET, 0, 0, 0]);
    request.extend_from_slice(&[0; 48]);
    // The states `core::may_listen` accepts for TCP.
    request.extend_from_slice(&(1u32 << super::core::TCP_LISTEN).to_ne_bytes());
    request.extend_from_slice(&0u32.to_ne_bytes());
    let mut entries = Vec::new();
    let mut devices: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    dump_messages(socket, &request, buffer, |kind, payload| {
        if kind == TCPDIAG_GETSOCK {
            let entry = parse_inet_diag_msg(payload, &mut devices)
                .ok_or_else(|| invalid("cannot decode a sock_diag message"))?;
            entries.push(entry);
        }
        Ok(())
    })?;
    Ok(entries)
}

/// One `struct inet_diag_msg` (the fields of `linux/inet_diag.h`; ports
/// and addresses in network order, the rest in the host's).
fn parse_inet_diag_msg(
    msg: &[u8],
    devices: &mut std::collections::HashMap<u32, String>,
) -> Option<SocketEntry> {
    if msg.len() < INET_DIAG_MSG_LEN {
        return None;
    }
    let u32_at = |at: usize| u32::from_ne_bytes(msg[at..at + 4].try_into().unwrap());
    let port_at = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let address_at = |at: usize| -> Option<std::net::IpAddr> {
        match msg[0] {
            AF_INET => Some(<[u8; 4]>::try_from(&msg[at..at + 4]).ok()?.into()),
            AF_INET6 => Some(<[u8; 16]>::try_from(&msg[at..at + 16]).ok()?.into()),
            _ => None,
        }
    };
    let device = bound_device(u32_at(40), devices);
    Some(SocketEntry {
        proto: crate::model::Proto::Tcp,
        local: (address_at(8)?, port_at(4)).into(),
        remote: (address_at(24)?, port_at(6)).into(),
        state: msg[1],
        inode: u64::from(u32_at(68)),
        uid: u32_at(64),
        device,
    })
}

/// `idiag_if`: the device the socket is bound to (`SO_BINDTODEVICE`, a
/// link-local scope), 0 for none; each index's name asked of the kernel once.
fn bound_device(
    index: u32,
    devices: &mut std::collections::HashMap<u32, String>,
) -> Option<String> {
    match index {
        0 => None,
        index => Some(
            devices
                .entry(index)
                .or_insert_with(|| super::interfaces::name_of_index(index))
                .clone(),
        ),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}
