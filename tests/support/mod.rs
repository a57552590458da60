//! Test hosts in network namespaces, for tests that run the real binary
//! against real sockets and real netfilter.
//!
//! Every [`Netns`] has a unique name (tests run in parallel), and on drop kills
//! the processes started in it (by pid) and deletes it, also when the test
//! panics. Nothing here touches the host's own network namespace or firewall.

pub mod daemon;
pub mod dnsmasq;
pub mod fail2ban;
pub mod host;
pub mod libvirt;
pub mod nginx;
pub mod openvpn;
pub mod postgres;
pub mod redis;
pub mod runner;
pub mod seed;
pub mod smbd;
pub mod ssh;

pub use daemon::*;
pub use dnsmasq::*;
pub use fail2ban::*;
pub use host::*;
pub use libvirt::*;
pub use nginx::{start_nginx, start_nginx_as};
pub use openvpn::*;
pub use postgres::start_postgres;
pub use redis::start_redis;
pub use runner::*;
pub use seed::*;
pub use smbd::start_smbd;
pub use ssh::Ssh;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The listener helper script (see its docstring).
pub fn listen_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/listen.py")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Tests that need root and namespaces call this first. Without root they
/// fail, unless AUTOFW_SKIP_ROOT_TESTS=1 says to skip: CI runs as root and
/// never sets it, so these tests can never skip there silently.
pub fn require_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("AUTOFW_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: needs root (AUTOFW_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!(
        "this test needs root and network namespaces; run as root, or set AUTOFW_SKIP_ROOT_TESTS=1 to skip it"
    );
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Server-side addresses on a [`link`]: documentation ranges only.
pub const SERVER_V4: &str = "192.0.2.1";
pub const CLIENT_V4: &str = "192.0.2.2";
pub const SERVER_V6: &str = "2001:db8::1";
pub const CLIENT_V6: &str = "2001:db8::2";

/// A network namespace owned by one test.
pub struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    /// A fresh namespace with `lo` up. `tag` says which test owns it.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("afw-{tag}-{}-{n}", std::process::id());
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Run `argv` inside; return its output whatever the exit status.
    pub fn run(&self, argv: &[&str]) -> Output {
        let mut cmd = self.command(argv[0]);
        cmd.args(&argv[1..]);
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"))
    }

    /// Run `argv` inside, assert success, return stdout.
    pub fn ok(&self, argv: &[&str]) -> String {
        let mut cmd = self.command(argv[0]);
        cmd.args(&argv[1..]);
        run_ok(&mut cmd)
    }

    /// Run a shell script inside, assert success, return stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        self.ok(&["sh", "-c", script])
    }

    /// Run a shell script inside; return its output.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&["sh", "-c", script])
    }

    /// Run the autofw binary under test inside with `args`.
    pub fn autofw(&self, args: &[&str]) -> Output {
        Autofw::new(args).inside(self).output()
    }

    /// Start a long-running process inside; it is killed (by pid) on drop.
    /// Returns its pid (`ip netns exec` execs, so the pid is the program's).
    pub fn spawn(&mut self, argv: &[&str]) -> u32 {
        let mut cmd = self.command(argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Take charge of a process already started inside (killed on drop).
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Start `listen.py` with these specs (and a process name), and wait until
    /// every socket is bound. Returns its pid.
    pub fn listen(&mut self, name: Option<&str>, specs: &[&str]) -> u32 {
        let script = listen_py();
        let mut cmd = self.command("python3");
        cmd.arg(&script);
        if let Some(name) = name {
            cmd.args(["--name", name]);
        }
        cmd.args(specs).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start listen.py");
        let pid = child.id();
        let stdout = child.stdout.take().unwrap();
        self.children.push(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "listen.py {specs:?} did not start");
        pid
    }

    /// Give `dev` these addresses (`192.0.2.1/24`, `2001:db8::1/64`; IPv6
    /// ones without the DAD wait, so they work at once) and bring it up.
    pub fn bring_up(&self, dev: &str, addresses: &[&str]) {
        for address in addresses {
            let mut argv = vec!["ip", "addr", "add", address, "dev", dev];
            if address.contains(':') {
                argv.push("nodad");
            }
            self.ok(&argv);
        }
        self.ok(&["ip", "link", "set", dev, "up"]);
    }

    /// `nft -s list ruleset` inside.
    pub fn ruleset(&self) -> String {
        self.ok(&["nft", "-s", "list", "ruleset"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything else still running in the namespace was started by this test
        // (a watchdog, a daemonised sshd): kill it by pid before deleting.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Join two namespaces with a veth pair: `server` gets 192.0.2.1/24 and
/// 2001:db8::1/64, `client` 192.0.2.2/24 and 2001:db8::2/64 (no DAD wait).
pub fn link(server: &Netns, client: &Netns) {
    veth(server, "eth0", client, "eth0");
    for (ns, v4, v6) in [
        (server, SERVER_V4, SERVER_V6),
        (client, CLIENT_V4, CLIENT_V6),
    ] {
        ns.bring_up("eth0", &[&format!("{v4}/24"), &format!("{v6}/64")]);
    }
}

/// A veth pair between device `a_dev` in `a` and `b_dev` in `b`, both
/// still down and without addresses (see [`Netns::bring_up`]).
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) {
    run_ok(Command::new("ip").args([
        "-n",
        a.name(),
        "link",
        "add",
        a_dev,
        "type",
        "veth",
        "peer",
        "name",
        b_dev,
        "netns",
        b.name(),
    ]));
}

/// Run and assert success; return stdout. Failure shows the command and stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Poll `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Does a TCP connect from `client` to `addr` port `port` succeed within 2 s?
/// `Refused` and `Dropped` are told apart (a drop times out, a reject refuses).
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    Open,
    Refused,
    Dropped,
}

pub fn probe_tcp(client: &Netns, addr: &str, port: u16) -> Probe {
    // bash's /dev/tcp gives connect's errno without any extra tool.
    let script = format!("timeout 2 bash -c 'exec 3<>/dev/tcp/{addr}/{port}' 2>&1; echo rc=$?");
    let out = client.sh(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("rc=0") {
        Probe::Open
    } else if text.contains("refused") {
        Probe::Refused
    } else {
        Probe::Dropped
    }
}

/// [`probe_tcp`] from one of `client`'s addresses, `source` (a second
/// client, a banned or listed one; IPv4 or IPv6, as `addr` is).
pub fn probe_tcp_from(client: &Netns, source: &str, addr: &str, port: u16) -> Probe {
    let family = if addr.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    let script = format!(
        "import socket\ns = socket.socket(socket.{family})\ns.settimeout(2)\ns.bind(('{source}', 0))\n\
         try:\n    s.connect(('{addr}', {port})); print('open')\n\
         except ConnectionRefusedError: print('refused')\n\
         except OSError: print('dropped')\n"
    );
    let out = client.run(&["python3", "-c", &script]);
    match text(&out.stdout).trim() {
        "open" => Probe::Open,
        "refused" => Probe::Refused,
        _ => Probe::Dropped,
    }
}

/// A DNS query over UDP from `client`: does anything answer within 2 s?
pub fn probe_dns(client: &Netns, addr: &str, port: u16) -> bool {
    let out = client.run(&[
        "dig",
        "+tries=1",
        "+time=2",
        "-p",
        &port.to_string(),
        &format!("@{addr}"),
        "example.test",
    ]);
    String::from_utf8_lossy(&out.stdout).contains("status:")
}

/// One ping from `client`, 2 s deadline.
pub fn ping(client: &Netns, addr: &str) -> bool {
    client
        .run(&["ping", "-c", "1", "-W", "2", addr])
        .status
        .success()
}

/// Wait until an `apply --state-dir STATE` running in `ns` has opened its
/// rollback window and loaded its rules (either backend), within `timeout`.
pub fn wait_for_applied_rules(ns: &Netns, state: &str, timeout: Duration) {
    assert!(
        applied_rules_within(ns, state, timeout),
        "apply did not open its window and load its rules"
    );
}

/// Whether an `apply --state-dir STATE` running in `ns` opened its rollback
/// window and loaded its rules within `timeout` (then after a moment for
/// the load to finish).
pub fn applied_rules_within(ns: &Netns, state: &str, timeout: Duration) -> bool {
    let window = Path::new(state).join("window.json");
    let loaded = wait_until(timeout, || {
        window.exists() && {
            let rules = ns.ruleset();
            rules.contains("table inet autofw") || rules.contains("AUTOFW-INPUT")
        }
    });
    // window.json is written just before the load, and the iptables backend
    // loads IPv4 then IPv6: let the load finish.
    if loaded {
        std::thread::sleep(Duration::from_millis(300));
    }
    loaded
}

/// Output bytes as text, for assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's status, stdout and stderr, for a failing assertion to print.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}
