//! `apply --persist`, `autofw restore` and `autofw unpersist`, with every
//! boot file under a temporary `--root`: persisted only after confirmation,
//! restored exactly in a fresh namespace ("the reboot"), removed exactly.

use crate::support::*;
use autofw::Backend;
use autofw::systemd_unit;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn confirmed_persist_survives_the_reboot_exactly() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let confirmed;
    {
        let host = Host::new("persist");
        let apply = host.apply_in_background(&["--timeout", "30", "--persist", "--root", r]);
        // Not before confirmation.
        assert!(
            !root.path().join("etc").exists(),
            "persisted before confirmation"
        );
        let out = host.confirm();
        assert!(out.status.success(), "{}", show(&out));
        assert!(
            text(&out.stdout).contains("persisted under"),
            "{}",
            show(&out)
        );
        assert_eq!(finish(apply).status.code(), Some(0));
        confirmed = host.server.ruleset();
        assert!(confirmed.contains("tcp dport 5622 accept"), "{confirmed}");
        let record =
            std::fs::read_to_string(Path::new(&host.state()).join("applied.json")).unwrap();
        assert!(
            record.contains("\"state\": \"confirmed\"") && record.contains("\"persisted\": true"),
            "{record}"
        );
    } // the namespace is gone: "the reboot"
    let rules = root.path().join("etc/autofw/rules.nft");
    assert_eq!(mode(&rules), 0o600);
    assert_eq!(mode(&root.path().join("etc/autofw")), 0o700);
    // No systemd in this root: the ifupdown hook, which loads the saved
    // file itself and never runs autofw.
    let hook = std::fs::read_to_string(root.path().join("etc/network/if-pre-up.d/autofw")).unwrap();
    assert!(
        hook.contains("/usr/sbin/nft -f /etc/autofw/rules.nft"),
        "{hook}"
    );
    assert!(!hook.contains(autofw_bin()), "{hook}");
    let fresh = Netns::new("reboot");
    assert_eq!(fresh.ruleset(), "");
    let out = fresh.autofw(&["restore", "--root", r]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fresh.ruleset(), confirmed);
    // Idempotent: ifupdown runs the hook once per interface.
    assert!(fresh.autofw(&["restore", "--root", r]).status.success());
    assert_eq!(fresh.ruleset(), confirmed);
    // A boot file changed by hand is not what was confirmed: restore
    // refuses, naming it, and loads nothing.
    let mut edited = std::fs::read_to_string(&rules).unwrap();
    edited.push_str("# edited by hand\n");
    std::fs::write(&rules, edited).unwrap();
    let other = Netns::new("edited");
    let out = other.autofw(&["restore", "--root", r]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "{} is not what autofw saved there",
            rules.display()
        )),
        "{}",
        show(&out)
    );
    assert_eq!(other.ruleset(), "");
}

#[test]
fn unconfirmed_apply_persists_nothing() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let host = Host::new("nopersist");
    let out = host.apply(&[
        "--timeout",
        "2",
        "--persist",
        "--root",
        root.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    let out = host
        .server
        .autofw(&["restore", "--root", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("nothing is persisted"),
        "{}",
        show(&out)
    );
}

#[test]
fn iptables_persist_restores_in_a_fresh_namespace() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    let confirmed;
    {
        let host = Host::new("iptpersist");
        let apply = host.apply_in_background(&[
            "--timeout",
            "30",
            "--persist",
            "--root",
            r,
            "--backend",
            "iptables",
        ]);
        host.confirm_and_finish(apply);
        confirmed = host.server.ruleset();
    }
    let fresh = Netns::new("iptreboot");
    for _ in 0..2 {
        let out = fresh.autofw(&["restore", "--root", r]);
        assert!(out.status.success(), "{}", show(&out));
        // Twice gives the same: the INPUT jump is not added again.
        assert_eq!(fresh.ruleset(), confirmed);
    }
}

#[test]
fn systemd_hook_and_unpersist_remove_only_what_was_installed() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // An image with systemd installed, and files that are not autofw's.
    for dir in [
        "usr/lib/systemd",
        "etc/systemd/system/sysinit.target.wants",
        "etc/autofw",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::write(r.join("usr/lib/systemd/systemd"), "").unwrap();
    std::fs::write(
        r.join("etc/systemd/system/sysinit.target.wants/other.service"),
        "x",
    )
    .unwrap();
    std::fs::write(r.join("etc/autofw/operator-notes"), "mine").unwrap();

    let host = Host::new("unpersist");
    // The second apply changes something: one with nothing to change
    // opens no window and persists nothing new (issue 19).
    for extra in [&[][..], &["--allow", "8443/tcp"][..]] {
        let mut args = vec![
            "--timeout",
            "30",
            "--persist",
            "--root",
            r.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let apply = host.apply_in_background(&args);
        host.confirm_and_finish(apply);
    }
    // No package shipped the unit: apply wrote the very text the package
    // would ship.
    let unit = std::fs::read_to_string(r.join("etc/systemd/system/autofw.service")).unwrap();
    assert_eq!(unit, systemd_unit(Backend::Nft));
    assert!(unit.contains("Before=network-pre.target"), "{unit}");
    let link = r.join("etc/systemd/system/sysinit.target.wants/autofw.service");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("/etc/systemd/system/autofw.service")
    );
    // The second persist kept the first version.
    assert!(r.join("etc/autofw/rules.nft.prev").exists());
    assert!(
        !r.join("etc/network").exists(),
        "ifupdown hook on a systemd image"
    );

    let out = host
        .server
        .autofw(&["unpersist", "--root", r.to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    for gone in [
        "etc/systemd/system/autofw.service",
        "etc/autofw/rules.nft",
        "etc/autofw/rules.nft.prev",
        "etc/autofw/persist.json",
    ] {
        assert!(!r.join(gone).exists(), "{gone} left behind");
    }
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "enable link left behind"
    );
    for kept in [
        "etc/systemd/system/sysinit.target.wants/other.service",
        "etc/autofw/operator-notes",
        "usr/lib/systemd/systemd",
    ] {
        assert!(r.join(kept).exists(), "{kept} was removed");
    }
    // The live rules are not touched by unpersist.
    assert!(host.server.ruleset().contains("table inet autofw"));
    let again = host
        .server
        .autofw(&["unpersist", "--root", r.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("nothing to remove"));
}

/// "Boot" `ns` as systemd would with the image under `root`: follow the
/// enabling link of `unit` to the unit file, and run its `ExecStart=` lines
/// in order inside `ns` (a `-` prefix: a failure is ignored; any other
/// failure fails the boot, as it fails the unit). The unit's absolute
/// `/etc/autofw/...` arguments are looked up under `root`, where the test
/// persisted them. Returns the unit's text.
pub(crate) fn boot_with_unit(ns: &Netns, root: &Path, unit: &str) -> String {
    let (text, ran) = run_unit(ns, root, unit);
    for (line, may_fail, out) in ran {
        assert!(
            may_fail || out.status.success(),
            "boot: `{line}` failed\n{}",
            show(&out)
        );
    }
    text
}

/// Run the ExecStart lines of the enabled `unit` under `root` in `ns`, as
/// systemd would at boot; the unit's text and, per line, whether it may
/// fail (`-`) and what it did.
fn run_unit(
    ns: &Netns,
    root: &Path,
    unit: &str,
) -> (String, Vec<(String, bool, std::process::Output)>) {
    let link = root
        .join("etc/systemd/system/sysinit.target.wants")
        .join(unit);
    let target = std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("{} is not the enabling link: {e}", link.display()));
    let unit_path = root.join(target.strip_prefix("/").unwrap());
    let text = std::fs::read_to_string(&unit_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", unit_path.display()));
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .collect();
    assert!(!lines.is_empty(), "no ExecStart in\n{text}");
    let mut ran = Vec::new();
    for line in lines {
        let (may_fail, command) = match line.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        // systemd's word splitting, as far as the units use it: 'quoted'
        // words and `\;` for a literal semicolon.
        let argv: Vec<String> = command
            .split_whitespace()
            .map(|arg| {
                let arg = arg.trim_matches('\'').replace("\\;", ";");
                match arg.strip_prefix("/etc/autofw") {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                        format!("{}{rest}", root.join("etc/autofw").display())
                    }
                    _ => arg,
                }
            })
            .collect();
        assert!(
            Path::new(&argv[0]).is_absolute() && Path::new(&argv[0]).exists(),
            "ExecStart runs {} (systemd needs an existing absolute path)",
            argv[0]
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        ran.push((line.to_string(), may_fail, ns.run(&argv)));
    }
    (text, ran)
}

/// An image root with systemd installed.
pub(crate) fn systemd_image() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    std::fs::write(root.path().join("usr/lib/systemd/systemd"), "").unwrap();
    root
}

/// A copy of the binary under test in its own directory: the "cargo run"
/// binary that `cargo clean` or an upgrade later deletes.
fn movable_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("autofw");
    std::fs::copy(autofw_bin(), &bin).unwrap();
    (dir, bin)
}

/// apply --persist with `bin` in `host`, confirmed with `bin`; returns the
/// confirmed ruleset.
fn persist_with(host: &Host, bin: &Path, root: &Path, extra: &[&str]) -> String {
    let (state, bin) = (host.state(), bin.to_str().unwrap());
    let apply = host
        .apply_command(&["--timeout", "30", "--persist", "--root"])
        .args(&[root.to_str().unwrap()])
        .args(extra)
        .binary(bin)
        .spawn(Stdio::piped());
    wait_for_applied_rules(&host.server, &state, std::time::Duration::from_secs(10));
    let out = host.server.run(&[bin, "confirm", "--state-dir", &state]);
    assert!(out.status.success(), "{}", show(&out));
    let out = finish(apply);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    host.server.ruleset()
}

#[test]
fn boot_hook_restores_after_the_binary_moved() {
    if !require_root() {
        return;
    }
    let root = systemd_image();
    let (bin_dir, bin) = movable_binary();
    let confirmed = {
        let host = Host::new("moved");
        persist_with(&host, &bin, root.path(), &[])
    };
    assert!(confirmed.contains("tcp dport 5622 accept"), "{confirmed}");
    // `cargo clean`: the binary apply ran from is gone.
    drop(bin_dir);
    assert!(!bin.exists());

    let fresh = Netns::new("movedboot");
    assert_eq!(fresh.ruleset(), "");
    let unit = boot_with_unit(&fresh, root.path(), "autofw.service");
    assert!(!unit.contains(bin.to_str().unwrap()), "{unit}");
    assert_eq!(fresh.ruleset(), confirmed);
    // systemctl restart (or nftables.service restarting it): the same rules.
    boot_with_unit(&fresh, root.path(), "autofw.service");
    assert_eq!(fresh.ruleset(), confirmed);
}

/// A blocklist too long for one nft process at boot is persisted in batch
/// files of at most 50,000 elements, each loaded by its own `nft -f` from
/// the unit's one fixed line: a fresh boot gets every element.
#[test]
fn boot_hook_loads_a_large_blocklist_in_batches() {
    if !require_root() {
        return;
    }
    let root = systemd_image();
    let host = Host::new("blboot");
    let list: String = (0..120_000u32)
        .map(|i| format!("{}\n", std::net::Ipv4Addr::from(0x0a00_0000 + 2 * i)))
        .collect();
    std::fs::write(host.dir.path().join("list.txt"), list).unwrap();
    let policy = host.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[blocklist]\nfiles = [\"list.txt\"]\naddresses = [\"203.0.113.0/24\"]\n",
    )
    .unwrap();
    persist_with(
        &host,
        Path::new(autofw_bin()),
        root.path(),
        &["--policy", policy.to_str().unwrap()],
    );
    let batches: Vec<_> = std::fs::read_dir(root.path().join("etc/autofw"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("blocklist-"))
        .collect();
    assert_eq!(
        batches.len(),
        3,
        "120,001 elements in files of at most 50,000: {batches:?}"
    );

    let fresh = Netns::new("blbootfresh");
    boot_with_unit(&fresh, root.path(), "autofw.service");
    // The elements of the sets named `set` or `set_NN` (its hash sets).
    let count = |ns: &Netns, set: &str| {
        let json: serde_json::Value =
            serde_json::from_str(&ns.ok(&["nft", "-j", "list", "table", "inet", "autofw"]))
                .unwrap();
        json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.get("set"))
            .filter(|s| {
                let name = s["name"].as_str().unwrap_or_default();
                name == set
                    || name
                        .strip_prefix(set)
                        .and_then(|n| n.strip_prefix('_'))
                        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|s| s["elem"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    assert_eq!(count(&fresh, "blocklist_v4"), 120_000);
    assert_eq!(count(&fresh, "blocklist_net_v4"), 1);
    let terse = |ns: &Netns| ns.ok(&["nft", "-t", "list", "ruleset"]);
    assert_eq!(terse(&fresh), terse(&host.server));

    // A damaged batch: the rules and the other batches load, the unit
    // fails (so systemd shows it), and status says the sets differ.
    let damaged = root.path().join("etc/autofw/blocklist-0002.nft");
    let batch = std::fs::read_to_string(&damaged).unwrap();
    let first_element = batch.lines().find(|l| l.starts_with('\t')).unwrap();
    std::fs::write(&damaged, batch.replacen(first_element, "\t10.0.0.999,", 1)).unwrap();
    let damaged_boot = Netns::new("blbootdamaged");
    let (_, ran) = run_unit(&damaged_boot, root.path(), "autofw.service");
    let failed: Vec<&str> = ran
        .iter()
        .filter(|(_, may_fail, out)| !may_fail && !out.status.success())
        .map(|(line, _, _)| line.as_str())
        .collect();
    assert!(
        failed.len() == 1 && failed[0].contains("blocklist-*.nft"),
        "only the batch line fails: {failed:?}"
    );
    assert_eq!(terse(&damaged_boot), terse(&host.server));
    // One file of 50,000 did not load, whole: the other 70,001 did.
    assert_eq!(
        count(&damaged_boot, "blocklist_v4") + count(&damaged_boot, "blocklist_net_v4"),
        70_001
    );
    let status = damaged_boot.autofw(&["status", "--state-dir", &host.state()]);
    assert!(
        text(&status.stdout).contains("blocklist-differs"),
        "{}",
        show(&status)
    );
}

#[test]
fn iptables_boot_hook_with_a_blocklist_restores_after_the_binary_moved() {
    if !require_root() {
        return;
    }
    let root = systemd_image();
    let (bin_dir, bin) = movable_binary();
    let confirmed = {
        let host = Host::new("iptmoved");
        persist_with(
            &host,
            &bin,
            root.path(),
            &["--backend", "iptables", "--blocklist", "198.51.100.7"],
        )
    };
    assert!(confirmed.contains("AUTOFW-INPUT"), "{confirmed}");
    drop(bin_dir);
    let unit = std::fs::read_to_string(
        root.path()
            .join("etc/systemd/system/autofw-iptables.service"),
    )
    .unwrap();
    assert_eq!(unit, systemd_unit(Backend::Iptables));
    assert!(root.path().join("etc/autofw/ipsets").exists());

    let fresh = Netns::new("iptmovedboot");
    boot_with_unit(&fresh, root.path(), "autofw-iptables.service");
    let sets = fresh.ok(&["ipset", "list", "-n"]);
    assert!(sets.contains("autofw-"), "{sets}");
    assert_eq!(fresh.ruleset(), confirmed);
    // Twice (a restart, or ifupdown's second interface): the INPUT jump is
    // not added again.
    boot_with_unit(&fresh, root.path(), "autofw-iptables.service");
    assert_eq!(fresh.ruleset(), confirmed);
    assert_eq!(
        fresh
            .ok(&["iptables-save", "-t", "filter"])
            .matches("-j AUTOFW-INPUT")
            .count(),
        1
    );
}

#[test]
fn packaged_unit_is_linked_not_rewritten() {
    if !require_root() {
        return;
    }
    // The image has the package installed: its unit is what `autofw
    // generate units` wrote at build time.
    let root = systemd_image();
    let units = root.path().join("lib/systemd/system");
    let out = Autofw::new(&["generate", "units", units.to_str().unwrap()]).output();
    assert!(out.status.success(), "{}", show(&out));
    let packaged = std::fs::read_to_string(units.join("autofw.service")).unwrap();
    assert_eq!(packaged, systemd_unit(Backend::Nft));

    let host = Host::new("pkgunit");
    let confirmed = persist_with(&host, Path::new(autofw_bin()), root.path(), &[]);
    assert!(
        !root
            .path()
            .join("etc/systemd/system/autofw.service")
            .exists(),
        "apply wrote a unit the package ships"
    );
    let link = root
        .path()
        .join("etc/systemd/system/sysinit.target.wants/autofw.service");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("/lib/systemd/system/autofw.service")
    );
    let manifest = std::fs::read_to_string(root.path().join("etc/autofw/persist.json")).unwrap();
    assert!(!manifest.contains("/lib/systemd"), "{manifest}");

    let fresh = Netns::new("pkgboot");
    boot_with_unit(&fresh, root.path(), "autofw.service");
    assert_eq!(fresh.ruleset(), confirmed);

    // unpersist removes the link and the rules, never the package's unit.
    let out = host
        .server
        .autofw(&["unpersist", "--root", root.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(!root.path().join("etc/autofw/rules.nft").exists());
    assert_eq!(
        std::fs::read_to_string(units.join("autofw.service")).unwrap(),
        packaged
    );
}

#[test]
fn a_manifest_naming_an_unknown_backend_is_exit_3_naming_the_file() {
    if !require_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("etc/autofw");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("persist.json"),
        r#"{"hook": "ifupdown", "installed": [], "persisted_at": 1, "rules": {"backend": "pf", "text": ""}}"#,
    )
    .unwrap();
    let ns = Netns::new("unknown-backend");
    let out = ns.autofw(&["restore", "--root", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(&dir.join("persist.json").display().to_string()) && err.contains("`pf`"),
        "{err}"
    );
    assert_eq!(ns.ruleset(), "");
}

/// ufw or a script loads an accept earlier in boot, for a port autofw keeps
/// closed: autofw's boot hook inserts its INPUT jump first, so the port is
/// still dropped, in both families, after a restart of the unit too.
#[test]
fn iptables_boot_hook_puts_its_jump_before_accepts_loaded_earlier_in_boot() {
    if !require_root() {
        return;
    }
    let root = systemd_image();
    {
        let host = Host::new("iptfirst");
        persist_with(
            &host,
            Path::new(autofw_bin()),
            root.path(),
            &["--backend", "iptables"],
        );
    }
    // The reboot: the same listeners (8080 is not in the scan), and an
    // earlier boot step that accepts 8080 before autofw's unit runs.
    let mut server = Netns::new("iptfirst-boot-s");
    let client = Netns::new("iptfirst-boot-c");
    link(&server, &client);
    let _ssh = Ssh::start(&server);
    server.listen(Some("stray"), &["tcp:0.0.0.0:8080", "tcp:[::]:8080"]);
    for tool in ["iptables", "ip6tables"] {
        server.ok(&[
            tool, "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
        ]);
    }
    for boot in ["boot", "restart"] {
        boot_with_unit(&server, root.path(), "autofw-iptables.service");
        for tool in ["iptables", "ip6tables"] {
            let input = server.ok(&[tool, "-S", "INPUT"]);
            let rules: Vec<&str> = input.lines().filter(|l| l.starts_with("-A")).collect();
            assert_eq!(
                rules,
                [
                    "-A INPUT -j AUTOFW-INPUT",
                    "-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT"
                ],
                "{boot}: {tool}'s INPUT"
            );
        }
        for addr in [SERVER_V4, SERVER_V6] {
            assert_eq!(
                probe_tcp(&client, addr, 8080),
                Probe::Dropped,
                "{boot}: {addr}"
            );
            assert_eq!(
                probe_tcp(&client, addr, 5622),
                Probe::Open,
                "{boot}: {addr}"
            );
        }
    }
}
