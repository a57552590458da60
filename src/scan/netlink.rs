//! The netlink sock_diag reader: asks the kernel for the listening sockets
//! only, so a host with 20,000 connections answers with its 50 listeners
//! instead of 40,000 lines of `/proc/net/tcp` to read and skip.
//!
//! Uses the crates netstat2 is built on (netlink-sys,
//! netlink-packet-sock-diag) directly: netstat2's own API always asks for
//! every state, and drops the peer address and the state of UDP sockets, so
//! it could neither filter in the kernel nor tell a connected UDP socket from
//! a listening one (see docs/scan.md).

use super::core::SocketEntry;
use super::procnet::Table;
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};
use std::io;

/// Receive buffer: the kernel sizes its dump messages to the largest buffer
/// it has seen us read with, so a large one means fewer round trips.
const RECV_BUFFER: usize = 32 * 1024;

/// Dump the sockets of `table` whose state can be a listener (the kernel
/// filters by state; the core still checks UDP peers).
pub fn dump(table: Table) -> io::Result<Vec<SocketEntry>> {
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

    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

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
    let mut buffer = vec![0u8; RECV_BUFFER];
    loop {
        let size = socket.recv(&mut &mut buffer[..], 0)?;
        if size == 0 {
            return Err(invalid("netlink socket closed before the dump was done"));
        }
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
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
                    // `idiag_if`: the device the socket is bound to
                    // (`SO_BINDTODEVICE`, a link-local scope), 0 for none.
                    let device = match id.interface_id {
                        0 => None,
                        index => Some(
                            devices
                                .entry(index)
                                .or_insert_with(|| super::interfaces::name_of_index(index))
                                .clone(),
                        ),
                    };
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

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}
