//! A real OpenVPN (Debian's openvpn) in test namespaces: a point-to-point
//! tunnel over UDP with a static key made in a temporary directory. The
//! server drops to `user nobody` / `group nogroup` once root has created
//! its socket and its tun device, as OpenVPN's sample `server.conf` and most
//! guides suggest. A client in a neighbour namespace brings up the other
//! end; a ping through the tunnel proves the server's port is reachable.
//!
//! Static-key mode (deprecated in 2.6, still served) needs no certificate
//! authority: one `openvpn --genkey secret` file, shared by both ends.

use super::*;
use std::time::Duration;

/// The tunnel's addresses: the server's end and the client's.
pub const SERVER_TUNNEL: &str = "10.8.0.1";
pub const CLIENT_TUNNEL: &str = "10.8.0.2";

/// What both ends' configurations share, with the key at `key`.
fn common(key: &str, port: u16) -> String {
    format!(
        "dev tun\nproto udp\nport {port}\nsecret {key}\ncipher AES-256-CBC\nauth SHA256\n\
         verb 3\n"
    )
}

/// Start the server in `ns` on `port`/udp (all addresses), dropping to
/// nobody, and wait until it has.
pub fn start_openvpn_server(ns: &Netns, port: u16) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("static.key").display().to_string();
    run_ok(Command::new("/usr/sbin/openvpn").args(["--genkey", "secret", &key]));
    let conf = dir.path().join("server.conf");
    std::fs::write(
        &conf,
        format!(
            "{}ifconfig {SERVER_TUNNEL} {CLIENT_TUNNEL}\nuser nobody\ngroup nogroup\n\
             persist-key\npersist-tun\n",
            common(&key, port)
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let mut server = Daemon::spawn(ns, dir, &["/usr/sbin/openvpn", "--config", &conf]);
    let pid = server.pid();
    server.wait_ready(
        &format!("listen on {port}/udp as nobody"),
        Duration::from_secs(10),
        || {
            ns.ok(&["ss", "-Hulnp"]).contains(&format!(":{port} "))
                && std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t65534\t")))
        },
    );
    server
}

/// Start a client in `ns` that reaches `server` (started by
/// [`start_openvpn_server`]) at `remote`:`port`, and wait until its end of
/// the tunnel is up (static-key mode has no handshake: it is up at once,
/// whether or not the server is reachable).
pub fn start_openvpn_client(ns: &Netns, server: &Daemon, remote: &str, port: u16) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("static.key");
    std::fs::copy(server.dir().join("static.key"), &key).unwrap();
    let key = key.display().to_string();
    let conf = dir.path().join("client.conf");
    std::fs::write(
        &conf,
        format!(
            "{}remote {remote} {port}\nifconfig {CLIENT_TUNNEL} {SERVER_TUNNEL}\n",
            common(&key, port)
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let mut client = Daemon::spawn(ns, dir, &["/usr/sbin/openvpn", "--config", &conf]);
    client.wait_ready("bring its tunnel up", Duration::from_secs(10), || {
        ns.ok(&["ip", "-brief", "addr", "show"])
            .contains(CLIENT_TUNNEL)
    });
    client
}

/// Does a ping through the tunnel from `client`'s namespace reach the
/// server's end within `timeout`?
pub fn tunnel_answers(client: &Netns, timeout: Duration) -> bool {
    wait_until(timeout, || ping(client, SERVER_TUNNEL))
}
