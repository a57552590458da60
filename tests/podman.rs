//! Issue 20's podman host, for real: Debian's rootful podman inside the
//! test's network namespace, with its own root, run root, network config
//! directory and cgroupfs, the image imported from a tarball holding the
//! static busybox (no registry), as tests/docker.rs does with Docker.
//! Containers publish `busybox httpd`: `web` on 8080 and `cache` on 6379
//! (standing in for a redis). Both of podman 4's network stacks are run,
//! one test each ([`Network`]): netavark (its iptables firewall driver, on
//! iptables-nft) and CNI (Debian's containernetworking-plugins: `bridge`,
//! `portmap`'s `CNI-HOSTPORT-DNAT`, `firewall`'s `CNI-FORWARD`). Neither
//! jumps to Docker's `DOCKER-USER`, which is where the iptables backend
//! used to hook its published-ports guard.
//!
//! Every podman command runs through `nsenter` into one holder process
//! started in the namespace, whose private mount namespace has the cgroup
//! hierarchies, a tmpfs on `/run` (where rootful podman bind-mounts its
//! containers' network namespaces, `/run/netns`, and keeps netavark's
//! leases and the OCI runtime's state: the host's own `/run` is never
//! written) and an overlay on `/var/lib` ([`var_lib_overlay`]). The
//! network stacks run in that network namespace, so their iptables rules
//! are the namespace's, never the host's. Containers are removed and every
//! process in the namespace killed by pid, even on failure.

use crate::docker::{busybox_tarball, cgroup_mounts, web_answers};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const IMAGE: &str = "afw/busybox:test";

/// podman 4's two network stacks (`--network-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    Netavark,
    Cni,
}

impl Network {
    fn name(self) -> &'static str {
        match self {
            Network::Netavark => "netavark",
            Network::Cni => "cni",
        }
    }

    /// Whether an `iptables-save` line is this stack's: netavark names its
    /// chains `NETAVARK_*` (and its comments `netavark`), CNI's plugins
    /// `CNI-*` (`CNI-HOSTPORT-DNAT`, `CNI-DN-…`, `CNI-FORWARD`, `CNI-ADMIN`,
    /// one `CNI-…` per container in POSTROUTING).
    fn owns(self, line: &str) -> bool {
        match self {
            Network::Netavark => line.contains("NETAVARK") || line.contains("netavark"),
            Network::Cni => line.contains("CNI-") || line.contains("CNI "),
        }
    }

    /// The chain this stack's published ports are DNATed from.
    fn dnat_chain(self) -> &'static str {
        match self {
            Network::Netavark => "NETAVARK-HOSTPORT-DNAT",
            Network::Cni => "CNI-HOSTPORT-DNAT",
        }
    }
}

/// An overlay on `/var/lib` in the holder's mount namespace, its upper
/// layer a tmpfs under the test's directory. What podman and its network
/// stack keep there with no flag to move it (CNI's `/var/lib/cni`:
/// `host-local`'s leases and libcni's result cache; the image library's
/// `/var/lib/containers/cache` blob cache) is written there, so the host's
/// `/var/lib` is not.
fn var_lib_overlay(dir: &Path) -> String {
    let v = dir.join("varlib");
    std::fs::create_dir(&v).unwrap();
    let v = v.display();
    format!(
        "mount -t tmpfs tmpfs {v}\nmkdir {v}/upper {v}/work\n\
         mount -t overlay overlay -o lowerdir=/var/lib,upperdir={v}/upper,workdir={v}/work /var/lib\n"
    )
}

/// A rootful podman whose every command runs in the holder's namespaces.
struct Podman {
    holder: std::process::Child,
    dir: PathBuf,
    network: Network,
}

impl Podman {
    fn start(ns: &Netns, network: Network) -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("afwpod")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let ready = dir.join("ready");
        let script = format!(
            "set -e\n{}mount -t tmpfs tmpfs /run\nmkdir /run/netns\n{}touch {}\nexec sleep 3600\n",
            cgroup_mounts(),
            var_lib_overlay(&dir),
            ready.display()
        );
        let holder = ns
            .command("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let podman = Podman {
            holder,
            dir,
            network,
        };
        assert!(
            wait_until(Duration::from_secs(10), || ready.exists()),
            "the podman holder did not start"
        );
        // The stack asked for is the one podman runs: a test of CNI that
        // ran netavark would prove nothing.
        assert_eq!(
            podman
                .podman_ok(&["info", "--format", "{{.Host.NetworkBackend}}"])
                .trim(),
            network.name()
        );
        podman
    }

    fn podman(&self, args: &[&str]) -> Output {
        let d = self.dir.display().to_string();
        Command::new("nsenter")
            .args(["-t", &self.holder.id().to_string(), "-m", "-n", "podman"])
            .args([
                "--root",
                &format!("{d}/root"),
                "--runroot",
                &format!("{d}/run"),
            ])
            .args(["--tmpdir", &format!("{d}/tmp")])
            // The image copy's scratch files (`$TMPDIR`, else `/var/tmp`).
            .env("TMPDIR", format!("{d}/tmp"))
            .args(["--network-config-dir", &format!("{d}/net")])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["--storage-driver", "vfs"])
            .args(["--network-backend", self.network.name()])
            .args(args)
            .output()
            .unwrap()
    }

    fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(out.status.success(), "podman {args:?}: {}", show(&out));
        text(&out.stdout)
    }

    /// The busybox image, from a tarball (no registry).
    fn import_busybox(&self) {
        let tar = busybox_tarball(&self.dir);
        self.podman_ok(&["import", tar.to_str().unwrap(), IMAGE]);
    }

    /// `busybox httpd` on 80 in a container named `name`, published on
    /// `port`. The limits are lowered to what the test may set: podman
    /// raises them past the hard limit otherwise, which needs
    /// CAP_SYS_RESOURCE (a container's root may lack it).
    fn run_httpd(&self, name: &str, port: u16) {
        self.podman_ok(&[
            "run",
            "-d",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--name",
            name,
            "-p",
            &format!("{port}:80"),
            IMAGE,
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// podman's rules (its network stack's chains and jumps) in both tables
/// autofw's backends could touch, without counters: what must not change.
fn podman_rules(ns: &Netns, network: Network) -> String {
    let save = ns.sh_ok("iptables-save -t nat; iptables-save -t filter");
    save.lines()
        .filter(|l| network.owns(l))
        .map(|l| format!("{}\n", l.split(" [").next().unwrap_or(l)))
        .collect()
}

/// Packets the iptables backend's guard has dropped: the counter of the
/// last rule of mangle's `AUTOFW-PUBLISHED` (its `-j DROP`), so a drop the
/// test sees is the guard's and not some other rule's or a broken
/// container's.
fn guard_drops(ns: &Netns) -> u64 {
    let list = ns.sh_ok("iptables -w -t mangle -L AUTOFW-PUBLISHED -n -v -x");
    let last = list.lines().last().unwrap_or_default();
    let words: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(
        words.get(2),
        Some(&"DROP"),
        "the guard's last rule:\n{list}"
    );
    words[0].parse().unwrap()
}

/// One backend's story: apply governs the published ports, a container
/// started later is dropped and named by status, podman's rules stay as
/// they are, rollback puts everything back.
fn story(server: &Netns, client: &Netns, podman: &Podman, backend: &str, dir: &std::path::Path) {
    let web = format!("http://{SERVER_V4}:8080/");
    let cache = format!("http://{SERVER_V4}:6379/");
    let state = dir.join(format!("state-{backend}"));
    let state = state.to_str().unwrap();
    let network = podman.network;
    let rules = podman_rules(server, network);
    assert!(
        web_answers(client, &cache),
        "{backend}: the cache answers before"
    );
    apply_confirmed(server, state, &["--backend", backend], &[]);
    assert!(web_answers(client, &web), "{backend}: web answers");
    assert!(
        !web_answers(client, &cache),
        "{backend}: the cache is dropped"
    );
    let iptables = backend == "iptables";
    let dropped = if iptables { guard_drops(server) } else { 0 };
    assert!(
        !iptables || dropped > 0,
        "{backend}: the guard dropped the cache"
    );
    assert_eq!(
        podman_rules(server, network),
        rules,
        "{backend}: podman's rules"
    );
    let status = server.autofw(&["status", "--state-dir", state]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{backend}: {}",
        show(&status)
    );

    // A container published after apply: netavark adds its DNAT and
    // re-runs its FORWARD setup, CNI's portmap adds a `CNI-DN-…` chain and
    // its firewall plugin the container's lines in `CNI-FORWARD`; the
    // guard still drops it.
    podman.run_httpd("late", 9090);
    assert_eq!(
        probe_tcp(client, SERVER_V4, 9090),
        Probe::Dropped,
        "{backend}: a later container"
    );
    assert!(
        !iptables || guard_drops(server) > dropped,
        "{backend}: the guard dropped the later container"
    );
    let status = server.autofw(&["status", "--state-dir", state]);
    assert_eq!(
        status.status.code(),
        Some(1),
        "{backend}: {}",
        show(&status)
    );
    assert!(
        text(&status.stdout).contains("9090"),
        "{backend}: {}",
        show(&status)
    );
    assert!(web_answers(client, &web), "{backend}: web still answers");
    podman.podman_ok(&["rm", "-f", "-t", "0", "late"]);

    let out = server.autofw(&["rollback", "--state-dir", state]);
    assert!(out.status.success(), "{backend}: {}", show(&out));
    assert!(web_answers(client, &cache), "{backend}: rolled back");
    assert_eq!(
        podman_rules(server, network),
        rules,
        "{backend}: podman's rules after"
    );
}

/// The whole host for one network stack: podman publishing `web` and
/// `cache`, scan seeing both forwards, then [`story`] on both backends.
fn published_ports_obey_the_proposal(network: Network) {
    if !require_root() {
        return;
    }
    let (tag, needs, package) = match network {
        Network::Netavark => ("pod", "/usr/lib/podman/netavark", "netavark"),
        Network::Cni => (
            "podcni",
            "/usr/lib/cni/portmap",
            "containernetworking-plugins",
        ),
    };
    assert!(
        Path::new("/usr/bin/podman").exists() && Path::new(needs).exists(),
        "podman or {needs} is not installed (apt-get install podman {package} busybox-static)"
    );
    let server = Netns::new(&format!("{tag}-s"));
    let client = Netns::new(&format!("{tag}-c"));
    link(&server, &client);
    let podman = Podman::start(&server, network);
    podman.import_busybox();
    podman.run_httpd("web", 8080);
    podman.run_httpd("cache", 6379);
    let web = format!("http://{SERVER_V4}:8080/");
    assert!(
        wait_until(Duration::from_secs(10), || web_answers(&client, &web)),
        "web does not answer before apply:\n{}",
        server.sh_ok("iptables-save; ss -tlnp")
    );
    // The stack's own DNAT chain publishes the ports, and nothing jumps to
    // DOCKER-USER.
    let save = server.sh_ok("iptables-save");
    assert!(save.contains(network.dnat_chain()), "{save}");
    assert!(!save.contains("DOCKER-USER"), "{save}");

    // scan: both published ports, forwarded to their containers.
    let scan = json_of(&server.autofw(&["scan", "--json"]));
    let forwarded: Vec<String> = scan["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["forwarded_to"].is_string() && l["address"] == "0.0.0.0")
        .map(|l| format!("{} {}", l["port"], l["service"]))
        .collect();
    assert_eq!(
        forwarded,
        ["6379 \"redis\"", "8080 \"http-alt\""],
        "{scan:#}"
    );

    let dir = tempfile::tempdir().unwrap();
    story(&server, &client, &podman, "nft", dir.path());
    story(&server, &client, &podman, "iptables", dir.path());
    drop(podman);
}

#[test]
fn podman_published_ports_obey_the_proposal_on_both_backends() {
    published_ports_obey_the_proposal(Network::Netavark);
}

/// podman with CNI (`--network-backend cni`): published through `portmap`'s
/// `CNI-HOSTPORT-DNAT`, forwarded by the `firewall` plugin's `CNI-FORWARD`
/// (which accepts only replies and the containers' own traffic, leaving
/// new connections to FORWARD's policy) and by nothing in mangle.
#[test]
fn podman_with_cni_published_ports_obey_the_proposal_on_both_backends() {
    published_ports_obey_the_proposal(Network::Cni);
}
