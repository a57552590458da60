//! A real nginx in a test namespace, for tests about a web server: Debian's
//! nginx with a master (root) and a worker (`www-data`) sharing the
//! listening sockets, as on a real host, from a minimal configuration in a
//! temporary directory. It answers every request with 200.

use super::*;
use std::fs::File;
use std::process::{Child, Stdio};
use std::time::Duration;

/// An nginx master process in a namespace; stopped by pid on drop.
#[must_use = "nginx is stopped when this is dropped"]
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Start nginx in `ns` listening on each of `addresses` (nginx's own
    /// `listen` syntax, as `ss` prints it: `0.0.0.0:80`, `[::]:80`,
    /// `[2001:db8::1]:443`), and wait until every one listens.
    pub fn start(ns: &Netns, addresses: &[&str]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let listen: String = addresses
            .iter()
            .map(|a| format!("        listen {a};\n"))
            .collect();
        let config = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser www-data;\n\
             pid {d}/nginx.pid;\nlock_file {d}/nginx.lock;\nerror_log stderr;\n\
             events {{}}\n\
             http {{\n    access_log off;\n\
                 client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
                 scgi_temp_path {d}/scgi;\n\
                 server {{\n{listen}        return 200 \"autofw test\\n\";\n    }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let log = File::create(dir.path().join("error.log")).unwrap();
        let mut cmd = ns.command("/usr/sbin/nginx");
        // -p: relative paths (and the default temp paths) under the temp dir;
        // -e: nginx writes there before it has read error_log.
        cmd.args(["-p", &d, "-e", "stderr", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
        let nginx = Nginx { child, dir };
        let listening = wait_until(Duration::from_secs(10), || {
            let ss = ns.ok(&["ss", "-Htln"]);
            let local: Vec<&str> = ss
                .lines()
                .filter_map(|l| l.split_whitespace().nth(3))
                .collect();
            addresses.iter().all(|a| local.contains(a))
        });
        assert!(
            listening,
            "nginx did not listen on {addresses:?}; its log:\n{}",
            nginx.log()
        );
        nginx
    }

    /// What nginx logged so far (for a failing assertion).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Stop nginx as its service does (SIGTERM to the master, which ends
    /// its workers first) and wait until it is gone; SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let gone = wait_until(Duration::from_secs(5), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            });
            if !gone {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
