//! `autofw scan` end to end: saved tables through the real binary
//! (`--fixture`), and real listeners in a namespace, checked against what
//! `ss -Htulnp` sees there.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

/// One line per listener, `proto address port exposure service process pids risky`:
/// easy to compare whole, and a failure shows everything.
fn summary(scan: &Value) -> Vec<String> {
    scan["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| {
            let pids: Vec<String> = l["pids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.to_string())
                .collect();
            format!(
                "{} {} {} {} {} {} [{}]{}",
                l["proto"].as_str().unwrap(),
                l["address"].as_str().unwrap(),
                l["port"],
                l["exposure"].as_str().unwrap(),
                l["service"].as_str().unwrap(),
                l["process"].as_str().unwrap(),
                pids.join(","),
                if l["risky"] == true { " risky" } else { "" }
            )
        })
        .collect()
}

fn fixture_arg(name: &str) -> String {
    fixture(&format!("proc/{name}")).display().to_string()
}

#[test]
fn seed_host_lists_its_twelve_public_services_by_name() {
    let dir = fixture_arg("seed-host");
    let out = Autofw::new(&["scan", "--json", "--fixture", &dir]).output();
    let scan = json_of(&out);
    assert_eq!(
        summary(&scan),
        [
            "tcp 0.0.0.0 21 public ftp vsftpd [173]",
            "tcp 0.0.0.0 25 public smtp sendmail [449]",
            "tcp 203.0.113.10 53 public dns named [353]",
            "tcp 0.0.0.0 80 public http apache2 [590,591,592]",
            "tcp 0.0.0.0 110 public pop3 dovecot [261]",
            "tcp 0.0.0.0 143 public imap dovecot [261]",
            "tcp 0.0.0.0 443 public https apache2 [590,591,592]",
            "tcp 0.0.0.0 587 public submission sendmail [449]",
            "tcp 0.0.0.0 993 public imaps dovecot [261]",
            "tcp 0.0.0.0 995 public pop3s dovecot [261]",
            "tcp 0.0.0.0 5622 public ssh sshd [630]",
            "udp 203.0.113.10 53 public dns named [353]",
        ]
    );
    assert_eq!(scan["unreadable_processes"], 0);
    assert_eq!(
        text(&out.stderr),
        "autofw: note: 4 loopback-only listeners not shown (unreachable from outside); `--all` shows them\n"
    );

    let all = Autofw::new(&["scan", "--all", "--json", "--fixture", &dir]).json();
    let loopback: Vec<String> = summary(&all)
        .into_iter()
        .filter(|l| l.contains(" loopback "))
        .collect();
    assert_eq!(
        loopback,
        [
            "tcp 127.0.0.1 53 loopback dns named [353]",
            "tcp 127.0.0.1 953 loopback rndc named [353]",
            "tcp 127.0.0.1 3306 loopback mysql mysqld [296]",
            "udp 127.0.0.1 53 loopback dns named [353]",
        ]
    );
}

#[test]
fn seed_host_table_for_people() {
    let out = Autofw::new(&["scan", "--fixture", &fixture_arg("seed-host")]).output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let text = text(&out.stdout);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "PROTO", "ADDRESS", "PORT", "SERVICE", "USER", "PROCESS", "PIDS", "EXPOSURE", "NOTE"
        ]
    );
    assert_eq!(lines.len(), 13, "{text}");
    assert!(lines.contains(&vec![
        "tcp", "0.0.0.0", "5622", "ssh", "root", "sshd", "630", "public"
    ]));
    assert!(
        !text.contains("127.0.0.1"),
        "loopback shown by default:\n{text}"
    );
    let all = crate::support::text(
        &Autofw::new(&["scan", "--all", "--fixture", &fixture_arg("seed-host")])
            .output()
            .stdout,
    );
    assert!(all.contains("3306") && all.contains("953"), "{all}");
}

#[test]
fn mixed_host_v6_mapped_scoped_private_and_non_listeners() {
    let out = Autofw::new(&[
        "scan",
        "--all",
        "--json",
        "--fixture",
        &fixture_arg("mixed"),
    ])
    .output();
    let scan = json_of(&out);
    assert_eq!(
        summary(&scan),
        [
            "tcp 0.0.0.0 22 public ssh sshd [700]",
            "tcp :: 22 public ssh sshd [700]",
            // Dual-stack; the v4 connection to it (::ffff:127.0.0.1 in tcp6) is not listed.
            "tcp :: 80 public http nginx [800,801]",
            "tcp 2001:db8::1 443 public https nginx [800,801]",
            "tcp 100.64.0.1 3000 private unknown devserver [930]",
            "tcp ::1 5432 loopback postgresql postgres [900]",
            "tcp ::ffff:127.0.0.1 6379 loopback redis redis-server [910]",
            "tcp 10.0.0.5 6380 private redis redis-server [910] risky",
            "tcp 169.254.1.1 8000 link-local unknown devserver [930]",
            "tcp fe80::1 8080 link-local http-alt devserver [930]",
            "tcp ::ffff:203.0.113.10 8443 public https-alt java [920]",
            "tcp fd00::1 9200 private elasticsearch java [920] risky",
            "udp 127.0.0.1 53 loopback dns unbound [960]",
            "udp ::1 53 loopback dns unbound [960]",
            "udp 0.0.0.0 123 public ntp chronyd [940]",
            "udp :: 123 public ntp chronyd [940]",
            "udp ::1 323 loopback ntp chronyd [940]",
            "udp fe80::1 547 link-local unknown dhcpd [950]",
            // Its owner could not be read: listed, unowned, and counted.
            "udp 0.0.0.0 5353 public mdns  [] risky",
        ]
    );
    assert_eq!(scan["unreadable_processes"], 1);
    assert!(
        text(&out.stderr).contains("1 process could not be read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn malformed_tables_name_the_file_and_line() {
    let cases = [
        (
            "address",
            "tcp` line 5: local_address `00000000:01XB` is not 8 or 32 hex digits, a colon and a 4-digit hex port",
        ),
        ("truncated", "udp` line 3: expected at least 10 fields"),
        (
            "state",
            "tcp` line 6: state `LISTEN` is not a two-digit hex number",
        ),
        (
            "header",
            "tcp` line 1: expected the header `sl local_address",
        ),
        ("owners", "owners` line 3: expected `INODE PID PROGRAM`"),
    ];
    for (case, want) in cases {
        let dir = fixture_arg(&format!("malformed/{case}"));
        let out = Autofw::new(&["scan", "--fixture", &dir]).output();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert!(
            err.starts_with(&format!("autofw: `{dir}/")) && err.contains(want),
            "{case}: {err}"
        );
        assert!(!err.contains("panicked"), "{case}: {err}");
        assert!(out.stdout.is_empty(), "{case}");
    }
    let out = Autofw::new(&["scan", "--fixture", "/nonexistent/autofw-fixture"]).output();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a directory of saved socket tables"));
    let out = Autofw::new(&[
        "scan",
        "--source",
        "netlink",
        "--fixture",
        &fixture_arg("seed-host"),
    ])
    .output();
    assert_eq!(out.status.code(), Some(2));
}

// ---- Real listeners in a namespace -------------------------------------

/// (proto, address, port) → (pids, programs), from `ss -Htulnp` or from autofw.
type Owned = BTreeMap<(String, IpAddr, u16), (BTreeSet<u32>, BTreeSet<String>)>;

/// Parse `ss -Htulnp`: `udp UNCONN 0 0 [::ffff:127.0.0.1]:53 *:* users:(("named",pid=5,fd=7))`.
/// ss writes a dual-stack `::` as `*`, and a scope as `%dev` after the address.
fn parse_ss(text: &str) -> Owned {
    let mut owned = Owned::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let proto = fields[0].to_string();
        let local = fields[4];
        let (address, port) = local.rsplit_once(':').expect("address:port");
        let address = address.split('%').next().unwrap();
        let address = address.trim_start_matches('[').trim_end_matches(']');
        let address: IpAddr = if address == "*" {
            "::".parse().unwrap()
        } else {
            address
                .parse()
                .unwrap_or_else(|_| panic!("ss address {address} in {line}"))
        };
        let entry = owned
            .entry((proto, address, port.parse().unwrap()))
            .or_default();
        if let Some(users) = fields.get(6) {
            for user in users.split("((").flat_map(|u| u.split("),(")) {
                // "sshd",pid=123,fd=3   (the last one ends with "))")
                let mut parts = user.trim_end_matches(')').split(',');
                let (Some(name), Some(pid)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let Some(pid) = pid.strip_prefix("pid=") else {
                    continue;
                };
                entry.0.insert(pid.parse().unwrap());
                entry.1.insert(name.trim_matches('"').to_string());
            }
        }
    }
    owned
}

fn owned_from_scan(scan: &Value) -> Owned {
    let mut owned = Owned::new();
    for l in scan["listeners"].as_array().unwrap() {
        let key = (
            l["proto"].as_str().unwrap().to_string(),
            l["address"].as_str().unwrap().parse().unwrap(),
            l["port"].as_u64().unwrap() as u16,
        );
        let pids = l["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap() as u32)
            .collect();
        let programs = l["process"]
            .as_str()
            .unwrap()
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        assert!(
            owned.insert(key.clone(), (pids, programs)).is_none(),
            "{key:?} twice"
        );
    }
    owned
}

/// A process that holds what listen.py cannot: an established TCP
/// connection (both ends, to a listener that never accepts), a connected UDP
/// socket, and a listening socket shared with a forked child.
const HOLDER: &str = r#"
import ctypes, os, socket, sys, time
ctypes.CDLL(None).prctl(15, b"haproxy", 0, 0, 0)
shared = socket.socket(); shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
shared.bind(("0.0.0.0", 8443)); shared.listen(8)
backlog = socket.socket(); backlog.bind(("127.0.0.1", 7000)); backlog.listen(8)
client = socket.socket(); client.connect(("127.0.0.1", 7000))
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); udp.connect(("2001:db8::2", 5300))
os.fork()
print("ready", flush=True)
time.sleep(600)
"#;

/// A namespace with listeners of every kind the issue names: a real sshd,
/// and listen.py (python3) under daemons' names; returns it, its client and
/// the sshd (whose keys live as long as it).
fn busy_namespace(tag: &str) -> (Netns, Netns, Ssh) {
    let mut server = Netns::new(tag);
    let client = Netns::new(&format!("{tag}-c"));
    link(&server, &client);
    // A scoped (link-local) address too.
    server.ok(&["ip", "addr", "add", "fe80::1/64", "dev", "eth0", "nodad"]);
    let ssh = Ssh::start(&server);
    server.listen(
        Some("named"),
        &[
            "tcp:192.0.2.1:53",
            "udp:192.0.2.1:53",
            "tcp:127.0.0.1:53",
            "udp:127.0.0.1:53",
            "tcp:127.0.0.1:953",
            "udp:[2001:db8::1]:53",
            "udp:[::1]:53",
        ],
    );
    server.listen(Some("mysqld"), &["tcp:127.0.0.1:3306"]);
    server.listen(
        Some("nginx"),
        &["tcp:[::]:8080:dual", "tcp:[2001:db8::1]:443"],
    );
    server.listen(
        Some("redis-server"),
        &["tcp:[::ffff:127.0.0.1]:6379:dual", "tcp:0.0.0.0:6380"],
    );
    server.listen(Some("mystery"), &["tcp:0.0.0.0:40000", "udp:0.0.0.0:40001"]);
    server.spawn(&["python3", "-c", HOLDER]);
    server.spawn(&[
        "python3",
        "-c",
        "import socket,time; s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); \
         s.bind(('fe80::1',547,0,socket.if_nametoindex('eth0'))); time.sleep(600)",
    ]);
    // The helpers are up when ss shows the scoped socket, the established
    // connection, and the shared socket with both its owners.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let all = server.ok(&["ss", "-Htuanp"]);
            let listening = parse_ss(&server.ok(&["ss", "-Htulnp"]));
            all.contains("[fe80::1]%eth0:547")
                && all.contains("ESTAB")
                && all.contains("[::]:5622")
                && listening
                    .get(&("tcp".to_string(), "0.0.0.0".parse().unwrap(), 8443))
                    .is_some_and(|(pids, _)| pids.len() == 2)
        }),
        "helpers did not start: {}",
        server.ok(&["ss", "-Htuanp"])
    );
    (server, client, ssh)
}

#[test]
fn namespace_scan_lists_exactly_what_ss_lists() {
    if !require_root() {
        return;
    }
    let (server, _client, _ssh) = busy_namespace("scan-ss");
    let ss = parse_ss(&server.ok(&["ss", "-Htulnp"]));
    let netlink = json_of(&server.autofw(&["scan", "--all", "--json", "--source", "netlink"]));
    let proc = json_of(&server.autofw(&["scan", "--all", "--json", "--source", "proc"]));
    let auto = json_of(&server.autofw(&["scan", "--all", "--json"]));
    // The holders from the kernel's task_file iterator, and from the walk
    // of /proc alone, whatever the machine's process count makes `auto`.
    let iterator = json_of(&server.autofw(&["scan", "--all", "--json", "--owners-from", "bpf"]));
    let walk = json_of(&server.autofw(&["scan", "--all", "--json", "--owners-from", "proc"]));

    // Same sockets, same owners (pids and programs) as ss, whichever source.
    assert_eq!(owned_from_scan(&netlink), ss, "netlink vs ss");
    assert_eq!(owned_from_scan(&iterator), ss, "the iterator vs ss");
    assert_eq!(owned_from_scan(&walk), ss, "the /proc walk vs ss");
    assert_eq!(summary(&proc), summary(&netlink), "proc vs netlink");
    assert_eq!(summary(&auto), summary(&netlink), "auto vs netlink");
    assert_eq!(summary(&iterator), summary(&netlink), "iterator vs netlink");
    assert_eq!(summary(&walk), summary(&netlink), "walk vs netlink");

    let lines = summary(&netlink);
    let pids_of = |needle: &str| -> String {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {lines:#?}"))
            .clone()
    };
    // Names by program first (the real sshd on 5622), by port second, else
    // unknown. python3 calling itself nginx or redis-server proves nothing:
    // its listeners are named by port.
    assert!(pids_of("tcp 0.0.0.0 5622 ").contains("public ssh sshd"));
    assert!(pids_of("tcp :: 5622 ").contains("public ssh sshd"));
    let sshd = netlink["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == 5622)
        .unwrap();
    assert_eq!(
        (&sshd["uid"], &sshd["user"]),
        (&Value::from(0), &Value::from("root"))
    );
    assert_eq!(sshd["owners"][0]["exe"], "/usr/sbin/sshd");
    assert_eq!(sshd["owners"][0]["uid"], 0);
    assert_eq!(sshd["owners"][0]["exe_root_only"], true);
    assert!(pids_of("tcp 192.0.2.1 53 ").contains("public dns named"));
    assert!(pids_of("udp 192.0.2.1 53 ").contains("public dns named"));
    assert!(pids_of("udp 2001:db8::1 53 ").contains("public dns named"));
    assert!(pids_of("udp ::1 53 ").contains("loopback dns named"));
    assert!(pids_of("tcp 127.0.0.1 953 ").contains("loopback rndc named"));
    assert!(pids_of("tcp 127.0.0.1 3306 ").contains("loopback mysql mysqld"));
    assert!(pids_of("tcp :: 8080 ").contains("public http-alt nginx"));
    assert!(pids_of("tcp 2001:db8::1 443 ").contains("public https nginx"));
    assert!(pids_of("tcp ::ffff:127.0.0.1 6379 ").contains("loopback redis redis-server"));
    assert!(pids_of("tcp 0.0.0.0 6380 ").contains("public unknown redis-server"));
    let renamed = netlink["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == 6380)
        .unwrap();
    assert!(
        renamed["name_note"]
            .as_str()
            .unwrap()
            .contains("interpreter"),
        "{renamed}"
    );
    assert!(pids_of("tcp 0.0.0.0 40000 ").contains("public unknown mystery"));
    assert!(pids_of("udp 0.0.0.0 40001 ").contains("public unknown mystery"));
    assert!(pids_of("udp fe80::1 547 ").contains("link-local"));
    // One socket, two processes (parent and forked child): both listed.
    let shared = pids_of("tcp 0.0.0.0 8443 ");
    assert_eq!(shared.matches(',').count(), 1, "{shared}");
    // Not listeners: the established connection's ends and the connected UDP socket.
    assert!(!lines.iter().any(|l| l.contains(" 5300 ")), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" 7000 ")).count(),
        1,
        "{lines:#?}"
    );
    assert_eq!(lines.len(), ss.len());
}

#[test]
fn namespace_default_output_hides_loopback() {
    if !require_root() {
        return;
    }
    let (server, _client, _ssh) = busy_namespace("scan-lo");
    let shown = json_of(&server.autofw(&["scan", "--json"]));
    let lines = summary(&shown);
    assert!(!lines.is_empty());
    assert!(
        !lines.iter().any(|l| l.contains(" loopback ")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("tcp 0.0.0.0 5622 ")));
    let out = server.autofw(&["scan"]);
    let text = text(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), lines.len(), "{text}");
    assert!(rows.iter().all(|row| row[6] != "loopback"), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert!(
        crate::support::text(&out.stderr).contains("loopback-only listeners not shown"),
        "{}",
        crate::support::text(&out.stderr)
    );
}

#[test]
fn namespace_host_facts_see_forwarding_and_bridges() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("scan-host");
    // A new namespace inherits IPv4 forwarding from the host's (unless
    // net.core.devconf_inherit_init_net says otherwise): start from off.
    ns.ok(&[
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=0",
        "net.ipv6.conf.all.forwarding=0",
    ]);
    ns.ok(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 50000"]);
    let before = json_of(&ns.autofw(&["scan", "--json"]));
    assert_eq!(
        before["host"],
        serde_json::json!({"ip_forward": false, "bridges": [], "local_port_range": [40000, 50000]})
    );
    ns.ok(&["ip", "link", "add", "docker0", "type", "bridge"]);
    ns.ok(&["ip", "link", "add", "virbr0", "type", "bridge"]);
    ns.ok(&[
        "ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth8",
    ]);
    ns.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let after = json_of(&ns.autofw(&["scan", "--json"]));
    assert_eq!(
        after["host"],
        serde_json::json!({"ip_forward": true, "bridges": ["docker0", "virbr0"], "local_port_range": [40000, 50000]})
    );
}

/// An IPv4 address added with a label (`ip addr add ... label eth0:1`, as
/// ifupdown's aliases and hosting panels add a second address) is on eth0:
/// its listener's rule matches `iifname "eth0"`, the device its packets
/// arrive on. (getifaddrs(3) names such an address by its label, and a rule
/// for `eth0:1` matches nothing.)
#[test]
fn an_aliased_address_is_on_its_device_not_its_label() {
    if !require_root() {
        return;
    }
    let mut ns = Netns::new("scan-alias");
    ns.ok(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth9",
    ]);
    ns.ok(&["ip", "addr", "add", "10.20.0.1/24", "dev", "eth0"]);
    ns.ok(&[
        "ip",
        "addr",
        "add",
        "10.20.1.1/24",
        "dev",
        "eth0",
        "label",
        "eth0:1",
    ]);
    ns.ok(&["ip", "link", "set", "eth0", "up"]);
    ns.listen(
        Some("aliasd"),
        &["tcp:10.20.0.1:8080", "tcp:10.20.1.1:8081"],
    );
    let scan = json_of(&ns.autofw(&["scan", "--json"]));
    let interface_of = |port: u64| {
        scan["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["port"] == port)
            .map(|l| l["interface"].clone())
            .unwrap_or_else(|| panic!("no listener on {port}: {scan}"))
    };
    assert_eq!(interface_of(8080), "eth0", "{scan}");
    assert_eq!(interface_of(8081), "eth0", "{scan}");
    let proposal = stdout_of(&ns.autofw(&["propose", "--allow", "8080/tcp,8081/tcp"]));
    assert!(
        proposal.contains("iifname \"eth0\" ip daddr 10.20.1.1 tcp dport 8081 accept"),
        "{proposal}"
    );
    assert!(!proposal.contains("eth0:1"), "{proposal}");
}

#[test]
fn namespace_scan_without_root_says_what_it_could_not_see() {
    if !require_root() {
        return;
    }
    let mut server = Netns::new("scan-user");
    let _ssh = Ssh::start(&server);
    // A listener of the unprivileged user itself: its owner stays visible.
    // (/usr/bin/python3: a python3 found through root's PATH may live where
    // nobody cannot read.)
    let script = listen_py().display().to_string();
    let own = server.spawn(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/usr/bin/python3",
        &script,
        "--name",
        "userd",
        "tcp:0.0.0.0:8000",
    ]);
    let ss_ready = || server.ok(&["ss", "-Htln"]).contains(":8000");
    assert!(wait_until(Duration::from_secs(5), ss_ready));
    for source in ["netlink", "proc"] {
        let out = Autofw::new(&["scan", "--all", "--json", "--source", source])
            .inside(&server)
            .through(AS_NOBODY)
            .output();
        let scan = json_of(&out);
        let lines = summary(&scan);
        // root's sshd: seen, but without its owner it is named by port alone.
        assert!(
            lines.contains(&"tcp 0.0.0.0 5622 public unknown  []".to_string()),
            "{source}: {lines:#?}"
        );
        assert!(
            lines.contains(&format!("tcp 0.0.0.0 8000 public unknown userd [{own}]")),
            "{source}: {lines:#?}"
        );
        let userd = scan["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["port"] == 8000)
            .unwrap();
        assert_eq!(
            (&userd["uid"], &userd["user"]),
            (&Value::from(65534), &Value::from("nobody"))
        );
        assert_eq!(userd["owners"][0]["uid"], 65534);
        assert_eq!(scan["as_root"], false);
        assert!(scan["unreadable_processes"].as_u64().unwrap() >= 1);
        // Kernel threads hold nothing to hide: never counted (kthreadd is
        // pid 2 where the machine's /proc shows the host's processes).
        let unread: Vec<&Value> = scan["unreadable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["pid"])
            .collect();
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|comm| comm == "kthreadd\n") {
            assert!(!unread.contains(&&Value::from(2)), "{source}: {unread:?}");
        }
        assert!(
            text(&out.stderr).contains("could not be read"),
            "{}",
            text(&out.stderr)
        );
    }
    // The kernel's task_file iterator needs root: asked for by name, it is
    // a host failure that says so and what to use instead.
    let out = Autofw::new(&["scan", "--owners-from", "bpf"])
        .inside(&server)
        .through(AS_NOBODY)
        .output();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("needs root: CAP_BPF and CAP_PERFMON")
            && said.contains("`--owners-from proc` walks /proc instead"),
        "{said}"
    );
}

/// The kernel's task_file iterator reports the kernel's own pids, so in a
/// pid namespace of its own (a container's) scan walks that namespace's
/// /proc instead; asked for the iterator by name, it says why not. (Fails
/// if the check is fooled by a /proc the namespace mounted itself.)
#[test]
fn in_a_pid_namespace_the_owners_come_from_its_own_proc() {
    if !require_root() {
        return;
    }
    let mut server = Netns::new("scan-pidns");
    // A listener: with none, there are no holders to look for.
    let script = listen_py().display().to_string();
    server.spawn(&["python3", &script, "--name", "webd", "tcp:0.0.0.0:8000"]);
    assert!(wait_until(Duration::from_secs(5), || server
        .ok(&["ss", "-Htln"])
        .contains(":8000")));
    let in_pid_namespace = &["unshare", "--pid", "--fork", "--mount-proc"];
    let out = Autofw::new(&["scan", "--owners-from", "bpf"])
        .inside(&server)
        .through(in_pid_namespace)
        .output();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("a pid namespace of its own"),
        "{}",
        text(&out.stderr)
    );
    let out = Autofw::new(&["scan", "--all", "--json"])
        .inside(&server)
        .through(in_pid_namespace)
        .output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Its /proc shows none of the host's processes: the listener is seen,
    // its holder is not.
    assert!(
        summary(&json_of(&out)).contains(&"tcp 0.0.0.0 8000 public unknown  []".to_string()),
        "{:#?}",
        summary(&json_of(&out))
    );
}

/// Issue 20: a host with no NAT rules starts no process to find that out
/// (nf_tables is asked over netlink, the legacy tables are named in
/// /proc/net), and where there is a nat table, only the readers of its
/// kind run and its DNAT is still found. Every reader is a logging wrapper
/// of the real tool, on a PATH of nothing else.
#[test]
fn scan_runs_the_nat_readers_only_where_a_nat_table_is() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("spawned");
    let readers = [
        "nft",
        "iptables-save",
        "ip6tables-save",
        "iptables-legacy-save",
        "ip6tables-legacy-save",
    ];
    for tool in readers {
        let wrapper = dir.path().join(tool);
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho {tool} >>{}\nexec /usr/sbin/{tool} \"$@\"\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let path = format!("PATH={}", dir.path().display());
    let scan = |ns: &Netns| {
        let _ = std::fs::remove_file(&log);
        let out = Autofw::new(&["scan", "--json"])
            .inside(ns)
            .through(&["env", &path])
            .output();
        let json = json_of(&out);
        let forwarded: Vec<String> = json["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| {
                l["forwarded_to"]
                    .as_str()
                    .map(|to| format!("{} {to}", l["port"]))
            })
            .collect();
        let spawned = std::fs::read_to_string(&log).unwrap_or_default();
        let mut spawned: Vec<String> = spawned.lines().map(str::to_string).collect();
        spawned.sort();
        (spawned, forwarded)
    };

    let plain = Netns::new("nonat");
    // A filter table is not NAT.
    plain.sh_ok(
        "nft 'add table inet f; add chain inet f input { type filter hook input priority 0; }'",
    );
    plain.sh_ok("iptables-nft -A INPUT -p tcp --dport 9 -j DROP");
    assert_eq!(scan(&plain), (vec![], vec![]));

    let v6 = Netns::new("nat6");
    v6.sh_ok("ip6tables-nft -t nat -A PREROUTING -p tcp --dport 7006 -j DNAT --to-destination [2001:db8::6]:76");
    assert_eq!(
        scan(&v6),
        (
            vec!["ip6tables-save".to_string(), "nft".to_string()],
            vec!["7006 [2001:db8::6]:76".to_string()]
        )
    );

    let native = Netns::new("natinet");
    native.sh_ok("nft 'add table inet fw; add chain inet fw pre { type nat hook prerouting priority dstnat; }; add rule inet fw pre tcp dport 7007 dnat ip to 192.0.2.7:77'");
    assert_eq!(
        scan(&native),
        (
            vec!["nft".to_string()],
            vec!["7007 192.0.2.7:77".to_string()]
        )
    );

    let legacy = Netns::new("natlegacy");
    legacy.sh_ok("iptables-legacy -t nat -A PREROUTING -p tcp --dport 7008 -j DNAT --to-destination 192.0.2.8:78");
    let (spawned, forwarded) = scan(&legacy);
    // `iptables-save` may be the legacy one (Debian's alternatives): it runs
    // too. The second iptables-legacy-save is the other-filters note's
    // (legacy tables hold rules: scan says so).
    assert_eq!(
        spawned,
        [
            "iptables-legacy-save",
            "iptables-legacy-save",
            "iptables-save"
        ]
    );
    assert_eq!(forwarded, ["7008 192.0.2.8:78"]);
}

/// Root without `CAP_SYS_PTRACE` (a container's root: Docker drops it)
/// cannot read the descriptors of a process that dropped privileges (the
/// kernel marks it non-dumpable). A real OpenVPN running as nobody is such
/// a process: the scan names it, pid and comm, in its note and its JSON,
/// instead of only counting it (issue 20). Its socket is still listed,
/// with no owner.
#[test]
fn namespace_scan_as_root_names_the_process_it_could_not_read() {
    if !require_root() {
        return;
    }
    let server = Netns::new("scan-unread");
    let openvpn = start_openvpn_server(&server, 1194);
    let pid = openvpn.pid();
    let without_ptrace = ["setpriv", "--bounding-set=-sys_ptrace"];
    let out = Autofw::new(&["scan", "--json"])
        .inside(&server)
        .through(&without_ptrace)
        .output();
    let scan = json_of(&out);
    assert_eq!(scan["as_root"], true);
    let unread = scan["unreadable"].as_array().unwrap();
    assert!(
        unread.contains(&serde_json::json!({"pid": pid, "program": "openvpn"})),
        "{unread:?}"
    );
    let count = scan["unreadable_processes"].as_u64().unwrap();
    assert!(count >= 1 && count as usize >= unread.len(), "{count}");
    let vpn = scan["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == 1194)
        .unwrap();
    assert_eq!(vpn["owners"], serde_json::json!([]), "{vpn:#}");
    // The note names it when it is among the first five (other processes
    // of this machine may be non-dumpable too).
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("could not be read even as root"),
        "{stderr}"
    );
    let position = unread.iter().position(|p| p["pid"] == pid).unwrap();
    if position < 5 {
        assert!(stderr.contains(&format!("{pid} (openvpn)")), "{stderr}");
    }
    // With the capability, the same scan reads it.
    let scan = json_of(&server.autofw(&["scan", "--json"]));
    assert!(
        !scan["unreadable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid),
        "{scan:#}"
    );
}

/// A stderr whose reader is gone (`autofw scan 2>&1 | head`, a log pipe
/// that died) does not kill a scan that printed: the notes are dropped,
/// the table is out, the exit is 0; an error's exit code is still its own.
/// `eprintln!` panicked there, and `panic = "abort"` made that a SIGABRT.
#[test]
fn a_closed_stderr_does_not_abort_a_scan() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(crate::support::autofw_bin())
        .args(["scan", "--fixture", &fixture_arg("seed-host")])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);
    assert!(text(&out.stdout).contains("5622"), "{}", text(&out.stdout));
    // An error, said on that stderr: its exit code, not an abort.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(crate::support::autofw_bin())
        .args(["scan", "--fixture", "/nonexistent"])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
}
