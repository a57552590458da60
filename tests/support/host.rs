//! The test host that apply, persist and the acceptance tests share: a
//! server namespace with real listeners, a client linked to it, a temporary
//! directory for the state and the saved scan; and the foreign rules Docker
//! and fail2ban leave.

use super::*;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// A server namespace with a real OpenSSH sshd (5622), a real nginx (80)
/// and an unlisted 8080 listener, a client linked to it, and a temp dir for
/// state and scan.
pub struct Host {
    /// The daemons first, so that they stop (by pid) before their namespace
    /// goes (fields drop in order).
    _ssh: Ssh,
    _nginx: Daemon,
    pub server: Netns,
    pub client: Netns,
    pub dir: tempfile::TempDir,
}

impl Host {
    pub fn new(tag: &str) -> Host {
        let mut server = Netns::new(&format!("{tag}-s"));
        let client = Netns::new(&format!("{tag}-c"));
        link(&server, &client);
        let ssh = Ssh::start(&server);
        let nginx = start_nginx(&server, &["0.0.0.0:80", "[::]:80"]);
        // Listening, but not in the saved scan: the rules must drop it.
        server.listen(Some("stray"), &["tcp:0.0.0.0:8080", "tcp:[::]:8080"]);
        let dir = tempfile::tempdir().unwrap();
        write_scan(
            &dir.path().join("scan.json"),
            &[("ssh", "sshd", 5622), ("http", "nginx", 80)],
        );
        Host {
            _ssh: ssh,
            _nginx: nginx,
            server,
            client,
            dir,
        }
    }
    pub fn scan(&self) -> String {
        self.dir
            .path()
            .join("scan.json")
            .to_string_lossy()
            .into_owned()
    }
    /// The host's sshd, to log in to it from the client as an operator.
    pub fn ssh(&self) -> &Ssh {
        &self._ssh
    }
    pub fn state(&self) -> String {
        self.dir.path().join("state").to_string_lossy().into_owned()
    }
    /// `autofw apply --confirm --yes --from scan --state-dir state` + extra
    /// in the server, to be run.
    pub fn apply_command(&self, extra: &[&str]) -> Autofw {
        let (scan, state) = (self.scan(), self.state());
        Autofw::new(&[
            "apply",
            "--confirm",
            "--yes",
            "--from",
            &scan,
            "--state-dir",
            &state,
        ])
        .args(extra)
        .inside(&self.server)
    }
    /// That apply, run with stdin from /dev/null; waits for it.
    pub fn apply(&self, extra: &[&str]) -> Output {
        self.apply_command(extra).output()
    }
    /// The same, started in the background with stdin held open (an operator
    /// who does not answer); returns once the rules are loaded.
    /// Waits up to 30 s (a loaded CI machine), and on failure shows what
    /// apply said.
    pub fn apply_in_background(&self, extra: &[&str]) -> Child {
        let mut child = self.apply_command(extra).spawn(Stdio::piped());
        if !applied_rules_within(&self.server, &self.state(), Duration::from_secs(30)) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("apply's output");
            panic!(
                "apply did not open its window and load its rules: {}",
                show(&out)
            );
        }
        child
    }
    pub fn confirm(&self) -> Output {
        self.server
            .autofw(&["confirm", "--state-dir", &self.state()])
    }
    /// `autofw confirm` of the apply running in the background, then that
    /// apply's end: both must succeed (the rules are kept). Apply's output.
    pub fn confirm_and_finish(&self, apply: Child) -> Output {
        let confirm = self.confirm();
        assert!(confirm.status.success(), "{}", show(&confirm));
        let out = finish(apply);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        out
    }
}

/// A saved `autofw scan --json` with public listeners on 0.0.0.0 and ::.
pub fn write_scan(path: &Path, services: &[(&str, &str, u16)]) {
    let mut listeners = Vec::new();
    for (service, process, port) in services {
        for address in ["0.0.0.0", "::"] {
            listeners.push(serde_json::json!({
                "proto": "tcp", "address": address, "port": port, "exposure": "public",
                "service": service, "process": process, "pids": [1], "risky": false
            }));
        }
    }
    let scan = serde_json::json!({ "listeners": listeners, "unreadable_processes": 0 });
    std::fs::write(path, serde_json::to_string_pretty(&scan).unwrap()).unwrap();
}

/// `autofw apply --confirm --yes --timeout 30 --state-dir STATE` + extra in
/// `ns`, from its live scan, with `env` set for apply (`DOCKER_HOST`); kept
/// with `autofw confirm` once the rules are loaded. Both must succeed:
/// returns apply's output.
pub fn apply_confirmed(ns: &Netns, state: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut apply = Autofw::new(&[
        "apply",
        "--confirm",
        "--yes",
        "--timeout",
        "30",
        "--state-dir",
        state,
    ])
    .args(extra)
    .inside(ns);
    for (key, value) in env {
        apply = apply.env(key, value);
    }
    let mut child = apply.spawn(Stdio::piped());
    let window = Path::new(state).join("window.json");
    let opened = wait_until(Duration::from_secs(20), || {
        window.exists() || child.try_wait().ok().flatten().is_some()
    });
    if !opened || child.try_wait().ok().flatten().is_some() {
        let out = finish(child);
        panic!("apply did not open its window:\n{}", show(&out));
    }
    wait_for_applied_rules(ns, state, Duration::from_secs(10));
    let confirm = ns.autofw(&["confirm", "--state-dir", state]);
    assert!(confirm.status.success(), "{}", show(&confirm));
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    out
}

/// The listeners of a `scan --json` that are forwarded ports (a DNAT, a
/// container's published port), in the scan's order.
pub fn forwarded_listeners(scan: &serde_json::Value) -> Vec<&serde_json::Value> {
    scan["listeners"]
        .as_array()
        .expect("a scan's listeners")
        .iter()
        .filter(|l| l["forwarded_to"].is_string())
        .collect()
}

pub fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// Foreign rules as Docker and fail2ban leave them: Docker's chains made
/// with iptables-nft as dockerd makes them (tests/docker.rs runs the real
/// dockerd; here only its chains matter), and a real fail2ban that has
/// banned one address through its iptables chain and one through its nft
/// table. fail2ban runs until the returned value is dropped.
pub fn add_foreign_rules(ns: &Netns) -> Daemon {
    for cmd in [
        "iptables -N DOCKER",
        "iptables -N DOCKER-USER",
        "iptables -A DOCKER-USER -j RETURN",
        "iptables -A FORWARD -j DOCKER-USER",
        "iptables -t nat -N DOCKER",
        "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    ] {
        let argv: Vec<&str> = cmd.split(' ').collect();
        ns.ok(&argv);
    }
    start_fail2ban(ns)
}
