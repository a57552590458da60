//! A real Redis in a test namespace: Debian's `redis-server`, run as its
//! service runs it (user `redis`, in the foreground), from a minimal
//! configuration in a temporary directory; no persistence, so it writes
//! nothing but its log.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Start redis-server in `ns` on port 6379 of each of `binds` (Redis's own
/// `bind` syntax: `0.0.0.0`, `127.0.0.1`, `::`), and wait until every one
/// listens.
pub fn start_redis(ns: &Netns, binds: &[&str]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // Redis changes into `dir` as user redis.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // protected-mode no: without a password Redis would refuse clients from
    // other addresses than loopback, and the tests' probes come from a client.
    let config = format!(
        "daemonize no\nsupervised no\nport 6379\nbind {}\nprotected-mode no\n\
         dir {d}\nlogfile \"\"\nsave \"\"\nappendonly no\nalways-show-logo no\n",
        binds.join(" "),
    );
    let conf = format!("{d}/redis.conf");
    std::fs::write(&conf, config).unwrap();
    let mut redis = Daemon::spawn_as(ns, dir, "redis", &["/usr/bin/redis-server", &conf]);
    let addresses: Vec<String> = binds
        .iter()
        .map(|b| match b.contains(':') {
            true => format!("[{b}]:6379"),
            false => format!("{b}:6379"),
        })
        .collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    redis.wait_ready(
        &format!("listen on {addresses:?}"),
        Duration::from_secs(10),
        || tcp_listening_on(ns, &addresses),
    );
    redis
}
