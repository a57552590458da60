//! Issue 11: autofw as an Ansible module. A real `ansible-playbook`
//! (ansible-core from PyPI, in a virtualenv under target/) runs in a
//! controller namespace and reaches two hosts over real SSH, each host a
//! namespace with its own sshd (port 5622) and services: `web1`, a web
//! server, and `db1`, a database only the web servers may reach. The play
//! under test is the shipped example, ansible/examples/fleet/site.yml; the
//! plays in tests/fleet/ are the deliberately wrong ones.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// The ansible-core the tests install (the controller runs Debian 12's
/// Python 3.11).
const ANSIBLE_CORE: &str = "ansible-core>=2.17,<2.20";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example() -> PathBuf {
    repo().join("ansible/examples/fleet")
}

/// ansible-core in a virtualenv (Debian's pip refuses system-wide
/// installs), made once under target/ and reused by later runs.
fn ansible_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ansible-venv");
        if !dir.join("bin/ansible-playbook").exists() {
            run_ok(
                Command::new("/usr/bin/python3")
                    .args(["-m", "venv"])
                    .arg(&dir),
            );
            run_ok(Command::new(dir.join("bin/pip")).args(["install", "--quiet", ANSIBLE_CORE]));
        }
        dir
    })
    .clone()
}

/// One managed host: a namespace with sshd, linked to the controller.
struct Host {
    name: &'static str,
    /// Its service, a real daemon: web1's nginx, db1's PostgreSQL.
    _service: Daemon,
    /// Before its namespace, like the service: stopped by pid first.
    ssh: Ssh,
    ns: Netns,
    addr: &'static str,
    dir: PathBuf,
}

impl Host {
    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    fn table(&self) -> String {
        let out = self
            .ns
            .run(&["nft", "-t", "-s", "list", "table", "inet", "autofw"]);
        text(&out.stdout)
    }
    fn applied(&self) -> Value {
        let record = std::fs::read_to_string(self.state().join("applied.json")).unwrap();
        serde_json::from_str(&record).unwrap()
    }
}

/// The controller and its fleet. Fields drop in order: hosts (their sshd),
/// then the controller (its ssh control masters), then the files.
struct Fleet {
    hosts: Vec<Host>,
    ctl: Netns,
    inventory: PathBuf,
    tmp: tempfile::TempDir,
}

impl Fleet {
    fn start(tag: &str) -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let ctl = Netns::new(&format!("{tag}-ctl"));
        let mut hosts = Vec::new();
        for (name, addr, ctl_addr, ctl_if) in [
            ("web1", "192.0.2.1", "192.0.2.2", "web"),
            ("db1", "198.51.100.1", "198.51.100.2", "db"),
        ] {
            let ns = Netns::new(&format!("{tag}-{name}"));
            link_to_controller(&ns, &ctl, ctl_if, addr, ctl_addr);
            let ssh = Ssh::start(&ns);
            let service = match name {
                "web1" => start_nginx(&ns, &["0.0.0.0:80"]),
                _ => start_postgres(&ns, &["0.0.0.0"]),
            };
            assert!(
                wait_until(Duration::from_secs(5), || probe_tcp(&ctl, addr, 5622)
                    == Probe::Open),
                "sshd on {name} did not come up"
            );
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(dir.join("root")).unwrap();
            hosts.push(Host {
                name,
                _service: service,
                ns,
                ssh,
                addr,
                dir,
            });
        }
        let mut inventory = String::new();
        // web1 rate-limits ssh (as the example's bastion does): its meter
        // then holds the controller's address once the play has logged in,
        // which the check-mode diff must not show (it is the terse listing).
        for (group, host, extra) in [
            ("web", &hosts[0], " autofw_limit='[\"ssh=60/minute\"]'"),
            ("db", &hosts[1], ""),
        ] {
            inventory.push_str(&format!(
                "[{group}]\n{} ansible_host={} ansible_ssh_private_key_file={} \
                 autofw_binary={} autofw_state_dir={} autofw_root={} autofw_timeout=20{extra}\n\n",
                host.name,
                host.addr,
                host.ssh.client_key().display(),
                autofw_bin(),
                host.state().display(),
                host.dir.join("root").display(),
            ));
        }
        inventory.push_str(
            "[all:vars]\nansible_user=root\nansible_port=5622\n\
             ansible_python_interpreter=/usr/bin/python3\n\
             admin_networks=[\"192.0.2.2/32\",\"198.51.100.2/32\"]\n",
        );
        let path = tmp.path().join("inventory");
        std::fs::write(&path, inventory).unwrap();
        Fleet {
            hosts,
            ctl,
            inventory: path,
            tmp,
        }
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap()
    }

    /// `ansible-playbook -i inventory PLAYBOOK ARGS` in the controller, run
    /// from the example's directory (its ansible.cfg finds the collection),
    /// with the JSON callback so results can be read.
    fn command(&self, playbook: &Path, args: &[&str]) -> Command {
        let venv = ansible_venv();
        let home = self.tmp.path().join("ansible-home");
        let mut cmd = self
            .ctl
            .command(venv.join("bin/ansible-playbook").to_str().unwrap());
        cmd.current_dir(example())
            .arg("-i")
            .arg(&self.inventory)
            .arg(playbook)
            .args(args)
            .env("ANSIBLE_CONFIG", example().join("ansible.cfg"))
            .env("ANSIBLE_HOME", &home)
            .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
            .env("ANSIBLE_REMOTE_TMP", self.tmp.path().join("remote-tmp"))
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", self.tmp.path().join("cp"))
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env(
                "ANSIBLE_SSH_COMMON_ARGS",
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            )
            .env("ANSIBLE_TIMEOUT", "4")
            .env(
                "ANSIBLE_CALLBACK_PLUGINS",
                repo().join("tests/fleet/callback_plugins"),
            )
            .env("ANSIBLE_STDOUT_CALLBACK", "results_json")
            .env("ANSIBLE_NOCOLOR", "1");
        cmd
    }

    /// Run a playbook to the end; its output and the JSON callback's report.
    fn play(&self, playbook: &Path, args: &[&str]) -> (Output, Value) {
        let out = self.command(playbook, args).output().unwrap();
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("ansible-playbook printed no JSON ({e}):\n{}", show(&out)));
        (out, report)
    }

    /// Each host's rules, terse: web1's ssh meter fills and empties on its
    /// own as the play logs in (elements are state, not rules).
    fn rulesets(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| h.ns.ok(&["nft", "-t", "-s", "list", "ruleset"]))
            .collect()
    }
}

/// A veth pair between `host` (eth0, `host_v4`/24) and the controller
/// (`ctl_if`, `ctl_v4`/24).
fn link_to_controller(host: &Netns, ctl: &Netns, ctl_if: &str, host_v4: &str, ctl_v4: &str) {
    veth(host, "eth0", ctl, ctl_if);
    host.bring_up("eth0", &[&format!("{host_v4}/24")]);
    ctl.bring_up(ctl_if, &[&format!("{ctl_v4}/24")]);
}

/// A `listen.py` listener started in `ns` after the fleet was built (the
/// hosts are shared, so it is not one of `ns`'s own children). Stop it
/// with [`stop_listener`]; the namespace's drop would kill it too.
fn spawn_listener(ns: &Netns, name: &str, spec: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut cmd = ns.command("python3");
    cmd.arg(listen_py())
        .args(["--name", name, spec])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

fn stop_listener(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The result of task `name` on `host` in a JSON-callback report.
fn task<'a>(report: &'a Value, name: &str, host: &str) -> &'a Value {
    report["plays"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|play| play["tasks"].as_array().unwrap())
        .find(|t| t["task"]["name"] == name)
        .unwrap_or_else(|| panic!("no task {name:?} in {report}"))
        .get("hosts")
        .and_then(|hosts| hosts.get(host))
        .unwrap_or_else(|| panic!("task {name:?} did not run on {host}: {report}"))
}

fn stat(report: &Value, host: &str, what: &str) -> u64 {
    report["stats"][host][what].as_u64().unwrap_or(0)
}

/// The client port of an `SSH_CONNECTION` value: one per TCP connection.
fn client_port(connection: &Value) -> String {
    let text = connection.as_str().unwrap_or_default();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

const APPLY: &str = "Load the rules, confirm them over a new login";

#[test]
fn fleet_playbook_over_ssh_check_apply_confirm_idempotent_guard_rollback_and_drift() {
    if !require_root() {
        return;
    }
    let fleet = Fleet::start("fleet");
    let site = example().join("site.yml");
    let (web, db) = (fleet.host("web1"), fleet.host("db1"));
    let empty = fleet.rulesets();
    assert!(empty.iter().all(String::is_empty), "{empty:?}");

    // --check --diff: facts, and exactly what would change; nothing changes.
    let (out, check) = fleet.play(&site, &["--check", "--diff"]);
    assert!(out.status.success(), "{}", show(&out));
    let facts = task(&check, "What listens on each host", "web1");
    let listeners = facts["ansible_facts"]["autofw"]["listeners"].to_string();
    assert!(
        listeners.contains("\"nginx\"") && listeners.contains("5622"),
        "{listeners}"
    );
    let facts = task(&check, "What listens on each host", "db1");
    assert!(
        facts["ansible_facts"]["autofw"]["listeners"]
            .to_string()
            .contains("\"postgres\""),
        "{facts}"
    );
    let mut would = Vec::new();
    for host in ["web1", "db1"] {
        let result = task(&check, APPLY, host);
        assert_eq!(result["changed"], true, "{result}");
        assert_eq!(result["outcome"], "dry-run", "{result}");
        assert_eq!(result["diff"]["before"], "", "{result}");
        would.push(result["diff"]["after"].as_str().unwrap().to_string());
    }
    assert!(
        would[0].contains("tcp dport 80 accept")
            && would[0].contains("ip saddr { 192.0.2.2, 198.51.100.2 } tcp dport 5622 accept"),
        "web1 would load:\n{}",
        would[0]
    );
    assert!(
        would[1].contains("ip saddr 192.0.2.1 tcp dport 5432 accept"),
        "db1 would load:\n{}",
        would[1]
    );
    // What the operator reads: Ansible's own diff of each host's rules.
    let out = fleet
        .command(&site, &["--check", "--diff"])
        .env("ANSIBLE_STDOUT_CALLBACK", "default")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("+++ after: new autofw rules")
            && shown.contains("+\t\ttcp dport 80 accept comment \"http\"")
            && shown.contains("+\t\tip saddr 192.0.2.1 tcp dport 5432 accept"),
        "{shown}"
    );
    assert_eq!(fleet.rulesets(), empty, "check mode changed a host");
    assert!(!web.state().exists() && !db.state().exists());

    // The real run: loaded, then confirmed over a NEW connection.
    let (out, run) = fleet.play(&site, &[]);
    assert!(out.status.success(), "{}", show(&out));
    for (host, expected) in fleet.hosts.iter().zip(&would) {
        let result = task(&run, APPLY, host.name);
        assert_eq!(result["changed"], true, "{result}");
        assert_eq!(result["confirmed"], true, "{result}");
        let (applied_over, confirmed_over) = (
            client_port(&result["connection"]),
            client_port(&result["confirm_connection"]),
        );
        assert!(
            !applied_over.is_empty() && applied_over != confirmed_over,
            "the confirm did not come over a new connection: {result}"
        );
        // --check --diff showed exactly what is now loaded.
        assert_eq!(&host.table(), expected, "{}", host.name);
        let record = host.applied();
        assert_eq!(record["life"]["state"], "confirmed", "{record}");
        assert_eq!(record["life"]["persisted"], true, "{record}");
        assert!(!host.state().join("window.json").exists());
    }
    assert_eq!(probe_tcp(&fleet.ctl, web.addr, 80), Probe::Open);
    assert_eq!(probe_tcp(&fleet.ctl, web.addr, 5622), Probe::Open);
    assert_eq!(probe_tcp(&fleet.ctl, db.addr, 5622), Probe::Open);
    // The database is for web1's address, not the controller's.
    assert_eq!(probe_tcp(&fleet.ctl, db.addr, 5432), Probe::Dropped);
    let kept = fleet.rulesets();

    // Idempotence: a second run changes nothing.
    let (out, again) = fleet.play(&site, &[]);
    assert!(out.status.success(), "{}", show(&out));
    for host in ["web1", "db1"] {
        assert_eq!(stat(&again, host, "changed"), 0, "{again}");
        assert_eq!(task(&again, APPLY, host)["outcome"], "unchanged");
    }
    assert_eq!(fleet.rulesets(), kept);

    // Drift: none, until a new public listener starts on web1.
    let status = example().join("status.yml");
    let (out, _) = fleet.play(&status, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let listener = spawn_listener(&web.ns, "node", "tcp:0.0.0.0:3000");
    let (out, drift) = fleet.play(&status, &[]);
    stop_listener(listener);
    assert!(!out.status.success(), "{}", show(&out));
    let on_web = task(&drift, "Status of autofw's rules", "web1");
    assert_eq!(on_web["failed"], true, "{on_web}");
    assert!(on_web["msg"].as_str().unwrap().contains("3000"), "{on_web}");
    assert_eq!(on_web["drift"], true, "{on_web}");
    let on_db = task(&drift, "Status of autofw's rules", "db1");
    assert_ne!(on_db["failed"], true, "{on_db}");
    assert_eq!(on_db["drift"], false, "{on_db}");

    // Rules that would lock the controller out: refused before any change.
    let (out, refused) = fleet.play(&repo().join("tests/fleet/lockout.yml"), &[]);
    assert!(!out.status.success(), "{}", show(&out));
    for (host, addr, ctl) in [
        ("web1", "192.0.2.1", "192.0.2.2"),
        ("db1", "198.51.100.1", "198.51.100.2"),
    ] {
        let result = task(&refused, "SSH only from elsewhere", host);
        let msg = result["msg"].as_str().unwrap();
        assert!(
            msg.contains("refused before any change") && msg.contains("lock the controller out"),
            "{result}"
        );
        assert_eq!(result["lockout"]["verdict"], "locked-out", "{result}");
        // The controller's own connection, not `(--guard)` for a play that
        // set no guard; the cause and a fix in the module's options; one
        // line, and no ruleset in the failure.
        for part in [
            format!("the controller's SSH connection, from {ctl} to {addr} port 5622"),
            "because `source: ssh=203.0.113.0/24` admits only 203.0.113.0/24 to tcp/5622"
                .to_string(),
            format!("To get in: give `source: ssh=203.0.113.0/24,{ctl}` instead"),
        ] {
            assert!(msg.contains(&part), "{part:?} not in {msg}");
        }
        assert!(!msg.contains("--guard") && !msg.contains('\n'), "{msg}");
        assert!(result.get("before").is_none() && result.get("after").is_none());
        assert_eq!(result["lockout"]["fixed"], true, "{result}");
    }
    assert_eq!(fleet.rulesets(), kept, "the guard let a change through");
    // The fixes, made as said (each host's controller address added):
    // the guard admits the play on both hosts.
    let fixed = r#"{"lockout_source": ["ssh=203.0.113.0/24,192.0.2.2,198.51.100.2"]}"#;
    let (out, passed) = fleet.play(
        &repo().join("tests/fleet/lockout.yml"),
        &["--check", "-e", fixed],
    );
    assert!(out.status.success(), "{}", show(&out));
    for host in ["web1", "db1"] {
        let result = task(&passed, "SSH only from elsewhere", host);
        assert_eq!(result["lockout"]["verdict"], "admitted", "{result}");
    }
    assert_eq!(fleet.rulesets(), kept, "check mode changed a host");

    // A deliberately wrong play (ssh blocked, guard overridden): loaded, the
    // new login fails, the run fails saying so, and both hosts roll back.
    let (out, wrong) = fleet.play(&repo().join("tests/fleet/wrong.yml"), &[]);
    assert!(!out.status.success(), "{}", show(&out));
    for host in ["web1", "db1"] {
        let result = task(&wrong, "Block ssh", host);
        let msg = result["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("a NEW SSH connection to it then failed")
                && msg.contains("restored the previous rules at the deadline")
                && msg.contains("checked over a new login"),
            "{result}"
        );
        assert_eq!(result["confirmed"], false, "{result}");
        assert_eq!(result["rolled_back"], true, "{result}");
    }
    assert_eq!(
        fleet.rulesets(),
        kept,
        "the hosts did not roll back the wrong play"
    );
    assert_eq!(probe_tcp(&fleet.ctl, web.addr, 5622), Probe::Open);

    // A play killed mid-window: nobody confirms, both hosts roll back.
    let window = repo().join("tests/fleet/window.yml");
    let mut killed = fleet.command(&window, &["-e", "pause_seconds=60"]);
    std::os::unix::process::CommandExt::process_group(&mut killed, 0);
    let mut child = killed.spawn().unwrap();
    let loaded = wait_until(Duration::from_secs(60), || {
        fleet
            .hosts
            .iter()
            .all(|h| h.state().join("window.json").exists() && h.table().contains("8443"))
    });
    // The whole run (its forked workers too) dies at once.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    assert!(
        loaded,
        "the windowed play did not load its rules on both hosts"
    );
    assert!(
        wait_until(Duration::from_secs(25), || fleet.rulesets() == kept),
        "the hosts did not roll back after the run was killed: {:?}",
        fleet.rulesets()
    );

    // The same play left to finish: confirmed in a task of its own, after
    // `meta: reset_connection`, over a new connection.
    let (out, windowed) = fleet.play(&window, &[]);
    assert!(out.status.success(), "{}", show(&out));
    for host in &fleet.hosts {
        let loaded = task(&windowed, "Load, leave the window open", host.name);
        let kept = task(&windowed, "Keep the rules", host.name);
        assert_eq!(loaded["pending"], true, "{loaded}");
        assert_eq!(kept["changed"], true, "{kept}");
        assert_ne!(
            client_port(&loaded["connection"]),
            client_port(&kept["connection"]),
            "{loaded} {kept}"
        );
        assert!(host.table().contains("8443"));
        assert_eq!(host.applied()["life"]["state"], "confirmed");
    }
}

/// `ansible-doc` renders the module from the ansible_collections tree, and
/// a host without the binary gets a message that says so.
#[test]
fn ansible_doc_renders_the_module_and_a_missing_binary_is_named() {
    let venv = ansible_venv();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(venv.join("bin/ansible-doc"))
        .arg("autofw.firewall.autofw")
        .env("ANSIBLE_COLLECTIONS_PATH", repo().join("ansible"))
        .env("ANSIBLE_HOME", home.path())
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let doc = text(&out.stdout);
    for expected in [
        "autofw.firewall.autofw",
        "state_dir",
        "reset_connection",
        "EXAMPLES",
        "RETURN VALUES",
        "lockout",
    ] {
        assert!(doc.contains(expected), "{expected} missing from:\n{doc}");
    }

    let out = Command::new(venv.join("bin/ansible"))
        .args([
            "all",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "autofw.firewall.autofw",
        ])
        .args(["-a", "state=facts binary=/nonexistent/autofw"])
        .args(["-e", "ansible_python_interpreter=/usr/bin/python3"])
        .env("ANSIBLE_COLLECTIONS_PATH", repo().join("ansible"))
        .env("ANSIBLE_HOME", home.path())
        .env("ANSIBLE_LOCAL_TEMP", home.path().join("tmp"))
        .env("ANSIBLE_REMOTE_TMP", home.path().join("remote-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("the autofw binary /nonexistent/autofw does not exist"),
        "{}",
        show(&out)
    );
}

/// `apply --json` and `--no-wait`, what the module is built on: the report's
/// fields, the guard's verdict, loading with a window and returning at
/// once, nothing loaded when nothing would change, and the rollback of an
/// unconfirmed `--no-wait`.
#[test]
fn apply_json_and_no_wait_for_automation() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("fleet-json");
    let _nginx = start_nginx(&ns, &["0.0.0.0:80"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    let apply = |args: &[&str]| {
        let mut argv = vec!["apply", "--state-dir", &state];
        argv.extend_from_slice(args);
        let out = ns.autofw(&argv);
        let report = serde_json::from_slice::<Value>(&out.stdout).ok();
        (out, report)
    };

    // Dry run: a change, nothing before, and a guard that says no to a
    // controller coming in on tcp/22 (nothing listens there, so it stays shut).
    let (out, report) = apply(&["--json", "--guard", "192.0.2.2:22"]);
    assert!(out.status.success(), "{}", show(&out));
    let report = report.unwrap();
    assert_eq!(report["outcome"], "dry-run", "{report}");
    assert_eq!(report["changed"], true);
    assert_eq!(report["before"], "");
    assert!(
        report["after"]
            .as_str()
            .unwrap()
            .contains("tcp dport 80 accept")
    );
    assert_eq!(report["lockout"]["verdict"], "locked-out", "{report}");
    assert_eq!(report["lockout"]["client"], "192.0.2.2");
    assert_eq!(report["lockout"]["port"], 22);
    assert_eq!(report["window"], Value::Null);
    assert_eq!(ns.ruleset(), "");
    assert!(!Path::new(&state).exists(), "a dry run wrote state");

    // The session's own connection is what the guard checks by default.
    let out = Autofw::new(&[
        "apply",
        "--json",
        "--allow",
        "5622/tcp",
        "--state-dir",
        &state,
    ])
    .inside(&ns)
    .env("SSH_CONNECTION", "192.0.2.2 40000 192.0.2.1 5622")
    .output();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lockout"]["verdict"], "admitted", "{report}");
    assert_eq!(report["lockout"]["source"], "SSH_CONNECTION");

    // A JSON report cannot wait at a prompt.
    let (out, _) = apply(&["--json", "--confirm"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("--no-wait"), "{}", show(&out));

    // Refused by the guard: the report says so, exit 4, nothing changed.
    let (out, report) = apply(&[
        "--json",
        "--confirm",
        "--no-wait",
        "--guard",
        "192.0.2.2:22",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert_eq!(report.unwrap()["outcome"], "refused");
    assert!(text(&out.stderr).contains("lock you out"), "{}", show(&out));
    assert_eq!(ns.ruleset(), "");

    // --no-wait: loaded, the watchdog armed, back at once.
    let args = [
        "--json",
        "--confirm",
        "--no-wait",
        "--timeout",
        "30",
        "--allow",
        "22/tcp",
        "--guard",
        "192.0.2.2:22",
    ];
    let started = std::time::Instant::now();
    let (out, report) = apply(&args);
    assert!(out.status.success(), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(20));
    let report = report.unwrap();
    assert_eq!(report["outcome"], "loaded", "{report}");
    assert_eq!(report["lockout"]["verdict"], "admitted");
    assert!(report["window"]["watchdog_pid"].as_u64().unwrap() > 0);
    assert!(Path::new(&state).join("window.json").exists());
    let live = ns.ok(&["nft", "-s", "list", "table", "inet", "autofw"]);
    assert_eq!(
        report["after"],
        live.as_str(),
        "`after` is the table as loaded"
    );
    let out = ns.autofw(&["confirm", "--state-dir", &state]);
    assert!(out.status.success(), "{}", show(&out));

    // The same again: nothing to load, no window.
    let (out, report) = apply(&args);
    assert!(out.status.success(), "{}", show(&out));
    let report = report.unwrap();
    assert_eq!(report["outcome"], "unchanged", "{report}");
    assert_eq!(report["changed"], false);
    assert_eq!(report["before"], report["after"]);
    assert!(!Path::new(&state).join("window.json").exists());

    // A change left unconfirmed rolls back by itself.
    let kept = ns.ruleset();
    let (out, report) = apply(&[
        "--json",
        "--confirm",
        "--no-wait",
        "--timeout",
        "2",
        "--allow",
        "22/tcp",
        "--allow",
        "443/tcp",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let report = report.unwrap();
    assert_eq!(report["outcome"], "loaded");
    assert_eq!(report["before"], live.as_str());
    assert_ne!(ns.ruleset(), kept);
    assert!(
        wait_until(Duration::from_secs(10), || ns.ruleset() == kept),
        "an unconfirmed --no-wait apply was not rolled back"
    );
}
