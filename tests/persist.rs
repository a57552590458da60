//! `apply --persist`, `autofw restore` and `autofw unpersist`, with every
//! boot file under a temporary `--root`: persisted only after confirmation,
//! restored exactly in a fresh namespace ("the reboot"), removed exactly.

use crate::apply::Host;
use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
        assert_eq!(crate::apply::finish(apply).status.code(), Some(0));
        confirmed = host.server.ruleset();
        assert!(confirmed.contains("tcp dport 5622 accept"), "{confirmed}");
        let record =
            std::fs::read_to_string(Path::new(&host.state()).join("applied.json")).unwrap();
        assert!(record.contains("\"persisted\": true"), "{record}");
    } // the namespace is gone: "the reboot"
    let rules = root.path().join("etc/autofw/rules.nft");
    assert_eq!(mode(&rules), 0o600);
    assert_eq!(mode(&root.path().join("etc/autofw")), 0o700);
    // No systemd in this root: the ifupdown hook, which runs `autofw restore`.
    let hook = std::fs::read_to_string(root.path().join("etc/network/if-pre-up.d/autofw")).unwrap();
    assert!(
        hook.contains(&format!("'{}' restore", autofw_bin())),
        "{hook}"
    );
    let fresh = Netns::new("reboot");
    assert_eq!(fresh.ruleset(), "");
    let out = fresh.autofw(&["restore", "--root", r]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fresh.ruleset(), confirmed);
    // Idempotent: ifupdown runs the hook once per interface.
    assert!(fresh.autofw(&["restore", "--root", r]).status.success());
    assert_eq!(fresh.ruleset(), confirmed);
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
        assert!(host.confirm().status.success());
        assert_eq!(crate::apply::finish(apply).status.code(), Some(0));
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
    for round in 0..2 {
        let apply = host.apply_in_background(&[
            "--timeout",
            "30",
            "--persist",
            "--root",
            r.to_str().unwrap(),
        ]);
        assert!(host.confirm().status.success());
        assert_eq!(
            crate::apply::finish(apply).status.code(),
            Some(0),
            "round {round}"
        );
    }
    let unit = std::fs::read_to_string(r.join("etc/systemd/system/autofw.service")).unwrap();
    assert!(unit.contains("Before=network-pre.target"), "{unit}");
    assert!(unit.contains("Wants=network-pre.target"), "{unit}");
    assert!(
        unit.contains(&format!("ExecStart=\"{}\" restore", autofw_bin())),
        "{unit}"
    );
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
        r#"{"backend": "pf", "hook": "ifupdown", "installed": [], "persisted_at": 1}"#,
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
