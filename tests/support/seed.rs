//! The seed article's host (shared/seed/securing-your-vps-with-iptables.txt)
//! as real listeners in a namespace, and the probes that check a ruleset
//! lets in exactly its public services. Shared by the propose, apply and
//! acceptance tests.

use super::*;

/// The seed article's host, as real listeners: (program, service, specs).
/// Public services listen on the wildcard addresses as on a real host, named
/// on the public address and loopback; mysqld and rndc on loopback only.
pub const SEED_LISTENERS: &[(&str, &str, &[&str])] = &[
    ("vsftpd", "ftp", &["tcp:0.0.0.0:21", "tcp:[::]:21"]),
    ("sendmail", "smtp", &["tcp:0.0.0.0:25", "tcp:[::]:25"]),
    (
        "sendmail",
        "submission",
        &["tcp:0.0.0.0:587", "tcp:[::]:587"],
    ),
    (
        "named",
        "dns",
        &[
            "tcp:192.0.2.1:53",
            "udp:192.0.2.1:53",
            "tcp:[2001:db8::1]:53",
            "udp:[2001:db8::1]:53",
            "tcp:127.0.0.1:53",
            "udp:127.0.0.1:53",
        ],
    ),
    ("named", "rndc", &["tcp:127.0.0.1:953"]),
    ("apache2", "http", &["tcp:0.0.0.0:80", "tcp:[::]:80"]),
    ("apache2", "https", &["tcp:0.0.0.0:443", "tcp:[::]:443"]),
    ("dovecot", "pop3", &["tcp:0.0.0.0:110", "tcp:[::]:110"]),
    ("dovecot", "imap", &["tcp:0.0.0.0:143", "tcp:[::]:143"]),
    ("dovecot", "imaps", &["tcp:0.0.0.0:993", "tcp:[::]:993"]),
    ("dovecot", "pop3s", &["tcp:0.0.0.0:995", "tcp:[::]:995"]),
    ("sshd", "ssh", &["tcp:0.0.0.0:5622", "tcp:[::]:5622"]),
    ("mysqld", "mysql", &["tcp:127.0.0.1:3306"]),
];

/// The seed's public TCP services.
pub const SEED_TCP: &[u16] = &[21, 25, 53, 80, 110, 143, 443, 587, 993, 995, 5622];

/// Start the seed host's listeners in `server` (all but `sshd` when
/// `real_sshd` says a real OpenSSH server holds 5622), and return them as
/// `scan --json` would list them.
pub fn start_seed_services(server: &mut Netns, real_sshd: bool) -> Vec<serde_json::Value> {
    let mut listeners = Vec::new();
    for (program, service, specs) in SEED_LISTENERS {
        if real_sshd && *program == "sshd" {
            continue;
        }
        let pid = server.listen(Some(program), specs);
        for spec in *specs {
            let (proto, rest) = spec.split_once(':').unwrap();
            let (addr, port) = rest.rsplit_once(':').unwrap();
            let addr = addr.trim_matches(['[', ']']);
            let loopback = addr.starts_with("127.") || addr == "::1";
            listeners.push(serde_json::json!({
                "proto": proto,
                "address": addr,
                "port": port.parse::<u16>().unwrap(),
                "exposure": if loopback { "loopback" } else { "public" },
                "service": service,
                "process": program,
                "pids": [pid],
                "risky": false,
                // The stand-ins run as root, as the daemons bind.
                "uid": 0,
                "user": "root",
            }));
        }
    }
    listeners
}

/// Start the seed host's listeners in `server`, plus a stray listener on
/// the public addresses (tcp 8080, udp 5353) that the scan does not
/// mention, and write the scan that describes the seed's listeners.
pub fn start_seed_host(server: &mut Netns, scan_file: &std::path::Path) {
    let listeners = start_seed_services(server, false);
    server.listen(
        Some("stray"),
        &[
            "tcp:0.0.0.0:8080",
            "tcp:[::]:8080",
            "udp:0.0.0.0:5353",
            "udp:[::]:5353",
        ],
    );
    let scan = serde_json::json!({
        "listeners": listeners,
        "unreadable_processes": 0,
        "host": {"ip_forward": false, "bridges": []},
        "uid_min": 1000,
        "as_root": true,
    });
    std::fs::write(scan_file, serde_json::to_string_pretty(&scan).unwrap()).unwrap();
}

/// Forget every neighbour on both sides, so that the probes that follow only
/// work if neighbour discovery (and ARP) gets through the loaded rules.
pub fn flush_neighbours(server: &Netns, client: &Netns) {
    for ns in [server, client] {
        ns.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
        ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    }
}

/// Probe every (address, port) at once: a dropped probe takes its full
/// timeout, and there are many.
pub fn probe_all(client: &Netns, targets: &[(&str, u16)]) -> Vec<Probe> {
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|(addr, port)| s.spawn(move || probe_tcp(client, addr, *port)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// With the seed host's rules loaded in `server`: every public service
/// answers over IPv4 and IPv6, everything else is dropped.
pub fn assert_seed_rules_hold(server: &Netns, client: &Netns, how: &str) {
    flush_neighbours(server, client);
    assert!(ping(client, SERVER_V4), "{how}: ping over IPv4");
    assert!(ping(client, SERVER_V6), "{how}: ping over IPv6");
    let mut open = Vec::new();
    for addr in [SERVER_V4, SERVER_V6] {
        for port in SEED_TCP {
            open.push((addr, *port));
        }
    }
    let got = probe_all(client, &open);
    for (target, probe) in open.iter().zip(&got) {
        assert_eq!(*probe, Probe::Open, "{how}: {target:?} should answer");
    }
    for addr in [SERVER_V4, SERVER_V6] {
        assert!(probe_dns(client, addr, 53), "{how}: DNS over UDP to {addr}");
    }
    let mut closed = Vec::new();
    for addr in [SERVER_V4, SERVER_V6] {
        for port in [3306, 953, 8080, 22] {
            closed.push((addr, port));
        }
    }
    let got = probe_all(client, &closed);
    for (target, probe) in closed.iter().zip(&got) {
        assert_eq!(
            *probe,
            Probe::Dropped,
            "{how}: {target:?} should be dropped"
        );
    }
    for addr in [SERVER_V4, SERVER_V6] {
        assert!(
            !probe_dns(client, addr, 5353),
            "{how}: udp 5353 on {addr} should be dropped"
        );
    }
    // Neighbour discovery got through: the client learnt the server's
    // addresses again after the flush.
    let neigh = client.ok(&["ip", "-6", "neigh", "show", "dev", "eth0"]);
    assert!(
        neigh.contains(SERVER_V6) && !neigh.contains("FAILED"),
        "{how}: {neigh}"
    );
}

/// Before any rule: the stray listener answers and the loopback-only ports
/// are refused, so a `Dropped` later is the ruleset's doing.
pub fn assert_open_before_rules(client: &Netns) {
    assert_eq!(probe_tcp(client, SERVER_V4, 8080), Probe::Open);
    assert!(wait_until(std::time::Duration::from_secs(3), || probe_tcp(
        client, SERVER_V6, 8080
    )
        == Probe::Open));
    assert_eq!(probe_tcp(client, SERVER_V4, 3306), Probe::Refused);
    assert!(probe_dns(client, SERVER_V4, 5353));
}
