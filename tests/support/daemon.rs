//! A real daemon that a test runs in a namespace, in the foreground, from a
//! configuration in a temporary directory of its own: what sshd's helper
//! does, shared by nginx, fail2ban and smbd. Stopped by pid, as its service
//! would stop it, also when the test panics.

use super::*;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A daemon running in a namespace; stopped (by pid) on drop.
#[must_use = "the daemon is stopped when this is dropped"]
pub struct Daemon {
    name: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Start `argv` in `ns`, with stdout and stderr in `dir`/daemon.log.
    /// `dir` holds its configuration and lives as long as it runs.
    pub fn spawn<S: AsRef<OsStr>>(ns: &Netns, dir: tempfile::TempDir, argv: &[S]) -> Daemon {
        Daemon::start(ns, dir, None, argv)
    }

    /// [`Daemon::spawn`] as `user` (and its groups), as its service runs it
    /// where the daemon does not drop root itself. `setpriv` execs it, so
    /// the pid is still the daemon's.
    pub fn spawn_as<S: AsRef<OsStr>>(
        ns: &Netns,
        dir: tempfile::TempDir,
        user: &str,
        argv: &[S],
    ) -> Daemon {
        Daemon::start(ns, dir, Some(user), argv)
    }

    fn start<S: AsRef<OsStr>>(
        ns: &Netns,
        dir: tempfile::TempDir,
        user: Option<&str>,
        argv: &[S],
    ) -> Daemon {
        let name = Path::new(argv[0].as_ref())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let log = File::create(dir.path().join("daemon.log")).unwrap();
        let mut cmd = match user {
            None => ns.command(&argv[0].as_ref().to_string_lossy()),
            Some(user) => {
                let mut cmd = ns.command("setpriv");
                cmd.arg(format!("--reuid={user}"))
                    .arg(format!("--regid={user}"))
                    .arg("--init-groups")
                    .arg(argv[0].as_ref());
                cmd
            }
        };
        // A process group of its own: smbd, leaving, signals its whole group,
        // which must not be the test's.
        cmd.process_group(0)
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon { name, child, dir }
    }

    /// Its process id (the daemon's own: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory that holds its configuration.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Wait until `ready` holds; if it does not within `timeout`, fail the
    /// test with `what` and the daemon's log.
    pub fn wait_ready(&mut self, what: &str, timeout: Duration, ready: impl FnMut() -> bool) {
        if !wait_until(timeout, ready) {
            let exited = match self.child.try_wait() {
                Ok(Some(status)) => format!(" (it exited: {status})"),
                _ => String::new(),
            };
            panic!(
                "{} did not {what} within {timeout:?}{exited}; its log:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Stop it as its service would (SIGTERM: a master ends its workers
    /// first) and wait until it is gone; SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let gone = wait_until(Duration::from_secs(5), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            });
            if !gone {
                // Its group: the workers too.
                unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Does `ns` have a TCP listener on each of `addresses`, as `ss` prints
/// them (`0.0.0.0:80`, `[::]:445`, `[2001:db8::1]:443`)?
pub fn tcp_listening_on(ns: &Netns, addresses: &[&str]) -> bool {
    let ss = ns.ok(&["ss", "-Htln"]);
    let local: Vec<&str> = ss
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    addresses.iter().all(|a| local.contains(a))
}
