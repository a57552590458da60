//! A real OpenSSH server in a test namespace, with throwaway keys, and the
//! client that logs in to it: how an operator reaches a VPS.

use super::*;
use std::process::Command;

/// An sshd in the server namespace with throwaway keys, and an ssh client.
pub struct Ssh {
    dir: tempfile::TempDir,
}

impl Ssh {
    /// Start `sshd -D` on 5622 in `server` (in place of a fake listener).
    pub fn start(server: &mut Netns) -> Ssh {
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
            "Port 5622\nListenAddress 0.0.0.0\nListenAddress ::\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile none\nLogLevel ERROR\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // sshd's privilege separation directory (the package makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let config = d.join("sshd_config");
        server.spawn(&["/usr/sbin/sshd", "-D", "-e", "-f", config.to_str().unwrap()]);
        Ssh { dir }
    }

    /// The client's private key, for clients other than `ssh` (Ansible).
    pub fn client_key(&self) -> std::path::PathBuf {
        self.dir.path().join("client_key")
    }

    /// `ssh root@192.0.2.1 remote` from `client`.
    pub fn command(&self, client: &Netns, remote: &str) -> Command {
        let key = self.dir.path().join("client_key");
        let mut cmd = client.command("ssh");
        cmd.args(["-F", "/dev/null", "-i"]).arg(key).args([
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
            "5622",
            "root@192.0.2.1",
            remote,
        ]);
        cmd
    }
}
