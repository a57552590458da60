//! A real Samba smbd in a test namespace: Debian's file server, the kind of
//! risky service a proposal must leave closed, from a minimal smb.conf in a
//! temporary directory that also holds every file it writes.

use super::*;
use std::time::Duration;

/// Start smbd in `ns` on 445 (0.0.0.0 and ::, no NetBIOS), in the
/// foreground, and wait until it listens.
pub fn start_smbd(ns: &Netns) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let mut config = String::from(
        "[global]\n  server role = standalone server\n  smb ports = 445\n\
         \x20 disable netbios = yes\n  load printers = no\n  printcap name = /dev/null\n\
         \x20 disable spoolss = yes\n",
    );
    for (setting, sub) in [
        ("lock directory", "lock"),
        ("state directory", "state"),
        ("cache directory", "cache"),
        ("pid directory", "pid"),
        ("private dir", "private"),
        ("ncalrpc dir", "ncalrpc"),
        ("binddns dir", "bind-dns"),
    ] {
        std::fs::create_dir(format!("{d}/{sub}")).unwrap();
        config.push_str(&format!("  {setting} = {d}/{sub}\n"));
    }
    config.push_str(&format!("  log file = {d}/smbd.log\n"));
    let conf = format!("{d}/smb.conf");
    std::fs::write(&conf, config).unwrap();
    let argv = [
        "/usr/sbin/smbd",
        "--foreground",
        "--no-process-group",
        "--debug-stdout",
        "-s",
        &conf,
    ];
    let mut smbd = Daemon::spawn(ns, dir, &argv);
    smbd.wait_ready("listen on 445", Duration::from_secs(15), || {
        tcp_listening_on(ns, &["0.0.0.0:445", "[::]:445"])
    });
    smbd
}
