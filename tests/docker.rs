//! Issue 9 with real Docker (Debian's docker.io): dockerd runs inside the
//! test's network namespace, with its own data root, exec root, socket and
//! pid file, and the cgroup hierarchies mounted in the fresh `/sys` that
//! `ip netns exec` gives it. The image is imported from a tarball holding
//! the static busybox (no registry is reachable); two containers publish
//! `busybox httpd`: `web` on 8080 and `redis` on 6379 (standing in for a
//! redis). A client probes from the public link; an "internet" namespace
//! (198.51.100.2) is what the containers reach through Docker's NAT.
//!
//! One test runs the whole story for `userland-proxy` on, then off: one
//! dockerd per setting (the setting is the daemon's), stopped by pid, its
//! containers removed, its directories deleted, even on failure.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const INTERNET_V4: &str = "198.51.100.2";
const DOCKER: &str = "/usr/bin/docker";
const IMAGE: &str = "afw/busybox:test";

/// A dockerd inside a namespace, stopped (containers first) on drop.
struct Dockerd {
    ns: String,
    dir: PathBuf,
    userland_proxy: bool,
    daemon: Option<Child>,
}

/// Mount commands that give a fresh `/sys` the cgroup hierarchies this
/// host has (v1 controllers, the v2 unified tree, or both), so dockerd and
/// runc find them.
pub fn cgroup_mounts() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let mut script = String::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (fstype, point, opts) = (f[2], f[1], f[3]);
        if !point.starts_with("/sys/fs/cgroup") {
            continue;
        }
        match fstype {
            "tmpfs" => script.push_str(&format!("mount -t tmpfs cgroup_root {point}\n")),
            "cgroup2" => script.push_str(&format!(
                "mkdir -p {point}; mount -t cgroup2 none {point}\n"
            )),
            "cgroup" => {
                let keep: Vec<&str> = opts
                    .split(',')
                    .filter(|o| !["rw", "ro", "relatime", "nosuid", "nodev", "noexec"].contains(o))
                    .collect();
                script.push_str(&format!(
                    "mkdir -p {point}; mount -t cgroup -o {} cgroup {point}\n",
                    keep.join(",")
                ));
            }
            _ => {}
        }
    }
    script
}

impl Dockerd {
    fn start(ns: &Netns, userland_proxy: bool) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("afwd")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let mut d = Dockerd {
            ns: ns.name().to_string(),
            dir,
            userland_proxy,
            daemon: None,
        };
        d.run_daemon();
        d
    }

    fn socket(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// Start dockerd and wait until it answers.
    fn run_daemon(&mut self) {
        let d = self.dir.display();
        let script = format!(
            "set -e\n{}exec dockerd --data-root {d}/data --exec-root {d}/exec -H {} \
             --pidfile {d}/docker.pid --storage-driver vfs --userland-proxy={} \
             >>{d}/dockerd.log 2>&1\n",
            cgroup_mounts(),
            self.socket(),
            self.userland_proxy
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let up = wait_until(Duration::from_secs(60), || {
            self.docker(&["version"]).status.success()
        });
        assert!(up, "dockerd did not start:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Stop dockerd by pid (SIGTERM, then SIGKILL after 20 s) and wait for it.
    fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let gone = wait_until(Duration::from_secs(20), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !gone {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(["-H", &self.socket()])
            .args(args)
            .output()
            .unwrap()
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", show(&out));
        text(&out.stdout)
    }

    /// The busybox image, from a tarball (no registry).
    fn import_busybox(&self) {
        let tar = busybox_tarball(&self.dir);
        self.docker_ok(&["import", tar.to_str().unwrap(), IMAGE]);
    }

    /// `busybox httpd` in a container named `name`, publishing `publish`.
    fn run_httpd(&self, name: &str, publish: &str, port: u16) {
        self.docker_ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "--name",
            name,
            "-p",
            publish,
            IMAGE,
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            &port.to_string(),
            "-h",
            "/www",
        ]);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in text(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.stop_daemon();
        // The daemon's mounts lived in its own mount namespace, gone with it;
        // what is left is plain files.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A busybox root filesystem (`sh`, and `/www/index.html` saying `hello
/// from web`) as a tarball under `dir`: the image both engines import (no
/// registry).
pub fn busybox_tarball(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(root.join("www/index.html"), "hello from web\n").unwrap();
    let tar = dir.join("busybox.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    );
    tar
}

/// Does an HTTP GET from `client` get `hello from web`?
pub fn web_answers(client: &Netns, url: &str) -> bool {
    let out = client.run(&[
        "python3",
        "-c",
        &format!("import urllib.request; print(urllib.request.urlopen('{url}', timeout=3).read().decode())"),
    ]);
    text(&out.stdout).contains("hello from web")
}

/// What container `name` gets for `GET /` from `addr`:`port` (with `busybox
/// nc`: the static busybox's `wget` crashes resolving in an image without
/// NSS libraries).
fn fetch_from(docker: &Dockerd, name: &str, addr: &str, port: u16) -> String {
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | {DOCKER} -H {} exec -i {name} \
                 /bin/busybox nc -w 3 {addr} {port}",
                docker.socket()
            ),
        ])
        .output()
        .unwrap();
    text(&out.stdout)
}

/// Can container `name` fetch a page from the "internet" namespace?
fn reaches_internet(docker: &Dockerd, name: &str) -> bool {
    fetch_from(docker, name, INTERNET_V4, 9000).contains("the internet")
}

/// Docker's own tables, as nft lists them without counters.
fn docker_tables(ns: &Netns) -> String {
    let mut out = String::new();
    for table in ["nat", "filter"] {
        out.push_str(&ns.ok(&["nft", "-s", "list", "table", "ip", table]));
    }
    out
}

fn with_docker_host(ns: &Netns, docker: &Dockerd, args: &[&str]) -> Output {
    ns.command(autofw_bin())
        .args(args)
        .env("DOCKER_HOST", docker.socket())
        .output()
        .unwrap()
}

fn story(userland_proxy: bool) {
    let tag = if userland_proxy { "dkp" } else { "dkn" };
    let server = Netns::new(&format!("{tag}-s"));
    let client = Netns::new(&format!("{tag}-c"));
    let mut internet = Netns::new(&format!("{tag}-i"));
    link(&server, &client);
    veth(&server, "eth1", &internet, "eth0");
    server.bring_up("eth1", &["198.51.100.1/24"]);
    internet.bring_up("eth0", &[&format!("{INTERNET_V4}/24")]);
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "the internet\n").unwrap();
    // `exec`: the pid the namespace kills is python's; its request log is
    // kept out of the test output.
    internet.spawn(&[
        "sh",
        "-c",
        &format!(
            "exec python3 -m http.server 9000 --bind {INTERNET_V4} --directory {} >/dev/null 2>&1",
            www.path().display()
        ),
    ]);

    let mut docker = Dockerd::start(&server, userland_proxy);
    docker.import_busybox();
    docker.run_httpd("web", "8080:80", 80);
    docker.run_httpd("redis", "6379:6379", 6379);
    let web_url = format!("http://{SERVER_V4}:8080/");
    let redis_url = format!("http://{SERVER_V4}:6379/");
    assert!(
        wait_until(Duration::from_secs(10), || web_answers(&client, &web_url)),
        "web does not answer before apply"
    );
    assert!(
        web_answers(&client, &redis_url),
        "the redis answers: issue 9's problem"
    );
    assert!(
        wait_until(Duration::from_secs(10), || reaches_internet(&docker, "web")),
        "a container cannot reach the internet before apply:\n{}",
        server.sh_ok("ip route; iptables-save")
    );
    let tables = docker_tables(&server);

    // scan: both published ports, forwarded to their containers, named.
    let out = with_docker_host(&server, &docker, &["scan", "--json"]);
    let scan = json_of(&out);
    let forwarded: Vec<String> = forwarded_listeners(&scan)
        .into_iter()
        .map(|l| {
            format!(
                "{} {} {} {}",
                l["port"], l["service"], l["container"], l["process"]
            )
        })
        .collect();
    // Without the userland proxy, dockerd itself holds the published port
    // (it reserves it; nothing is ever accepted there): one entry either way.
    let proxy = if userland_proxy {
        "\"docker-proxy\""
    } else {
        "\"dockerd\""
    };
    assert_eq!(
        forwarded,
        [
            format!("6379 \"redis\" \"redis\" {proxy}"),
            format!("8080 \"http-alt\" \"web\" {proxy}")
        ],
        "{}",
        text(&out.stdout)
    );

    // apply: web answers, redis does not, containers reach the internet,
    // Docker's tables are untouched.
    let state = docker.dir.join("state");
    let state = state.to_str().unwrap();
    let root = docker.dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.to_str().unwrap();
    let env = [("DOCKER_HOST", docker.socket())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    apply_confirmed(&server, state, &["--persist", "--root", root], &env);
    assert!(
        web_answers(&client, &web_url),
        "web must answer after apply"
    );
    assert!(
        !web_answers(&client, &redis_url),
        "redis must be dropped after apply"
    );
    assert_eq!(
        probe_tcp(&client, SERVER_V6, 6379),
        Probe::Dropped,
        "IPv6 too"
    );
    assert!(
        reaches_internet(&docker, "web"),
        "containers reach the internet"
    );
    assert!(reaches_internet(&docker, "redis"));
    assert_eq!(
        docker_tables(&server),
        tables,
        "Docker's tables after apply"
    );
    let status = with_docker_host(&server, &docker, &["status", "--state-dir", state]);
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));

    // A container published after apply stays closed; status names it.
    docker.run_httpd("cache2", "6380:80", 80);
    assert_eq!(probe_tcp(&client, SERVER_V4, 6380), Probe::Dropped);
    let status = with_docker_host(&server, &docker, &["status", "--state-dir", state]);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    assert!(
        text(&status.stdout).contains("container cache2"),
        "{}",
        show(&status)
    );
    docker.docker_ok(&["rm", "-f", "cache2"]);

    // dockerd restarts (and rewrites its rules): autofw's rules stay in force.
    docker.stop_daemon();
    docker.run_daemon();
    assert!(
        wait_until(Duration::from_secs(20), || web_answers(&client, &web_url)),
        "web after dockerd restart:\n{}",
        docker.log()
    );
    assert!(
        !web_answers(&client, &redis_url),
        "redis after dockerd restart"
    );

    // Docker may have handed the containers new addresses: its tables now.
    let tables = docker_tables(&server);

    // The boot: autofw's table gone, `autofw restore` puts it back.
    server.ok(&["nft", "delete", "table", "inet", "autofw"]);
    assert!(web_answers(&client, &redis_url));
    let out = server.autofw(&["restore", "--root", root]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!web_answers(&client, &redis_url), "redis after restore");
    assert!(web_answers(&client, &web_url));
    assert_eq!(
        docker_tables(&server),
        tables,
        "Docker's tables after restore"
    );

    // --allow redis opens it; rollback closes it again, exactly.
    apply_confirmed(&server, state, &["--allow", "redis"], &env);
    assert!(web_answers(&client, &redis_url), "--allow redis opens it");
    let out = server.autofw(&["rollback", "--state-dir", state]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !web_answers(&client, &redis_url),
        "rolled back to redis closed"
    );
    assert!(web_answers(&client, &web_url));
    assert!(reaches_internet(&docker, "web"));
    assert_eq!(
        docker_tables(&server),
        tables,
        "Docker's tables after rollback"
    );

    if !userland_proxy {
        iptables_backend(&server, &client, &docker, &env);
    }
    drop(docker);
}

/// `iptables-save` without counters.
fn iptables_save(ns: &Netns) -> String {
    let save = ns.ok(&["iptables-save"]);
    save.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.find(" [") {
            Some(i) if l.starts_with(':') => format!("{}\n", &l[..i]),
            _ => format!("{l}\n"),
        })
        .collect()
}

/// The same story on the iptables backend: Docker's chains are not changed
/// at all (the guard hooks into mangle's FORWARD, which runs before them),
/// and everything is undone exactly.
fn iptables_backend(server: &Netns, client: &Netns, docker: &Dockerd, env: &[(&str, &str)]) {
    server.ok(&["nft", "delete", "table", "inet", "autofw"]);
    let state = docker.dir.join("state-iptables");
    let state = state.to_str().unwrap();
    let before = iptables_save(server);
    apply_confirmed(server, state, &["--backend", "iptables"], env);
    let web_url = format!("http://{SERVER_V4}:8080/");
    let redis_url = format!("http://{SERVER_V4}:6379/");
    assert!(web_answers(client, &web_url), "iptables: web answers");
    assert!(!web_answers(client, &redis_url), "iptables: redis dropped");
    assert!(
        reaches_internet(docker, "web"),
        "iptables: containers reach the internet"
    );
    let after = iptables_save(server);
    // What changed in Docker's chains: nothing.
    let docker_lines = |save: &str| -> Vec<String> {
        save.lines()
            .filter(|l| l.contains("DOCKER"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(docker_lines(&after), docker_lines(&before), "{after}");
    let mangle = server.ok(&["iptables-save", "-t", "mangle"]);
    assert!(
        mangle.contains("-A FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED\n"),
        "{mangle}"
    );
    let status = server
        .command(autofw_bin())
        .args(["status", "--state-dir", state])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));
    let out = server.autofw(&["rollback", "--state-dir", state]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(iptables_save(server), before, "iptables after rollback");
    assert!(web_answers(client, &redis_url));
}

#[test]
fn docker_published_ports_obey_the_proposal() {
    if !require_root() {
        return;
    }
    assert!(
        Path::new(DOCKER).exists(),
        "docker.io is not installed (apt-get install docker.io busybox-static)"
    );
    story(true);
    story(false);
}
