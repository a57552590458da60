//! Service names: which well-known service a listener is, by program first
//! and port second (sshd on 5622 is `ssh`; named on 953 is `rndc`), and which
//! ports a name like `https` means for `--allow`. Pure: the host's
//! `/etc/services` text is passed in.

use crate::model::{Exposure, Proto};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The names autofw itself relies on, with their ports. Used where the host
/// has no `/etc/services`, and always for the names below (so a host whose
/// file lacks them still names them). (name, tcp ports, udp ports)
const BUILTIN: &[(&str, &[u16], &[u16])] = &[
    ("ftp", &[21], &[]),
    ("ssh", &[22], &[]),
    ("telnet", &[23], &[]),
    ("smtp", &[25], &[]),
    ("dns", &[53], &[53]),
    ("dhcp", &[], &[67]),
    ("tftp", &[], &[69]),
    ("http", &[80], &[]),
    ("pop3", &[110], &[]),
    ("sunrpc", &[111], &[111]),
    ("ntp", &[], &[123]),
    ("netbios-ns", &[], &[137]),
    ("netbios-dgm", &[], &[138]),
    ("netbios-ssn", &[139], &[]),
    ("imap", &[143], &[]),
    ("snmp", &[], &[161]),
    ("ldap", &[389], &[]),
    ("https", &[443], &[443]),
    ("smb", &[445], &[]),
    ("smtps", &[465], &[]),
    ("syslog", &[], &[514]),
    ("submission", &[587], &[]),
    ("ipp", &[631], &[631]),
    ("ldaps", &[636], &[]),
    ("rndc", &[953], &[]),
    ("imaps", &[993], &[]),
    ("pop3s", &[995], &[]),
    ("openvpn", &[1194], &[1194]),
    ("vxlan", &[], &[4789, 8472]),
    ("geneve", &[], &[6081]),
    ("ssdp", &[], &[1900]),
    ("mssql", &[1433], &[]),
    ("nfs", &[2049], &[2049]),
    ("docker", &[2375, 2376], &[]),
    ("etcd", &[2379, 2380], &[]),
    ("mysql", &[3306], &[]),
    ("rdp", &[3389], &[]),
    ("ws-discovery", &[], &[3702]),
    ("sieve", &[4190], &[]),
    ("mdns", &[], &[5353]),
    ("llmnr", &[5355], &[5355]),
    ("postgresql", &[5432], &[]),
    ("couchdb", &[5984], &[]),
    ("vnc", &[5900], &[]),
    ("amqp", &[5672], &[]),
    (
        "x11",
        &[6000, 6001, 6002, 6003, 6004, 6005, 6006, 6007],
        &[],
    ),
    ("redis", &[6379], &[]),
    ("http-alt", &[8080], &[]),
    ("https-alt", &[8443], &[]),
    ("elasticsearch", &[9200, 9300], &[]),
    ("kubelet", &[10250], &[]),
    ("memcached", &[11211], &[11211]),
    ("mountd", &[20048], &[20048]),
    ("mongodb", &[27017], &[]),
    ("wireguard", &[], &[51820]),
];

/// Programs (as the kernel names them in /proc/PID/comm) and the services
/// they serve. The first is the default; the others win when the port is
/// theirs (dovecot on 993 is `imaps`, named on 953 is `rndc`).
const PROGRAMS: &[(&str, &[&str])] = &[
    ("sshd", &["ssh"]),
    ("dropbear", &["ssh"]),
    ("nginx", &["http", "https"]),
    ("apache2", &["http", "https"]),
    ("httpd", &["http", "https"]),
    ("lighttpd", &["http", "https"]),
    ("caddy", &["http", "https"]),
    ("haproxy", &["http", "https"]),
    ("traefik", &["http", "https"]),
    ("named", &["dns", "rndc"]),
    ("unbound", &["dns"]),
    ("dnsmasq", &["dns", "dhcp", "tftp"]),
    ("pdns_server", &["dns"]),
    ("systemd-resolve", &["dns"]),
    ("coredns", &["dns"]),
    ("vsftpd", &["ftp"]),
    ("proftpd", &["ftp"]),
    ("pure-ftpd", &["ftp"]),
    ("sendmail", &["smtp", "submission", "smtps"]),
    ("master", &["smtp", "submission", "smtps"]), // postfix
    ("exim4", &["smtp", "submission", "smtps"]),
    ("exim", &["smtp", "submission", "smtps"]),
    (
        "dovecot",
        &["imap", "imaps", "pop3", "pop3s", "sieve", "submission"],
    ),
    ("mysqld", &["mysql"]),
    ("mariadbd", &["mysql"]),
    ("postgres", &["postgresql"]),
    ("redis-server", &["redis"]),
    ("memcached", &["memcached"]),
    ("mongod", &["mongodb"]),
    ("dockerd", &["docker"]),
    ("etcd", &["etcd"]),
    ("slapd", &["ldap", "ldaps"]),
    ("ntpd", &["ntp"]),
    ("chronyd", &["ntp"]),
    ("openvpn", &["openvpn"]),
    ("beam.smp", &["amqp"]),
    ("couchdb", &["couchdb"]),
    ("rpcbind", &["sunrpc"]),
    ("portmap", &["sunrpc"]),
    ("rpc.mountd", &["mountd"]),
    ("rpc.statd", &["statd"]),
    ("smbd", &["smb", "netbios-ssn"]),
    ("nmbd", &["netbios-ns", "netbios-dgm"]),
    ("cupsd", &["ipp"]),
    ("cups-browsed", &["ipp"]),
    ("Xorg", &["x11"]),
    ("Xvnc", &["vnc", "x11"]),
    ("avahi-daemon", &["mdns"]),
    ("minissdpd", &["ssdp"]),
    ("kubelet", &["kubelet"]),
    ("wsdd", &["ws-discovery"]),
];

/// Services that should almost never face the internet: databases, caches,
/// admin and control channels, and the LAN and RPC services that internet
/// scanning projects and hardening benchmarks list as never-internet
/// (sources in docs/risky-services.md). Listening beyond loopback, they are
/// flagged.
const RISKY: &[&str] = &[
    "sunrpc",
    "netbios-ns",
    "netbios-dgm",
    "netbios-ssn",
    "smb",
    "ipp",
    "x11",
    "mountd",
    "statd",
    "nlockmgr",
    "llmnr",
    "mdns",
    "ssdp",
    "ws-discovery",
    "kubelet",
    "vxlan",
    "geneve",
    "mysql",
    "postgresql",
    "redis",
    "memcached",
    "mongodb",
    "elasticsearch",
    "couchdb",
    "mssql",
    "rndc",
    "docker",
    "etcd",
    "amqp",
    "vnc",
    "telnet",
    "snmp",
    "nfs",
    "cassandra",
    "zookeeper",
    "influxdb",
    "kibana",
];

/// The programs that hold a rootless container engine's published ports
/// on the host, as the user who runs it: podman's `rootlessport` and
/// rootless Docker's `rootlesskit`. Their sockets are ordinary host sockets
/// (packets cross INPUT), unlike `docker-proxy`'s, which stand for a DNAT.
pub(crate) const ROOTLESS_PROXIES: &[&str] = &["rootlessport", "rootlesskit"];

/// The name of a port a user's rootless container publishes: it says what
/// the port is, where its number (8081, `tproxy`) would mislead.
pub(crate) const ROOTLESS_CONTAINER: &str = "rootless-container";

/// Is this service one that should not face the network (see [`RISKY`])?
pub(crate) fn is_risky(service: &str) -> bool {
    RISKY.contains(&service)
}

/// Is a listener of `service` at `exposure` flagged risky: a risky service
/// that more than this host can reach (loopback-only is never risky).
pub(crate) fn is_risky_listener(service: &str, exposure: Exposure) -> bool {
    exposure != Exposure::Loopback && is_risky(service)
}

/// Port ↔ name lookups: the host's `/etc/services` under the built-in table.
///
/// Built for the one lookup every scan makes, name by port: the built-in
/// table sorted, and the file searched for the few ports it lacks (only the
/// lines holding `PORT/` are parsed). Lookups by name (`--allow https`,
/// "did you mean") build their map on first use. `/etc/services` has some
/// 600 lines: parsing them all for a scan's dozen ports was 3% of a small
/// host's scan, building both maps up front a tenth (docs/scan.md). The
/// host's file is read only when a lookup needs it: a scan whose programs
/// and ports the built-in table names reads none of it.
#[derive(Debug, Clone)]
pub struct ServiceTable {
    /// (proto, port) → built-in name, sorted, each key once.
    builtin: Vec<((Proto, u16), &'static str)>,
    /// The `/etc/services` text, if any: given when the table is made, or
    /// got from `read_file` on first need.
    file: OnceLock<Option<String>>,
    /// Reads the file (the host's reader, from `scan::host`); not called
    /// when the text was given.
    read_file: fn() -> Option<String>,
    by_name: OnceLock<HashMap<String, Vec<(Proto, u16)>>>,
}

impl ServiceTable {
    /// Only the built-in table (a host with no `/etc/services`).
    pub fn builtin() -> Self {
        Self::with_file(OnceLock::from(None), || None)
    }

    /// The built-in table, plus every entry of an `/etc/services` text that
    /// it does not already name (the built-in names stay canonical: the file
    /// says `domain` where operators say `dns`). Lines that do not parse are
    /// skipped: the file is the host's, not the operator's input.
    pub fn with_etc_services(text: &str) -> Self {
        Self::with_file(OnceLock::from(Some(text.to_string())), || None)
    }

    /// The same, with the `/etc/services` text got from `read_file` the
    /// first time a lookup needs it (`None`: only the built-in table).
    pub fn with_etc_services_from(read_file: fn() -> Option<String>) -> Self {
        Self::with_file(OnceLock::new(), read_file)
    }

    fn with_file(file: OnceLock<Option<String>>, read_file: fn() -> Option<String>) -> Self {
        let mut builtin: Vec<((Proto, u16), &'static str)> = Vec::new();
        for &(name, tcp, udp) in BUILTIN {
            builtin.extend(tcp.iter().map(|&port| ((Proto::Tcp, port), name)));
            builtin.extend(udp.iter().map(|&port| ((Proto::Udp, port), name)));
        }
        // Stable: for a key given more than once, the first stays.
        builtin.sort_by_key(|&(key, _)| key);
        builtin.dedup_by_key(|&mut (key, _)| key);
        ServiceTable {
            builtin,
            file,
            read_file,
            by_name: OnceLock::new(),
        }
    }

    /// The `/etc/services` text, read now if it has not been.
    fn file(&self) -> Option<&str> {
        self.file.get_or_init(self.read_file).as_deref()
    }

    /// Name → ports: the built-in names, then every name and alias of the
    /// file (each list sorted when there is a file).
    fn by_name(&self) -> &HashMap<String, Vec<(Proto, u16)>> {
        self.by_name.get_or_init(|| {
            let mut by_name: HashMap<String, Vec<(Proto, u16)>> = HashMap::new();
            for &(name, tcp, udp) in BUILTIN {
                let ports = by_name.entry(name.to_string()).or_default();
                for key in tcp
                    .iter()
                    .map(|&port| (Proto::Tcp, port))
                    .chain(udp.iter().map(|&port| (Proto::Udp, port)))
                {
                    if !ports.contains(&key) {
                        ports.push(key);
                    }
                }
            }
            let Some(text) = self.file() else {
                return by_name;
            };
            for entry in entries(text) {
                let key = (entry.proto, entry.port);
                // The file's own name and aliases (`domain`, `www`) find the port too.
                for alias in entry.aliases.split_whitespace() {
                    by_name.entry(alias.to_string()).or_default().push(key);
                }
                by_name.entry(entry.name.to_string()).or_default().push(key);
            }
            for ports in by_name.values_mut() {
                ports.sort();
                ports.dedup();
            }
            by_name
        })
    }

    /// The name of the service on `proto`/`port`, by port alone: the
    /// built-in name, else the file's first line for it.
    pub fn name_of_port(&self, proto: Proto, port: u16) -> Option<&str> {
        match self
            .builtin
            .binary_search_by_key(&(proto, port), |&(key, _)| key)
        {
            Ok(at) => Some(self.builtin[at].1),
            Err(_) => file_name_of(self.file()?, proto, port),
        }
    }

    /// Every name the table knows (built-in and `/etc/services`), for
    /// "did you mean" hints.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name().keys().map(String::as_str)
    }

    /// The ports a service name means (`https` → 443/tcp, 443/udp).
    pub fn ports_of(&self, name: &str) -> Option<&[(Proto, u16)]> {
        self.by_name().get(name).map(Vec::as_slice)
    }

    /// Name a listener: by its programs first, by port second, else `unknown`.
    /// A program that serves several services (dovecot: imap, imaps, pop3, ...)
    /// is named by the port when the port is one of them, else by its default.
    /// The port is looked up only where it decides: a program that serves
    /// one service names it whatever the port (sshd on 5622 is ssh).
    pub fn name_listener(&self, proto: Proto, port: u16, programs: &[&str]) -> String {
        for program in programs {
            if let Some(served) = served_by(program) {
                if served.len() > 1
                    && let Some(name) = self
                        .name_of_port(proto, port)
                        .filter(|name| served.contains(name))
                {
                    return name.to_string();
                }
                return served[0].to_string();
            }
        }
        self.name_of_port(proto, port)
            .unwrap_or("unknown")
            .to_string()
    }
}

impl ServiceTable {
    /// Name a listener after the systemd socket unit that holds it (its
    /// name without `.socket`): a service name (`ssh`) or a program
    /// (`rpcbind` → sunrpc) says what it is; otherwise the port does.
    pub fn name_of_unit(&self, proto: Proto, port: u16, stem: &str) -> String {
        if self.ports_of(stem).is_some() {
            return stem.to_string();
        }
        self.name_listener(proto, port, &[stem])
    }
}

/// One line of `/etc/services`: `NAME PORT/PROTO [ALIAS...] [# comment]`.
struct Entry<'a> {
    name: &'a str,
    port: u16,
    proto: Proto,
    /// The rest of the line: the aliases, whitespace-separated.
    aliases: &'a str,
}

/// The lines of an `/etc/services` text that parse, in order.
fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().filter_map(entry_of)
}

/// One line, if it parses.
fn entry_of(line: &str) -> Option<Entry<'_>> {
    let line = line.split('#').next().unwrap_or("");
    let mut fields = line.split_whitespace();
    let name = fields.next()?;
    let (port, proto) = fields.next()?.split_once('/')?;
    let port = port.parse::<u16>().ok()?;
    let proto = Proto::from_name(proto)?;
    let aliases = fields.next().map_or("", |first| {
        let at = first.as_ptr() as usize - line.as_ptr() as usize;
        &line[at..]
    });
    Some(Entry {
        name,
        port,
        proto,
        aliases,
    })
}

/// The name the first line of `text` for `proto`/`port` gives, parsing only
/// the lines where `PORT/` occurs (a scan asks for a dozen ports of a file
/// of some 600 lines).
fn file_name_of(text: &str, proto: Proto, port: u16) -> Option<&str> {
    lines_holding(text, &format!("{port}/")).find_map(|line| {
        let entry = entry_of(line)?;
        (entry.port == port && entry.proto == proto).then_some(entry.name)
    })
}

/// The lines of `text` that hold `needle`, in order (a line holding it
/// twice, twice): for the host files a scan needs a line or two of
/// (`/etc/services`, `login.defs`). memchr's `memmem` finds them (SIMD;
/// std's `str` search took 1.9% of a small host's scan for the few ports
/// no line of `/etc/services` names, each a search of the whole file).
pub(crate) fn lines_holding<'t>(text: &'t str, needle: &str) -> impl Iterator<Item = &'t str> {
    let bytes = text.as_bytes();
    memchr::memmem::find_iter(bytes, needle.as_bytes()).filter_map(move |at| {
        let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |newline| newline + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(text.len(), |newline| at + newline);
        text.get(start..end)
    })
}

/// The services a program serves, most usual first.
fn served_by(program: &str) -> Option<&'static [&'static str]> {
    // comm is cut at 15 bytes, and some daemons rename themselves
    // ("sendmail: MTA: accepting", "nginx: worker process"): match the head.
    let head = program.split([':', ' ']).next().unwrap_or(program);
    PROGRAMS
        .iter()
        .find(|(name, _)| *name == head)
        .map(|(_, served)| *served)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_beats_port() {
        let t = ServiceTable::builtin();
        assert_eq!(t.name_listener(Proto::Tcp, 5622, &["sshd"]), "ssh");
        assert_eq!(t.name_listener(Proto::Tcp, 8080, &["nginx"]), "http");
        assert_eq!(t.name_listener(Proto::Tcp, 443, &["apache2"]), "https");
        assert_eq!(t.name_listener(Proto::Udp, 53, &["named"]), "dns");
        assert_eq!(t.name_listener(Proto::Tcp, 953, &["named"]), "rndc");
        assert_eq!(t.name_listener(Proto::Tcp, 995, &["dovecot"]), "pop3s");
        assert_eq!(
            t.name_listener(Proto::Tcp, 587, &["sendmail: MTA: accepting"]),
            "submission"
        );
    }

    #[test]
    fn port_when_program_unknown_and_unknown_when_neither() {
        let t = ServiceTable::builtin();
        assert_eq!(t.name_listener(Proto::Tcp, 3306, &["weird"]), "mysql");
        assert_eq!(t.name_listener(Proto::Tcp, 3306, &[]), "mysql");
        assert_eq!(t.name_listener(Proto::Tcp, 40000, &["weird"]), "unknown");
        assert_eq!(t.name_listener(Proto::Udp, 3306, &[]), "unknown");
    }

    #[test]
    fn etc_services_adds_names_without_renaming_builtin_ones() {
        let text = "domain 53/tcp # DNS\ndomain 53/udp\nhttp 80/tcp www\nsane-port 6566/tcp sane saned\nbad line\nx 99999/tcp\n";
        let t = ServiceTable::with_etc_services(text);
        assert_eq!(t.name_of_port(Proto::Udp, 53), Some("dns"));
        assert_eq!(t.name_of_port(Proto::Tcp, 6566), Some("sane-port"));
        assert_eq!(t.ports_of("www"), Some(&[(Proto::Tcp, 80)][..]));
        assert_eq!(
            t.ports_of("domain"),
            Some(&[(Proto::Tcp, 53), (Proto::Udp, 53)][..])
        );
        assert_eq!(
            t.ports_of("https"),
            Some(&[(Proto::Tcp, 443), (Proto::Udp, 443)][..])
        );
    }

    /// A port the built-in table lacks is found in the file by searching for
    /// `PORT/`: only a line that parses to that port and protocol counts
    /// (not a longer port ending in it, not a comment), and the first such
    /// line wins, as it would in a table of the whole file.
    #[test]
    fn the_file_names_a_port_by_its_first_line_for_it() {
        let text = "# 8081/tcp in a comment\r\nzeta 18081/tcp\nweird 8081/ddp\n\
                    first 8081/tcp alias\nsecond 8081/tcp\nfirst-udp 8081/udp # 8081/tcp\nlast 65535/tcp";
        let t = ServiceTable::with_etc_services(text);
        assert_eq!(t.name_of_port(Proto::Tcp, 8081), Some("first"));
        assert_eq!(t.name_of_port(Proto::Udp, 8081), Some("first-udp"));
        assert_eq!(t.name_of_port(Proto::Tcp, 18081), Some("zeta"));
        assert_eq!(t.name_of_port(Proto::Tcp, 65535), Some("last"));
        assert_eq!(t.name_of_port(Proto::Tcp, 1081), None);
        assert_eq!(t.name_of_port(Proto::Udp, 18081), None);
        // The same names as the lookups by name see.
        assert_eq!(t.ports_of("first"), Some(&[(Proto::Tcp, 8081)][..]));
        assert_eq!(t.ports_of("alias"), Some(&[(Proto::Tcp, 8081)][..]));
    }

    #[test]
    fn lines_holding_a_word() {
        let text = "a 53/udp\nb 953/tcp 53/tcp\n\nc 8053/tcp";
        assert_eq!(
            lines_holding(text, "53/").collect::<Vec<_>>(),
            [
                "a 53/udp",
                "b 953/tcp 53/tcp",
                "b 953/tcp 53/tcp",
                "c 8053/tcp"
            ]
        );
        assert_eq!(lines_holding(text, "x").count(), 0);
        assert_eq!(lines_holding("", "x").count(), 0);
    }

    /// The search agrees with a table of the whole file (the built-in name,
    /// else the file's first line for the key) on every key of Debian 12's
    /// `/etc/services` (netbase 6.4, kept as a fixture: the test never
    /// depends on the machine having one).
    #[test]
    fn searching_the_file_agrees_with_a_table_of_it() {
        let text = include_str!("../fixtures/services/debian-12");
        let t = ServiceTable::with_etc_services(text);
        let mut whole: Vec<((Proto, u16), &str)> = t.builtin.clone();
        whole.extend(entries(text).map(|e| ((e.proto, e.port), e.name)));
        whole.sort_by_key(|&(key, _)| key);
        whole.dedup_by_key(|&mut (key, _)| key);
        assert!(whole.len() > t.builtin.len() + 100, "{}", whole.len());
        for ((proto, port), name) in whole {
            assert_eq!(t.name_of_port(proto, port), Some(name), "{port}/{proto:?}");
        }
    }

    /// The host's file is read the first time a lookup needs it, once, and
    /// not at all for ports and programs the built-in table names.
    #[test]
    fn the_file_is_read_only_when_a_lookup_needs_it() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static READS: AtomicUsize = AtomicUsize::new(0);
        let t = ServiceTable::with_etc_services_from(|| {
            READS.fetch_add(1, Ordering::SeqCst);
            Some("rndc 953/tcp\nfoo 8123/tcp\n".to_string())
        });
        assert_eq!(t.name_of_port(Proto::Tcp, 443), Some("https"));
        // A program that serves one service names it whatever the port.
        assert_eq!(t.name_listener(Proto::Tcp, 5622, &["sshd"]), "ssh");
        assert_eq!(READS.load(Ordering::SeqCst), 0);
        assert_eq!(t.name_listener(Proto::Tcp, 8123, &["python3"]), "foo");
        assert_eq!(t.name_of_port(Proto::Udp, 8123), None);
        assert_eq!(READS.load(Ordering::SeqCst), 1);
        // No file: the built-in table alone.
        let none = ServiceTable::with_etc_services_from(|| None);
        assert_eq!(none.name_listener(Proto::Tcp, 8123, &[]), "unknown");
        assert_eq!(none.name_of_port(Proto::Tcp, 22), Some("ssh"));
    }

    #[test]
    fn risky_services() {
        assert!(is_risky("mysql") && is_risky("redis") && is_risky("rndc"));
        assert!(!is_risky("ssh") && !is_risky("http"));
        assert!(is_risky_listener("redis", Exposure::Private));
        assert!(!is_risky_listener("redis", Exposure::Loopback));
        assert!(!is_risky_listener("ssh", Exposure::Public));
        // Never-internet services are risky by port alone too, so a scan
        // without owners still flags them.
        let t = ServiceTable::builtin();
        for (proto, port, name) in [
            (Proto::Tcp, 111, "sunrpc"),
            (Proto::Udp, 111, "sunrpc"),
            (Proto::Udp, 137, "netbios-ns"),
            (Proto::Tcp, 139, "netbios-ssn"),
            (Proto::Tcp, 445, "smb"),
            (Proto::Tcp, 631, "ipp"),
            (Proto::Tcp, 6001, "x11"),
            (Proto::Udp, 1900, "ssdp"),
            (Proto::Udp, 5355, "llmnr"),
            (Proto::Tcp, 10250, "kubelet"),
            (Proto::Udp, 20048, "mountd"),
        ] {
            let named = t.name_listener(proto, port, &[]);
            assert_eq!(named, name, "{proto}/{port}");
            assert!(is_risky(&named), "{named}");
        }
        assert_eq!(t.name_listener(Proto::Tcp, 40123, &["rpc.statd"]), "statd");
        assert!(is_risky("statd"));
    }
}
