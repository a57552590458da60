//! A real fail2ban in a test namespace: Debian's `fail2ban-server` with its
//! own configuration in a temporary directory, banning for real from the
//! log lines a brute-forcer leaves, so the rules other tests must keep are
//! the ones fail2ban itself writes (its iptables chain and its nft table).

use super::*;
use std::path::Path;
use std::time::Duration;

/// The address the `sshd` jail bans through iptables-multiport (chain
/// `f2b-sshd`, jumped to from INPUT for tcp/5622).
pub const F2B_SSHD_BANNED: &str = "203.0.113.7";
/// The address the `nginx-http-auth` jail bans through nftables-multiport
/// (table `inet f2b-table`, set `addr-set-nginx-http-auth`, tcp/80).
pub const F2B_NGINX_BANNED: &str = "198.51.100.9";

/// Start fail2ban in `ns` with two jails, each of which bans one address
/// from failed logins already in its log, one with the iptables action and
/// one with the nftables action (as a host that moved half-way), and wait
/// until both bans are in the kernel's rules.
pub fn start_fail2ban(ns: &Netns) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The packaged actions and filters; everything else is this test's.
    for shared in ["action.d", "filter.d"] {
        std::os::unix::fs::symlink(Path::new("/etc/fail2ban").join(shared), d.join(shared))
            .unwrap();
    }
    let path = |name: &str| d.join(name).display().to_string();
    std::fs::write(
        d.join("fail2ban.conf"),
        format!(
            "[Definition]\nloglevel = INFO\nlogtarget = STDERR\nsyslogsocket = auto\n\
             allowipv6 = auto\nsocket = {}\npidfile = {}\ndbfile = :memory:\ndbpurgeage = 1d\n",
            path("fail2ban.sock"),
            path("fail2ban.pid"),
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("jail.conf"),
        format!(
            "[DEFAULT]\nbackend = polling\nusedns = no\nbantime = 1d\nfindtime = 1h\nmaxretry = 2\n\
             \n[sshd]\nenabled = true\nfilter = sshd\nlogpath = {}\n\
             action = iptables-multiport[name=sshd, port=5622, protocol=tcp]\n\
             \n[nginx-http-auth]\nenabled = true\nfilter = nginx-http-auth\nlogpath = {}\n\
             action = nftables-multiport[name=nginx-http-auth, port=80, protocol=tcp]\n",
            path("auth.log"),
            path("nginx-error.log"),
        ),
    )
    .unwrap();
    // Two failed logins each, in the formats rsyslog and nginx write, at
    // the namespace's own "now" (fail2ban only counts recent failures).
    ns.sh_ok(&format!(
        "for i in 1 2; do \
           echo \"$(date +%Y-%m-%dT%H:%M:%S.%6N%:z) server sshd[4242]: Failed password for root from {F2B_SSHD_BANNED} port 5002$i ssh2\" >> {auth}; \
           echo \"$(date '+%Y/%m/%d %H:%M:%S') [error] 4243#4243: *$i user \\\"admin\\\": password mismatch, client: {F2B_NGINX_BANNED}, server: _, request: \\\"GET / HTTP/1.1\\\", host: \\\"192.0.2.1\\\"\" >> {nginx}; \
         done",
        auth = path("auth.log"),
        nginx = path("nginx-error.log"),
    ));

    // -f: in the foreground, so the pid is the server's; -x: a stale socket
    // is no reason to refuse.
    let argv = [
        "fail2ban-server".to_string(),
        "-f".into(),
        "-x".into(),
        "-c".into(),
        path(""),
        "-s".into(),
        path("fail2ban.sock"),
        "-p".into(),
        path("fail2ban.pid"),
    ];
    let mut fail2ban = Daemon::spawn(ns, dir, &argv);
    fail2ban.wait_ready(
        &format!("ban {F2B_SSHD_BANNED} and {F2B_NGINX_BANNED}"),
        Duration::from_secs(30),
        || {
            let chain = ns.run(&["iptables", "-S", "f2b-sshd"]);
            let set = ns.run(&[
                "nft",
                "list",
                "set",
                "inet",
                "f2b-table",
                "addr-set-nginx-http-auth",
            ]);
            text(&chain.stdout).contains(&format!("-s {F2B_SSHD_BANNED}/32"))
                && text(&set.stdout).contains(F2B_NGINX_BANNED)
        },
    );
    fail2ban
}
