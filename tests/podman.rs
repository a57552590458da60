//! Issue 20's podman host, for real: Debian's rootful podman with netavark
//! (its iptables firewall driver, on iptables-nft) inside the test's network
//! namespace, with its own root, run root, network config directory and
//! cgroupfs, the image imported from a tarball holding the static busybox
//! (no registry), as tests/docker.rs does with Docker. Containers publish
//! `busybox httpd`: `web` on 8080 and `cache` on 6379 (standing in for a
//! redis). netavark's FORWARD never jumps to Docker's `DOCKER-USER`, which
//! is where the iptables backend used to hook its published-ports guard.
//!
//! Every podman command runs through `nsenter` into one holder process
//! started in the namespace, whose private mount namespace has the cgroup
//! hierarchies and a tmpfs on `/run/netns` (where rootful podman bind-mounts
//! its containers' network namespaces: the host's own `/run/netns` is never
//! written). Containers are removed and every process in the namespace
//! killed by pid, even on failure.

use crate::docker::{busybox_tarball, cgroup_mounts, web_answers};
use crate::support::*;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const IMAGE: &str = "afw/busybox:test";

/// A rootful podman whose every command runs in the holder's namespaces.
struct Podman {
    holder: std::process::Child,
    dir: PathBuf,
}

impl Podman {
    fn start(ns: &Netns) -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("afwpod")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let ready = dir.join("ready");
        let script = format!(
            "set -e\n{}mount -t tmpfs tmpfs /run/netns\ntouch {}\nexec sleep 3600\n",
            cgroup_mounts(),
            ready.display()
        );
        let holder = ns
            .command("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let podman = Podman { holder, dir };
        assert!(
            wait_until(Duration::from_secs(10), || ready.exists()),
            "the podman holder did not start"
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
            .args(["--network-config-dir", &format!("{d}/net")])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["--storage-driver", "vfs", "--network-backend", "netavark"])
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

/// podman's rules (netavark's chains and jumps) in both tables autofw's
/// backends could touch, without counters: what must not change.
fn podman_rules(ns: &Netns) -> String {
    let save = ns.sh_ok("iptables-save -t nat; iptables-save -t filter");
    save.lines()
        .filter(|l| l.contains("NETAVARK") || l.contains("netavark"))
        .map(|l| format!("{}\n", l.split(" [").next().unwrap_or(l)))
        .collect()
}

/// One backend's story: apply governs the published ports, a container
/// started later is dropped and named by status, podman's rules stay as
/// they are, rollback puts everything back.
fn story(server: &Netns, client: &Netns, podman: &Podman, backend: &str, dir: &std::path::Path) {
    let web = format!("http://{SERVER_V4}:8080/");
    let cache = format!("http://{SERVER_V4}:6379/");
    let state = dir.join(format!("state-{backend}"));
    let state = state.to_str().unwrap();
    let rules = podman_rules(server);
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
    assert_eq!(podman_rules(server), rules, "{backend}: podman's rules");
    let status = server.autofw(&["status", "--state-dir", state]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{backend}: {}",
        show(&status)
    );

    // A container published after apply: netavark adds its DNAT and
    // re-runs its FORWARD setup; the guard still drops it.
    podman.run_httpd("late", 9090);
    assert_eq!(
        probe_tcp(client, SERVER_V4, 9090),
        Probe::Dropped,
        "{backend}: a later container"
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
        podman_rules(server),
        rules,
        "{backend}: podman's rules after"
    );
}

#[test]
fn podman_published_ports_obey_the_proposal_on_both_backends() {
    if !require_root() {
        return;
    }
    assert!(
        std::path::Path::new("/usr/lib/podman/netavark").exists(),
        "podman and netavark are not installed (apt-get install podman netavark busybox-static)"
    );
    let server = Netns::new("pod-s");
    let client = Netns::new("pod-c");
    link(&server, &client);
    let podman = Podman::start(&server);
    podman.import_busybox();
    podman.run_httpd("web", 8080);
    podman.run_httpd("cache", 6379);
    let web = format!("http://{SERVER_V4}:8080/");
    assert!(
        wait_until(Duration::from_secs(10), || web_answers(&client, &web)),
        "web does not answer before apply:\n{}",
        server.sh_ok("iptables-save; ss -tlnp")
    );
    // netavark hooks its own chains only: nothing jumps to DOCKER-USER.
    assert!(!server.sh_ok("iptables-save").contains("DOCKER-USER"));

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
