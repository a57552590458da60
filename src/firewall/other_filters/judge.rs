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

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::verdict::{Outcome, Verdict};
use crate::error::host_failure;
use crate::firewall::backend::exec::run_tool;
use crate::firewall::backend::iptables;
use crate::model::Proto;

/// The scratch namespace's addresses (documentation ranges).
pub const SERVER_V4: &str = "203.0.113.1";
pub const CLIENT_V4: &str = "203.0.113.2";
pub const SERVER_V6: &str = "2001:db8:a0f::1";
pub const CLIENT_V6: &str = "2001:db8:a0f::2";
/// How long a probe waits for an answer before calling it dropped.
const PATIENCE: Duration = Duration::from_millis(1500);

/// What to load, in order, and which ports to probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The server side's interface name: the host's uplink's, so rules
    /// that match it (`-i eth0`) apply.
    pub interface: String,
    pub layers: Vec<Layer>,
    pub probes: Vec<(Proto, u16)>,
}

/// One filter to load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Layer {
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
    /// autofw's iptables proposal, loaded as apply loads it (the jump
    /// placed among the rules already loaded).
    AutofwIptables {
        v4: String,
        v6: String,
        ipsets: Option<String>,
    },
}

/// The judge's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Judged {
    pub outcomes: Vec<Outcome>,
    /// Layers the scratch namespace refused, with the tool's message.
    pub load_errors: Vec<String>,
}

/// `autofw judge`: read a [`Plan`] on stdin, answer [`Judged`] on stdout.
pub fn run() -> anyhow::Result<u8> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let plan: Plan = serde_json::from_str(&input)
        .map_err(|e| host_failure(format!("autofw judge: bad plan: {e}")))?;
    let judged = judge(&plan)?;
    let mut out = std::io::stdout().lock();
    out.write_all(serde_json::to_string(&judged)?.as_bytes())?;
    Ok(crate::error::exit::OK)
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run_tool("ip", args, None).map(|_| ())
}

fn judge(plan: &Plan) -> anyhow::Result<Judged> {
    // Refuse to run in a namespace with interfaces: this must be a fresh
    // scratch namespace, never the host's.
    let links = run_tool("ip", &["-o", "link", "show"], None)?;
    if links.lines().count() != 1 {
        return Err(host_failure(
            "autofw judge runs only in a fresh network namespace (started by autofw under `unshare --net`)",
        ));
    }
    ip(&["link", "set", "lo", "up"])?;
    let client = Client::start()?;
    let iface = plan.interface.as_str();
    ip(&[
        "link",
        "add",
        iface,
        "type",
        "veth",
        "peer",
        "name",
        "client0",
        "netns",
        &client.tid.to_string(),
    ])?;
    ip(&["addr", "add", &format!("{SERVER_V4}/24"), "dev", iface])?;
    ip(&[
        "addr",
        "add",
        &format!("{SERVER_V6}/64"),
        "dev",
        iface,
        "nodad",
    ])?;
    ip(&["link", "set", iface, "up"])?;
    client.run(|| {
        ip(&["link", "set", "lo", "up"])?;
        ip(&["addr", "add", &format!("{CLIENT_V4}/24"), "dev", "client0"])?;
        ip(&[
            "addr",
            "add",
            &format!("{CLIENT_V6}/64"),
            "dev",
            "client0",
            "nodad",
        ])?;
        ip(&["link", "set", "client0", "up"])
    })?;

    let mut judged = Judged::default();
    for layer in &plan.layers {
        if let Err(err) = load(layer) {
            judged.load_errors.push(format!("{err:#}"));
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut tcp = Vec::new();
    for (proto, port) in &plan.probes {
        let addr = SocketAddr::from(([0u16; 8], *port));
        match proto {
            Proto::Tcp => tcp.extend(TcpListener::bind(addr).ok()),
            Proto::Udp => {
                if let Ok(socket) = UdpSocket::bind(addr) {
                    echo(socket, Arc::clone(&stop));
                }
            }
        }
    }
    let probes = plan.probes.clone();
    judged.outcomes = client.run(move || Ok(probe_all(&probes)))?;
    stop.store(true, Ordering::Relaxed);
    drop(tcp);
    Ok(judged)
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
        Layer::AutofwIptables { v4, v6, ipsets } => iptables::load(v4, v6, ipsets.as_deref(), None),
    }
}

/// Echo datagrams on `socket` until `stop`.
fn echo(socket: UdpSocket, stop: Arc<AtomicBool>) {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], from);
            }
        }
    });
}

/// Probe every port over IPv4 and IPv6 at once (threads inherit the
/// calling thread's namespace: the client's).
fn probe_all(probes: &[(Proto, u16)]) -> Vec<Outcome> {
    let handles: Vec<_> = probes
        .iter()
        .flat_map(|&(proto, port)| [(proto, port, false), (proto, port, true)])
        .map(|(proto, port, v6)| {
            std::thread::spawn(move || {
                let server: IpAddr = if v6 { SERVER_V6 } else { SERVER_V4 }.parse().unwrap();
                Outcome {
                    proto,
                    port,
                    v6,
                    verdict: probe(proto, SocketAddr::new(server, port)),
                }
            })
        })
        .collect();
    handles.into_iter().filter_map(|h| h.join().ok()).collect()
}

fn probe(proto: Proto, to: SocketAddr) -> Verdict {
    use std::io::ErrorKind::{ConnectionRefused, HostUnreachable, NetworkUnreachable};
    let refused = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ConnectionRefused | HostUnreachable | NetworkUnreachable
        ) || e.raw_os_error() == Some(libc::EACCES)
            || e.raw_os_error() == Some(libc::EPERM)
    };
    match proto {
        Proto::Tcp => match TcpStream::connect_timeout(&to, PATIENCE) {
            Ok(_) => Verdict::Open,
            Err(e) if refused(&e) => Verdict::Rejected,
            Err(_) => Verdict::Dropped,
        },
        Proto::Udp => {
            let any: SocketAddr = if to.is_ipv6() {
                SocketAddr::from(([0u16; 8], 0))
            } else {
                SocketAddr::from(([0u8; 4], 0))
            };
            let Ok(socket) = UdpSocket::bind(any) else {
                return Verdict::Dropped;
            };
            let _ = socket.set_read_timeout(Some(PATIENCE));
            if socket.connect(to).is_err() || socket.send(b"autofw judge").is_err() {
                return Verdict::Dropped;
            }
            let mut buf = [0u8; 64];
            match socket.recv(&mut buf) {
                Ok(_) => Verdict::Open,
                Err(e) if refused(&e) => Verdict::Rejected,
                Err(_) => Verdict::Dropped,
            }
        }
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
        std::thread::spawn(move || {
            // SAFETY: unshare and gettid take no pointers; CLONE_NEWNET
            // moves only this thread into a new network namespace.
            let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            let tid = unsafe { libc::gettid() };
            let _ = tid_tx.send((unshared == 0).then_some(tid));
            for job in rx {
                job();
            }
        });
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
pub const TOOLS: [&str; 2] = ["ip", "unshare"];
