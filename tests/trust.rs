//! Issue 8's host, for real: a Debian server in a namespace as distributions
//! leave it, and the proposal an expert would write for it, checked by what
//! the kernel does with the loaded rules, probed from a neighbour on the
//! public link and one on the private link.
//!
//! The server runs a real OpenSSH sshd (root, 5622, IPv4 and IPv6), a real
//! rpcbind (as `nfs-common` leaves it, 111 TCP and UDP), a real
//! `prometheus-node-exporter` as the `prometheus` system account bound to
//! 10.9.0.5 on the private eth1 only, a real Samba smbd on 445 (root), and
//! listen.py stand-ins (for owners no packaged daemon has): a uid-1000
//! "node" app on 3000, a process of `nobody` calling itself sshd on 6380, a
//! system account's python3 calling itself sshd on 6379, a root service
//! bound to the private IPv6 address fd00:9::5 only;
//! an unconnected UDP socket on an ephemeral port (a client's), and a VXLAN
//! device (the kernel's socket on 4789).

use crate::support::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The server's address on the private link, and the private neighbour's.
const PRIVATE_SERVER: &str = "10.9.0.5";
const PRIVATE_CLIENT: &str = "10.9.0.7";
/// The same link's IPv6 unique-local addresses.
const PRIVATE_SERVER_V6: &str = "fd00:9::5";
const PRIVATE_CLIENT_V6: &str = "fd00:9::7";
/// uid/gid of the Debian accounts the daemons run as.
const DAEMON_UID: &str = "1"; // `daemon`: a system account

/// An unconnected UDP socket on a port the kernel picks (a client's), that
/// echoes what it gets, so a probe can tell whether the rules let it in.
const UDP_CLIENT: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"#;

struct TrustHost {
    /// The daemons first, so that they stop before their namespace goes
    /// (fields drop in order).
    _smbd: Daemon,
    _sshd: Ssh,
    server: Netns,
    /// On the public link (eth0), with a route to the private network via
    /// the server: the neighbour that must not reach node_exporter.
    public: Netns,
    /// On the private link (eth1).
    private: Netns,
    udp_client_port: u16,
    dir: tempfile::TempDir,
}

impl TrustHost {
    fn new(tag: &str) -> TrustHost {
        let mut server = Netns::new(&format!("{tag}-s"));
        let public = Netns::new(&format!("{tag}-pub"));
        let private = Netns::new(&format!("{tag}-prv"));
        link(&server, &public);
        link_private(&server, &private);
        public.ok(&["ip", "route", "add", "10.9.0.0/24", "via", SERVER_V4]);
        public.ok(&["ip", "-6", "route", "add", "fd00:9::/64", "via", SERVER_V6]);
        // The server keeps the kernel's default ephemeral range.
        server.ok(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=32768 60999"]);

        let sshd = Ssh::start(&server);
        // rpcbind locks /run/rpcbind.lock: each test's runs under its own
        // /run (`ip netns exec` gives every command a mount namespace whose
        // mounts do not reach the host's).
        server.spawn(&[
            "sh",
            "-c",
            "mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind && exec /usr/sbin/rpcbind -f -w",
        ]);
        server.spawn(&[
            "setpriv",
            "--reuid=prometheus",
            "--regid=prometheus",
            "--clear-groups",
            "/usr/bin/prometheus-node-exporter",
            &format!("--web.listen-address={PRIVATE_SERVER}:9100"),
            "--collector.disable-defaults",
            "--collector.loadavg",
        ]);
        let script = listen_py().display().to_string();
        let smbd = start_smbd(&server);
        // A root service bound to the private IPv6 address only.
        server.listen(None, &[&format!("tcp:[{PRIVATE_SERVER_V6}]:9101")]);
        let as_user = |uid: &str, name: &str, specs: &[&str]| {
            let mut argv = vec![
                "setpriv".to_string(),
                format!("--reuid={uid}"),
                format!("--regid={uid}"),
                "--clear-groups".to_string(),
                "/usr/bin/python3".to_string(),
                script.clone(),
                "--name".to_string(),
                name.to_string(),
            ];
            argv.extend(specs.iter().map(|s| s.to_string()));
            argv
        };
        for argv in [
            as_user("1000", "node", &["tcp:0.0.0.0:3000", "tcp:[::]:3000"]),
            as_user("65534", "sshd", &["tcp:0.0.0.0:6380"]),
            as_user(DAEMON_UID, "sshd", &["tcp:0.0.0.0:6379"]),
        ] {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            server.spawn(&argv);
        }
        server.ok(&[
            "ip", "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local",
            SERVER_V4, "dev", "eth0",
        ]);
        server.ok(&["ip", "link", "set", "vx0", "up"]);

        // The client socket prints the port the kernel gave it.
        let mut cmd = server.command("python3");
        cmd.args(["-c", UDP_CLIENT])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let udp_client_port: u16 = line.trim().parse().expect("the client socket's port");
        server.adopt(child);

        let wanted = [
            ":5622", ":111", ":9100", ":9101", ":445", ":3000", ":6379", ":6380",
        ];
        assert!(
            wait_until(Duration::from_secs(10), || {
                let listening = server.ok(&["ss", "-Htln"]);
                wanted.iter().all(|port| listening.contains(port))
            }),
            "the daemons did not all start: {}",
            server.ok(&["ss", "-Htulnp"])
        );
        TrustHost {
            server,
            public,
            private,
            _sshd: sshd,
            _smbd: smbd,
            udp_client_port,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `autofw propose` on the live host with `extra`, written to a file;
    /// returns the file and stderr (the left-closed list and warnings).
    fn propose(&self, format: &str, extra: &[&str]) -> (PathBuf, String) {
        let file = self.path(&format!("rules.{format}"));
        let mut args = vec![
            "propose",
            "--format",
            format,
            "--out",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = self.server.autofw(&args);
        assert!(out.status.success(), "{}", show(&out));
        (file, text(&out.stderr))
    }

    /// Propose and load with nft; returns propose's stderr.
    fn load_nft(&self, extra: &[&str]) -> String {
        let (file, stderr) = self.propose("nft", extra);
        self.server.ok(&["nft", "-f", file.to_str().unwrap()]);
        stderr
    }
}

/// The second link: server eth1 10.9.0.5/24, the private neighbour eth0
/// 10.9.0.7/24.
fn link_private(server: &Netns, private: &Netns) {
    veth(server, "eth1", private, "eth0");
    server.bring_up(
        "eth1",
        &[
            &format!("{PRIVATE_SERVER}/24"),
            &format!("{PRIVATE_SERVER_V6}/64"),
        ],
    );
    private.bring_up(
        "eth0",
        &[
            &format!("{PRIVATE_CLIENT}/24"),
            &format!("{PRIVATE_CLIENT_V6}/64"),
        ],
    );
}

/// Does a UDP datagram to `addr`:`port` from `client` come back within 2 s?
fn udp_echoes(client: &Netns, addr: &str, port: u16) -> bool {
    let script = format!(
        "import socket; s=socket.socket(); s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.settimeout(2); s.sendto(b'probe', ('{addr}', {port})); \
         print('echo' if s.recv(64) == b'probe' else 'other')"
    );
    let out = client.run(&["python3", "-c", &script]);
    text(&out.stdout).contains("echo")
}

/// VXLAN frames the kernel decapsulated on `vx0`.
fn vxlan_received(server: &Netns) -> u64 {
    let json: Value =
        serde_json::from_str(&server.ok(&["ip", "-s", "-j", "link", "show", "vx0"])).unwrap();
    json[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

/// Send one VXLAN frame (VNI 42, a broadcast Ethernet frame inside) to the
/// server's public address, as anyone on the internet could.
fn inject_vxlan(client: &Netns) {
    let script = format!(
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         vxlan=bytes([8,0,0,0, 0,0,42, 0]); \
         frame=b'\\xff'*6 + bytes([2,0,0,0,0,1]) + b'\\x08\\x00' + bytes(46); \
         s.sendto(vxlan+frame, ('{SERVER_V4}', 4789))"
    );
    client.ok(&["python3", "-c", &script]);
}

/// The account name of `uid` on this machine, as the scan should give it
/// (null when it has none).
fn user_name(uid: u32) -> Value {
    let out = Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .output()
        .unwrap();
    match text(&out.stdout).split(':').next() {
        Some(name) if out.status.success() && !name.is_empty() => name.into(),
        _ => Value::Null,
    }
}

fn listener<'a>(scan: &'a Value, proto: &str, address: &str, port: u16) -> &'a Value {
    scan["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["proto"] == proto && l["address"] == address && l["port"] == port)
        .unwrap_or_else(|| panic!("{proto} {address}:{port} not in {scan:#}"))
}

#[test]
fn the_scan_says_who_owns_what() {
    if !require_root() {
        return;
    }
    let host = TrustHost::new("trust-scan");
    let out = host.server.autofw(&["scan", "--all", "--json"]);
    let scan = json_of(&out);
    assert_eq!(scan["uid_min"], 1000);
    assert_eq!(scan["as_root"], true);

    let sshd = listener(&scan, "tcp", "0.0.0.0", 5622);
    assert_eq!(
        (&sshd["service"], &sshd["user"]),
        (&"ssh".into(), &"root".into())
    );
    assert_eq!(sshd["owners"][0]["exe"], "/usr/sbin/sshd");
    let rpcbind = listener(&scan, "udp", "0.0.0.0", 111);
    assert_eq!(
        (&rpcbind["service"], &rpcbind["risky"]),
        (&"sunrpc".into(), &true.into())
    );
    let exporter = listener(&scan, "tcp", PRIVATE_SERVER, 9100);
    assert_eq!(exporter["interface"], "eth1");
    assert_eq!(exporter["exposure"], "private");
    assert_eq!(exporter["owners"][0]["user"], "prometheus");
    let node = listener(&scan, "tcp", "0.0.0.0", 3000);
    assert_eq!(
        (&node["uid"], &node["user"]),
        (&1000.into(), &user_name(1000))
    );
    let nobody = listener(&scan, "tcp", "0.0.0.0", 6380);
    assert_eq!(nobody["user"], "nobody");
    assert_eq!(nobody["service"], "unknown", "comm sshd proves nothing");
    let fake = listener(&scan, "tcp", "0.0.0.0", 6379);
    assert_eq!(
        (&fake["service"], &fake["risky"]),
        (&"redis".into(), &true.into())
    );
    assert!(
        fake["name_note"].as_str().unwrap().contains("interpreter"),
        "{fake:#}"
    );
    let smb = listener(&scan, "tcp", "0.0.0.0", 445);
    assert_eq!(
        (&smb["service"], &smb["risky"]),
        (&"smb".into(), &true.into())
    );
    assert_eq!(
        (&smb["owners"][0]["exe"], &smb["user"]),
        (&"/usr/sbin/smbd".into(), &"root".into()),
        "{smb:#}"
    );
    let vxlan = listener(&scan, "udp", "0.0.0.0", 4789);
    assert_eq!(
        (&vxlan["service"], &vxlan["risky"]),
        (&"vxlan".into(), &true.into())
    );
    assert!(
        vxlan["kernel"]
            .as_str()
            .unwrap()
            .contains("VXLAN device vx0 (VNI 42)"),
        "{vxlan:#}"
    );
    let client = listener(&scan, "udp", "0.0.0.0", host.udp_client_port);
    assert_eq!(client["client_socket"], true);

    // The table: a USER column, client sockets hidden without --all.
    let out = host.server.autofw(&["scan"]);
    let table = text(&out.stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[4], "USER", "{table}");
    let row = |port: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(port))
            .unwrap_or_else(|| panic!("{port} not in {table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let uid_1000 = user_name(1000);
    assert_eq!(row("3000")[4], uid_1000.as_str().unwrap_or("1000"));
    assert_eq!(row("6380")[4], "nobody");
    assert_eq!(row("9100")[4], "prometheus");
    assert_eq!(row("4789")[5], "[kernel]");
    assert!(
        !table.contains(&format!(" {} ", host.udp_client_port)),
        "{table}"
    );
    assert!(
        text(&out.stderr).contains("1 client socket not shown"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_proposal_opens_only_what_an_expert_would_nft() {
    if !require_root() {
        return;
    }
    let host = TrustHost::new("trust-nft");
    let (server, public, private) = (&host.server, &host.public, &host.private);
    // Before any rule: everything answers, the private exporter even from
    // the public side (Linux takes packets for any local address on any
    // interface), and VXLAN frames from anyone are decapsulated.
    for port in [5622, 111, 445, 3000, 6379, 6380] {
        assert_eq!(probe_tcp(public, SERVER_V4, port), Probe::Open, "{port}");
    }
    assert_eq!(probe_tcp(public, PRIVATE_SERVER, 9100), Probe::Open);
    assert_eq!(probe_tcp(public, PRIVATE_SERVER_V6, 9101), Probe::Open);
    assert!(udp_echoes(public, SERVER_V4, host.udp_client_port));
    assert!(
        rpcbind_answers(public),
        "rpcbind answers over UDP before any rule"
    );
    let before = vxlan_received(server);
    inject_vxlan(public);
    assert!(
        wait_until(Duration::from_secs(2), || vxlan_received(server) > before),
        "the VXLAN frame should arrive before any rule"
    );

    let stderr = host.load_nft(&[]);
    // ssh, over IPv4 and IPv6, from anywhere.
    for addr in [SERVER_V4, SERVER_V6] {
        assert_eq!(probe_tcp(public, addr, 5622), Probe::Open, "ssh {addr}");
    }
    // node_exporter from the private network only, and the same for the
    // service bound to the private IPv6 address.
    assert_eq!(probe_tcp(private, PRIVATE_SERVER, 9100), Probe::Open);
    assert_eq!(probe_tcp(public, PRIVATE_SERVER, 9100), Probe::Dropped);
    assert_eq!(probe_tcp(private, PRIVATE_SERVER_V6, 9101), Probe::Open);
    assert_eq!(probe_tcp(public, PRIVATE_SERVER_V6, 9101), Probe::Dropped);
    // Everything else dropped from the public side.
    let closed: Vec<(&str, u16)> = [111, 445, 3000, 6379, 6380]
        .iter()
        .flat_map(|&port| [(SERVER_V4, port), (SERVER_V6, port)])
        .collect();
    for ((addr, port), probe) in closed.iter().zip(probe_all(public, &closed)) {
        assert_eq!(probe, Probe::Dropped, "{addr} {port}");
    }
    assert!(!rpcbind_answers(public), "rpcbind over UDP");
    assert!(
        !udp_echoes(public, SERVER_V4, host.udp_client_port),
        "the client socket"
    );
    let before = vxlan_received(server);
    inject_vxlan(public);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(vxlan_received(server), before, "VXLAN from the internet");

    // Each left-closed listener with its reason and the flag that opens it.
    for (port, reason, flag) in [
        ("111/tcp", "sunrpc", "--allow sunrpc"),
        ("111/udp", "sunrpc", "--allow sunrpc"),
        ("445/tcp", "smb listens beyond loopback", "--allow smb"),
        (
            "3000/tcp",
            "uid 1000): not a system account",
            "--allow 3000/tcp",
        ),
        ("6379/tcp", "redis listens beyond loopback", "--allow redis"),
        (
            "6380/tcp",
            "created by user nobody (uid 65534)",
            "--allow 6380/tcp",
        ),
        ("4789/udp", "vxlan listens beyond loopback", "--allow vxlan"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!(" {port} ")))
            .unwrap_or_else(|| panic!("{port} not left closed: {stderr}"));
        assert!(
            line.contains(reason) && line.ends_with(&format!("to open it: {flag}")),
            "{line}"
        );
    }
    assert!(
        !stderr.contains(&host.udp_client_port.to_string()),
        "a client socket is not a service: {stderr}"
    );
    let rules = server.ruleset();
    assert!(
        rules.contains(&format!(
            "iifname \"eth1\" ip daddr {PRIVATE_SERVER} tcp dport 9100 accept"
        )),
        "{rules}"
    );

    // The flags do what they say.
    host.load_nft(&["--allow", "3000/tcp"]);
    assert_eq!(probe_tcp(public, SERVER_V4, 3000), Probe::Open);
    assert_eq!(probe_tcp(public, SERVER_V6, 3000), Probe::Open);
    assert_eq!(probe_tcp(public, SERVER_V4, 111), Probe::Dropped);
    host.load_nft(&["--allow", "sunrpc"]);
    assert_eq!(probe_tcp(public, SERVER_V4, 111), Probe::Open);
    assert!(rpcbind_answers(public));
    assert_eq!(probe_tcp(public, SERVER_V4, 3000), Probe::Dropped);
    // --source keeps the bound match: still only on eth1.
    host.load_nft(&["--source", &format!("9100/tcp=10.9.0.0/24,{CLIENT_V4}")]);
    assert_eq!(probe_tcp(private, PRIVATE_SERVER, 9100), Probe::Open);
    assert_eq!(probe_tcp(public, PRIVATE_SERVER, 9100), Probe::Dropped);
}

/// rpcbind answers an RPC NULL call over UDP (it does not echo).
fn rpcbind_answers(client: &Netns) -> bool {
    let script = format!(
        "import socket,struct; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); \
         s.sendto(struct.pack('>IIIIIIIIII', 7, 0, 2, 100000, 2, 0, 0, 0, 0, 0), ('{SERVER_V4}', 111)); \
         print('answer' if len(s.recv(512)) >= 24 else 'short')"
    );
    text(&client.run(&["python3", "-c", &script]).stdout).contains("answer")
}

#[test]
fn the_proposal_opens_only_what_an_expert_would_iptables() {
    if !require_root() {
        return;
    }
    let host = TrustHost::new("trust-ipt");
    let (server, public, private) = (&host.server, &host.public, &host.private);
    for (format, tool) in [
        ("iptables", "iptables-restore"),
        ("ip6tables", "ip6tables-restore"),
    ] {
        let (file, _) = host.propose(format, &[]);
        server.ok(&[tool, "--noflush", file.to_str().unwrap()]);
    }
    let saved = server.ok(&["iptables-save"]);
    assert!(
        saved.contains(&format!(
            "-d {PRIVATE_SERVER}/32 -i eth1 -p tcp -m tcp --dport 9100"
        )),
        "{saved}"
    );
    for addr in [SERVER_V4, SERVER_V6] {
        assert_eq!(probe_tcp(public, addr, 5622), Probe::Open, "ssh {addr}");
        for port in [111, 445, 3000, 6379, 6380] {
            assert_eq!(
                probe_tcp(public, addr, port),
                Probe::Dropped,
                "{addr} {port}"
            );
        }
    }
    assert_eq!(probe_tcp(private, PRIVATE_SERVER, 9100), Probe::Open);
    assert_eq!(probe_tcp(public, PRIVATE_SERVER, 9100), Probe::Dropped);
    let saved6 = server.ok(&["ip6tables-save"]);
    assert!(
        saved6.contains(&format!(
            "-d {PRIVATE_SERVER_V6}/128 -i eth1 -p tcp -m tcp --dport 9101"
        )),
        "{saved6}"
    );
    assert_eq!(probe_tcp(private, PRIVATE_SERVER_V6, 9101), Probe::Open);
    assert_eq!(probe_tcp(public, PRIVATE_SERVER_V6, 9101), Probe::Dropped);
    assert!(!udp_echoes(public, SERVER_V4, host.udp_client_port));
}

/// apply's lockout guard asks with the SSH connection's own server
/// address: an sshd bound to the private address only, reached there, is
/// kept; reached on the public address (which the bound rule does not
/// take), the apply is refused.
#[test]
fn the_lockout_guard_asks_about_the_address_the_session_reached() {
    if !require_root() {
        return;
    }
    let mut server = Netns::new("trust-guard-s");
    let private = Netns::new("trust-guard-p");
    let public = Netns::new("trust-guard-c");
    link(&server, &public);
    link_private(&server, &private);
    server.listen(None, &[&format!("tcp:{PRIVATE_SERVER}:2222")]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let apply = |ssh_connection: &str| {
        let mut cmd = server.command(autofw_bin());
        // Without --confirm: a dry run, which says what the guard thinks.
        cmd.args(["apply", "--state-dir"])
            .arg(&state)
            .env("SSH_CONNECTION", ssh_connection);
        cmd.output().unwrap()
    };
    let out = apply(&format!("{PRIVATE_CLIENT} 50000 {PRIVATE_SERVER} 2222"));
    assert!(
        !text(&out.stderr).contains("refusing to lock you out"),
        "{}",
        show(&out)
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = apply(&format!("{CLIENT_V4} 50000 {SERVER_V4} 2222"));
    assert!(
        text(&out.stderr).contains(&format!(
            "warning: refusing to lock you out: this session is SSH from {CLIENT_V4} to {SERVER_V4} port 2222"
        )),
        "{}",
        show(&out)
    );
}

/// Socket activation and a kernel tunnel, on a saved host (no systemd runs
/// here): PID 1's sockets are named after their units, the VXLAN socket
/// after its device, and the proposal says so instead of "owner unknown".
#[test]
fn socket_units_and_kernel_sockets_name_their_listeners() {
    let dir = fixture("proc/socket-activation");
    let out = Command::new(autofw_bin())
        .args(["scan", "--all", "--json", "--fixture"])
        .arg(&dir)
        .output()
        .unwrap();
    let scan = json_of(&out);
    let ssh = listener(&scan, "tcp", "::", 22);
    assert_eq!(
        (&ssh["service"], &ssh["unit"]),
        (&"ssh".into(), &"ssh.socket".into())
    );
    let rpc = listener(&scan, "udp", "0.0.0.0", 111);
    assert_eq!(
        (&rpc["service"], &rpc["unit"]),
        (&"sunrpc".into(), &"rpcbind.socket".into())
    );
    let vxlan = listener(&scan, "udp", "0.0.0.0", 4789);
    assert_eq!(
        (&vxlan["service"], &vxlan["risky"]),
        (&"vxlan".into(), &true.into())
    );

    let saved = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(saved.path(), &out.stdout).unwrap();
    let out = Command::new(autofw_bin())
        .args(["propose", "--from"])
        .arg(saved.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let rules = text(&out.stdout);
    assert!(
        rules.contains("# ssh (systemd for ssh.socket, pid 1)"),
        "{rules}"
    );
    assert!(
        rules.contains("tcp dport 22 accept comment \"ssh\""),
        "{rules}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("sunrpc 111/udp (systemd for rpcbind.socket, pid 1)")
            && stderr.contains("to open it: --allow sunrpc"),
        "{stderr}"
    );
    assert!(
        stderr.contains("vxlan 4789/udp (VXLAN device vx0 (VNI 42)")
            && stderr.contains("to open it: --allow vxlan"),
        "{stderr}"
    );
    assert!(!stderr.contains("owner unknown"), "{stderr}");
}

/// Issue 20's regression: daemons that drop privileges keep their ports.
/// A real nginx with no `user` line (the master creates 80 as root, its
/// workers run as `nobody`, nginx's compiled-in default) and a real OpenVPN
/// with `user nobody` / `group nogroup` (root creates 1194/udp and tun0,
/// then the one process becomes nobody) are the administrator's: after
/// `apply`, a neighbour reaches nginx and brings an OpenVPN tunnel up
/// through them. Beside them the impostor, listen.py started *as* nobody
/// and calling itself nginx on 8080 (its socket created by nobody), stays
/// closed. Under the old rule (every holder a system account) 80 and 1194
/// were closed and this test fails at the first probe after apply.
#[test]
fn daemons_that_drop_privileges_keep_their_ports() {
    if !require_root() {
        return;
    }
    let mut server = Netns::new("trust-drop-s");
    let public = Netns::new("trust-drop-c");
    link(&server, &public);
    let _nginx = start_nginx_as(&server, &["0.0.0.0:80", "[::]:80"], None);
    let openvpn = start_openvpn_server(&server, 1194);
    let script = listen_py().display().to_string();
    server.spawn(&[
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "/usr/bin/python3",
        &script,
        "--name",
        "nginx",
        "tcp:0.0.0.0:8080",
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            server.ok(&["ss", "-Htln"]).contains(":8080 ")
        }),
        "the impostor did not start"
    );
    for port in [80, 8080] {
        assert_eq!(probe_tcp(&public, SERVER_V4, port), Probe::Open, "{port}");
    }

    // What the scan records: the sockets' creators, and who holds them now.
    let scan = json_of(&server.autofw(&["scan", "--json"]));
    let web = listener(&scan, "tcp", "0.0.0.0", 80);
    assert_eq!((&web["uid"], &web["service"]), (&0.into(), &"http".into()));
    let holders: Vec<(&Value, &Value)> = web["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (&o["program"], &o["uid"]))
        .collect();
    assert!(
        holders.contains(&(&"nginx".into(), &0.into()))
            && holders.contains(&(&"nginx".into(), &65534.into())),
        "the master as root, a worker as nobody: {web:#}"
    );
    let vpn = listener(&scan, "udp", "0.0.0.0", 1194);
    assert_eq!(
        (
            &vpn["uid"],
            &vpn["owners"][0]["program"],
            &vpn["owners"][0]["uid"]
        ),
        (&0.into(), &"openvpn".into(), &65534.into()),
        "{vpn:#}"
    );
    let fake = listener(&scan, "tcp", "0.0.0.0", 8080);
    assert_eq!(
        (&fake["uid"], &fake["user"]),
        (&65534.into(), &"nobody".into())
    );

    let out = server.autofw(&["propose"]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = text(&out.stderr);
    for port in ["80/tcp", "1194/udp"] {
        assert!(
            !stderr.lines().any(|l| l.contains(&format!(" {port} "))),
            "{port} left closed: {stderr}"
        );
    }
    let line = stderr
        .lines()
        .find(|l| l.contains(" 8080/tcp "))
        .unwrap_or_else(|| panic!("8080 not left closed: {stderr}"));
    assert!(
        line.contains("socket created by user nobody (uid 65534)")
            && line.ends_with("to open it: --allow 8080/tcp"),
        "{line}"
    );

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    let out = server.autofw(&["apply", "--confirm", "--no-wait", "--state-dir", &state]);
    assert!(out.status.success(), "{}", show(&out));
    let confirm = server.autofw(&["confirm", "--state-dir", &state]);
    assert!(confirm.status.success(), "{}", show(&confirm));

    assert_eq!(probe_tcp(&public, SERVER_V4, 80), Probe::Open, "nginx v4");
    assert_eq!(probe_tcp(&public, SERVER_V6, 80), Probe::Open, "nginx v6");
    assert_eq!(
        probe_tcp(&public, SERVER_V4, 8080),
        Probe::Dropped,
        "impostor"
    );
    let _client = start_openvpn_client(&public, &openvpn, SERVER_V4, 1194);
    assert!(
        tunnel_answers(&public, Duration::from_secs(10)),
        "no ping through the OpenVPN tunnel after apply; server log:\n{}",
        openvpn.log()
    );
    let rules = server.ruleset();
    assert!(rules.contains("udp dport 1194 accept"), "{rules}");
}
