//! A real OpenSSH server in a test namespace, with throwaway keys, and the
//! client that logs in to it: how an operator reaches a VPS, and the sshd
//! every test host has on 5622.

use super::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The SSH port of every test host: not 22, so that a rule for it is the
/// scan's (or the saved scan's) doing, never a default.
const SSH_PORT: u16 = 5622;

/// An sshd in a namespace (stopped by pid on drop), with throwaway ed25519
/// keys in its temporary directory, and an ssh client that logs in to it.
#[must_use = "sshd is stopped when this is dropped"]
pub struct Ssh {
    sshd: Daemon,
}

impl Ssh {
    /// Start `sshd -D` on 5622 (0.0.0.0 and ::) in `server` and wait until
    /// it listens on both. One host key and one client key, ed25519: a few
    /// milliseconds of ssh-keygen each, so every host has its own.
    pub fn start(server: &Netns) -> Ssh {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (key, comment) in [("host_key", "host"), ("client_key", "client")] {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(d.join(key)),
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let config = format!(
            "Port {SSH_PORT}\nListenAddress 0.0.0.0\nListenAddress ::\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile none\nLogLevel ERROR\n",
            d = d.display()
        );
        let config_path = d.join("sshd_config").display().to_string();
        std::fs::write(&config_path, config).unwrap();
        // sshd's privilege separation directory (the package makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
        // -D: in the foreground, so the pid is sshd's; -e: its log to stderr.
        let argv = ["/usr/sbin/sshd", "-D", "-e", "-f", &config_path];
        let mut sshd = Daemon::spawn(server, dir, &argv);
        let addresses = [format!("0.0.0.0:{SSH_PORT}"), format!("[::]:{SSH_PORT}")];
        let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
        sshd.wait_ready(
            &format!("listen on {addresses:?}"),
            Duration::from_secs(10),
            || tcp_listening_on(server, &addresses),
        );
        Ssh { sshd }
    }

    /// sshd's pid (the listener's, in a scan).
    pub fn pid(&self) -> u32 {
        self.sshd.pid()
    }

    /// The client's private key, for clients other than `ssh` (Ansible).
    pub fn client_key(&self) -> PathBuf {
        self.sshd.dir().join("client_key")
    }

    /// `ssh root@192.0.2.1 remote` from `client`.
    pub fn command(&self, client: &Netns, remote: &str) -> Command {
        self.login(client, remote, false)
    }

    /// `ssh -tt root@192.0.2.1 remote`: the remote command runs on a
    /// terminal of its own (a pty sshd allocates), as an operator's
    /// interactive login gives it. A byte written to this command's stdin
    /// is typed on that terminal (`\x03` is Ctrl-C).
    pub fn command_on_terminal(&self, client: &Netns, remote: &str) -> Command {
        self.login(client, remote, true)
    }

    fn login(&self, client: &Netns, remote: &str, terminal: bool) -> Command {
        let mut cmd = client.command("ssh");
        if terminal {
            cmd.arg("-tt");
        }
        cmd.args(["-F", "/dev/null", "-i"])
            .arg(self.client_key())
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
                "-p",
                &SSH_PORT.to_string(),
                "root@192.0.2.1",
                remote,
            ]);
        cmd
    }
}
