//! The kernel as the judge: `autofw judge` (hidden) runs inside a scratch
//! network namespace (`unshare --net`, started by [`super::run_judge`]),
//! loads the filters it is given, and sends every port a test packet from
//! a client on the other end of a veth pair, so that every base chain on
//! every hook, in every table, nft or legacy, has its say exactly as on the
//! host. Nothing here touches the host's own namespace: the client lives in
//! a second namespace owned by one thread (a network namespace is per
//! thread), and both vanish when the process exits.
//!
//! Each port gets a real listener, so a connection that completes (or a
//! datagram echoed) is accepted, a refusal is a reject, silence is a drop.
//! Every probe is sent at once and one event loop (nonblocking sockets and
//! `poll`, on this one thread) waits for all of them together, up to one
//! short [`DEADLINE`]: a port costs file descriptors, never a thread, so
//! hundreds of ports neither wait in series nor meet a task or
//! address-space limit. The judge's own failures are errors, which the
//! caller turns into a note, never a panic.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

use super::verdict::{Outcome, Probe, Verdict};
use crate::error::host_failure;
use crate::firewall::backend::exec::run_tool;
use crate::model::Proto;
use crate::record::Rules;

/// The scratch namespace's addresses (documentation ranges).
pub(crate) const SERVER_V4: &str = "203.0.113.1";
pub(crate) const CLIENT_V4: &str = "203.0.113.2";
pub(crate) const SERVER_V6: &str = "2001:db8:a0f::1";
pub(crate) const CLIENT_V6: &str = "2001:db8:a0f::2";
/// The same, as addresses: (IPv4, IPv6).
pub(crate) const CLIENT: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa0f, 0, 0, 0, 0, 2)),
];
pub(crate) const SERVER: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa0f, 0, 0, 0, 0, 1)),
];
/// How long all the probes together wait for their answers before the
/// silent ones are called dropped. An answer across the scratch veth pair
/// comes back in well under a millisecond (the kernel answers a SYN from
/// the listen queue; datagrams are echoed by this same loop), so this is
/// about a hundred times the slowest answer seen on a loaded 2-core host.
pub(crate) const DEADLINE: Duration = Duration::from_millis(250);
/// File descriptors kept back from the probes (stdio, the tools' pipes).
const SPARE_FDS: u64 = 64;

/// What to load, in order, and which ports to probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JudgeRequest {
    /// The server side's interface name: the host's uplink's, so rules
    /// that match it (`-i eth0`) apply.
    pub interface: String,
    pub layers: Vec<Layer>,
    pub probes: Vec<Probe>,
}

/// One filter to load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Layer {
    /// `nft -f -`.
    Nft { text: String },
    /// A full `iptables-restore` per family with these tools
    /// (`iptables-nft-restore`, `iptables-legacy-restore`).
    Iptables {
        restore_v4: String,
        restore_v6: String,
        v4: String,
        v6: String,
    },
    /// `ipset restore -exist`: sets iptables rules match.
    Ipset { text: String },
    /// autofw's rules, loaded as apply loads them (on iptables, the jump
    /// placed among the rules already loaded).
    Autofw { rules: Rules },
}

/// The judge's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Judged {
    pub outcomes: Vec<Outcome>,
    /// Layers the scratch namespace refused, with the tool's message.
    pub load_errors: Vec<String>,
}

/// `autofw judge`: read a [`JudgeRequest`] on stdin, answer [`Judged`] on stdout.
pub(crate) fn run() -> anyhow::Result<u8> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let plan: JudgeRequest = serde_json::from_str(&input)
        .map_err(|e| host_failure(format!("autofw judge: bad plan: {e}")))?;
    let judged = judge(&plan)?;
    let mut out = std::io::stdout().lock();
    out.write_all(serde_json::to_string(&judged)?.as_bytes())?;
    Ok(crate::error::exit::OK)
}

/// `ip -batch -`: several `ip` commands in one process (each process start
/// costs milliseconds on a loaded host), run in the calling thread's
/// network namespace.
fn ip_batch(commands: &[String]) -> anyhow::Result<()> {
    run_tool("ip", &["-batch", "-"], Some(&(commands.join("\n") + "\n"))).map(|_| ())
}

/// The interfaces of the calling thread's network namespace
/// (`/proc/thread-self/net/dev` follows it).
fn interfaces() -> anyhow::Result<usize> {
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").map_err(|e| {
        host_failure(format!(
            "autofw judge: cannot read /proc/thread-self/net/dev: {e}"
        ))
    })?;
    Ok(dev.lines().skip(2).filter(|l| l.contains(':')).count())
}

fn judge(plan: &JudgeRequest) -> anyhow::Result<Judged> {
    // Refuse to run in a namespace with interfaces: this must be a fresh
    // scratch namespace, never the host's.
    if interfaces()? != 1 {
        return Err(host_failure(
            "autofw judge runs only in a fresh network namespace (started by autofw under `unshare --net`)",
        ));
    }
    let client = Client::start()?;
    let iface = plan.interface.as_str();
    ip_batch(&[
        "link set lo up".to_string(),
        format!(
            "link add {iface} type veth peer name client0 netns {}",
            client.tid
        ),
        format!("addr add {SERVER_V4}/24 dev {iface}"),
        format!("addr add {SERVER_V6}/64 dev {iface} nodad"),
        format!("link set {iface} up"),
    ])?;
    client.run(|| {
        ip_batch(&[
            "link set lo up".to_string(),
            format!("addr add {CLIENT_V4}/24 dev client0"),
            format!("addr add {CLIENT_V6}/64 dev client0 nodad"),
            "link set client0 up".to_string(),
        ])
    })?;

    let mut judged = Judged::default();
    for layer in &plan.layers {
        if let Err(err) = load(layer) {
            judged.load_errors.push(format!("{err:#}"));
        }
    }

    for batch in plan.probes.chunks(batch_size()) {
        judged.outcomes.extend(probe_batch(&client, batch)?);
    }
    Ok(judged)
}

/// How many probes fit in the descriptors this process may open: each
/// needs its client socket and at most one server socket. The soft limit is
/// raised to the hard one first (it only concerns this short-lived judge).
fn batch_size() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    let fds = limit.current.unwrap_or(1 << 20);
    usize::try_from(fds.saturating_sub(SPARE_FDS) / 2)
        .unwrap_or(usize::MAX)
        .clamp(1, 4096)
}

/// A probe still waiting for its answer.
enum Waiting {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Waiting {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Waiting::Tcp(s) => s.as_fd(),
            Waiting::Udp(s) => s.as_fd(),
        }
    }

    /// The verdict, once poll says there is news; `None`: not yet.
    fn answer(&self) -> Option<Verdict> {
        match self {
            Waiting::Tcp(stream) => match stream.take_error() {
                Ok(None) => Some(Verdict::Open),
                Ok(Some(e)) | Err(e) => Some(failed(&e)),
            },
            Waiting::Udp(socket) => {
                let mut buf = [0u8; 64];
                match socket.recv(&mut buf) {
                    Ok(_) => Some(Verdict::Open),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                    Err(e) => Some(failed(&e)),
                }
            }
        }
    }
}

/// What an error on a probe's socket says: a refusal (RST, an ICMP
/// unreachable, a local reject) is a reject; anything else a drop.
fn failed(e: &std::io::Error) -> Verdict {
    use ErrorKind::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    if matches!(
        e.kind(),
        ConnectionRefused | HostUnreachable | NetworkUnreachable
    ) || e.raw_os_error() == Some(libc::EACCES)
        || e.raw_os_error() == Some(libc::EPERM)
    {
        Verdict::Rejected
    } else {
        Verdict::Dropped
    }
}

/// Listen on every port of `batch` (here, the server's namespace), send
/// every probe from the client's namespace, and wait for all the answers
/// together, up to [`DEADLINE`].
fn probe_batch(client: &Client, batch: &[Probe]) -> anyhow::Result<Vec<Outcome>> {
    let mut ports: Vec<(Proto, u16)> = batch
        .iter()
        .map(|&(proto, port, _)| (proto, port))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for (proto, port) in ports {
        match proto {
            Proto::Tcp => tcp.push(listen(port, TcpListener::bind)?),
            Proto::Udp => {
                let socket = listen(port, UdpSocket::bind)?;
                socket.set_nonblocking(true)?;
                udp.push(socket);
            }
        }
    }
    let start = Instant::now();
    let probes = batch.to_vec();
    let sent = client.run(move || send_all(&probes))?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut waiting = Vec::new();
    for (probe, sent) in sent {
        match sent {
            Sent::Waiting(w) => waiting.push((probe, w)),
            Sent::Answered(verdict) => outcomes.push(outcome(probe, verdict, start.elapsed())),
        }
    }
    let deadline = start + DEADLINE;
    let mut last_round = false;
    while !waiting.is_empty() {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let mut fds: Vec<PollFd<'_>> = udp
            .iter()
            .map(|s| PollFd::new(s, PollFlags::IN))
            .chain(waiting.iter().map(|(_, w)| {
                let flags = match w {
                    Waiting::Tcp(_) => PollFlags::OUT,
                    Waiting::Udp(_) => PollFlags::IN,
                };
                PollFd::from_borrowed_fd(w.fd(), flags)
            }))
            .collect();
        let timeout = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(0),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(host_failure(format!("autofw judge: poll: {e}"))),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut echoed = false;
        for (socket, _) in udp.iter().zip(&ready).filter(|(_, r)| **r) {
            echoed |= echo(socket);
        }
        let elapsed = start.elapsed();
        let mut still = Vec::with_capacity(waiting.len());
        for ((probe, w), ready) in waiting.into_iter().zip(&ready[udp.len()..]) {
            match ready.then(|| w.answer()).flatten() {
                Some(verdict) => outcomes.push(outcome(probe, verdict, elapsed)),
                None => still.push((probe, w)),
            }
        }
        waiting = still;
        if Instant::now() >= deadline {
            // One more round for answers to datagrams echoed just now.
            if last_round || !echoed {
                break;
            }
            last_round = true;
        }
    }
    outcomes.extend(
        waiting
            .into_iter()
            .map(|(probe, _)| outcome(probe, Verdict::Dropped, DEADLINE)),
    );
    Ok(outcomes)
}

fn outcome((proto, port, v6): Probe, verdict: Verdict, after: Duration) -> Outcome {
    Outcome {
        proto,
        port,
        v6,
        verdict,
        after_ms: u32::try_from(after.as_millis()).unwrap_or(u32::MAX),
    }
}

/// A listener on `port` on every address: both families on one socket, or
/// IPv4 alone where IPv6 is disabled.
fn listen<T>(port: u16, bind: impl Fn(SocketAddr) -> std::io::Result<T>) -> anyhow::Result<T> {
    bind(SocketAddr::from(([0u16; 8], port)))
        .or_else(|_| bind(SocketAddr::from(([0u8; 4], port))))
        .map_err(|e| {
            host_failure(format!(
                "autofw judge: cannot listen on port {port} in the scratch namespace: {e}"
            ))
        })
}

/// Answer every datagram waiting on a server socket; whether any was.
fn echo(socket: &UdpSocket) -> bool {
    let mut buf = [0u8; 512];
    let mut any = false;
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let _ = socket.send_to(&buf[..n], from);
        any = true;
    }
    any
}

/// A probe sent: waiting for its answer, or answered at once.
enum Sent {
    Waiting(Waiting),
    Answered(Verdict),
}

/// Send every probe (on the client's thread: sockets belong to the network
/// namespace of the thread that creates them).
fn send_all(probes: &[Probe]) -> anyhow::Result<Vec<(Probe, Sent)>> {
    probes
        .iter()
        .map(|&probe| Ok((probe, send(probe)?)))
        .collect()
}

fn send((proto, port, v6): Probe) -> anyhow::Result<Sent> {
    let to = SocketAddr::new(SERVER[usize::from(v6)], port);
    let family = if v6 {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let kind = match proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
    };
    let fd: OwnedFd = rustix::net::socket_with(
        family,
        kind,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| {
        host_failure(format!(
            "autofw judge: cannot open a socket for the probe of {proto}/{port}: {e}"
        ))
    })?;
    let refused = |e: rustix::io::Errno| Sent::Answered(failed(&e.into()));
    Ok(match proto {
        Proto::Tcp => match rustix::net::connect(&fd, &to) {
            Ok(()) => Sent::Answered(Verdict::Open),
            Err(rustix::io::Errno::INPROGRESS) => Sent::Waiting(Waiting::Tcp(TcpStream::from(fd))),
            Err(e) => refused(e),
        },
        Proto::Udp => {
            let socket = UdpSocket::from(fd);
            match socket
                .connect(to)
                .and_then(|()| socket.send(b"autofw judge"))
            {
                Ok(_) => Sent::Waiting(Waiting::Udp(socket)),
                Err(e) => Sent::Answered(failed(&e)),
            }
        }
    })
}

fn load(layer: &Layer) -> anyhow::Result<()> {
    match layer {
        Layer::Nft { text } => run_tool("nft", &["-f", "-"], Some(text)).map(|_| ()),
        Layer::Ipset { text } => run_tool("ipset", &["restore", "-exist"], Some(text)).map(|_| ()),
        Layer::Iptables {
            restore_v4,
            restore_v6,
            v4,
            v6,
        } => {
            for (tool, text) in [(restore_v4, v4), (restore_v6, v6)] {
                if !text.trim().is_empty() {
                    run_tool(tool, &[], Some(text))?;
                }
            }
            Ok(())
        }
        Layer::Autofw { rules } => crate::firewall::backend::load_fresh(rules),
    }
}

/// A thread in a network namespace of its own: the client side.
struct Client {
    tid: i32,
    jobs: mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl Client {
    fn start() -> anyhow::Result<Client> {
        let (jobs, rx) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let (tid_tx, tid_rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("judge-client".into())
            .spawn(move || {
                // SAFETY: unshare and gettid take no pointers; CLONE_NEWNET
                // moves only this thread into a new network namespace.
                let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
                let tid = unsafe { libc::gettid() };
                let _ = tid_tx.send((unshared == 0).then_some(tid));
                for job in rx {
                    job();
                }
            });
        if let Err(e) = spawned {
            return Err(host_failure(format!(
                "autofw judge: cannot start the client's thread: {e}"
            )));
        }
        match tid_rx.recv() {
            Ok(Some(tid)) => Ok(Client { tid, jobs }),
            _ => Err(host_failure(
                "autofw judge: cannot make the client's network namespace",
            )),
        }
    }

    /// Run `f` on the client's thread (in its namespace) and wait for it.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| host_failure("autofw judge: the client thread is gone"))?;
        rx.recv()
            .map_err(|_| host_failure("autofw judge: the client thread is gone"))?
    }
}

/// The tools the judge needs besides the filters' own.
pub(crate) const TOOLS: [&str; 2] = ["ip", "unshare"];
