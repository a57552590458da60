//! The boot hook's text: the systemd units (and the ifupdown script) that
//! load the confirmed ruleset saved in `/etc/autofw/` before the network
//! comes up. Pure: it returns strings.
//!
//! The hook never runs autofw. It loads the saved files with the firewall's
//! own tools (`nft -f`, `ipset restore`, `iptables-restore --noflush`), so a
//! host keeps its firewall at boot after autofw's binary moved, was upgraded
//! or removed by `cargo clean`. Each unit's text is fixed (it names no path
//! that depends on where autofw was run from), so the Debian package ships
//! exactly what [`systemd_unit`] renders (`autofw generate units`), and
//! `apply --persist` then writes only the rules files and the enabling link
//! (docs/persist.md).

use crate::propose::render_iptables::{DOCKER_USER, INPUT_CHAIN, PUBLISHED_CHAIN};

/// The first comment line of every hook autofw renders: `unpersist` removes
/// a hook file from `/etc` only if it still carries it.
pub(crate) const MARKER: &str =
    "# autofw's boot hook: loads the rules `autofw apply --persist` saved; it never runs autofw.";

/// Where the saved rules live at boot (what `persist` writes).
pub(crate) const NFT_RULES: &str = "/etc/autofw/rules.nft";
pub(crate) const IPTABLES_RULES_V4: &str = "/etc/autofw/rules.v4";
pub(crate) const IPTABLES_RULES_V6: &str = "/etc/autofw/rules.v6";
/// The blocklist sets of the iptables rules (`ipset restore` input), written
/// only with a blocklist.
pub(crate) const IPSETS: &str = "/etc/autofw/ipsets";

/// What one backend's boot hook is: its unit, the files it loads, and the
/// commands that load them. One constant per backend ([`NFT`],
/// [`IPTABLES`]); `record::Backend::boot` picks it.
#[derive(Debug)]
pub(crate) struct BootPlan {
    /// `autofw.service` (nftables) or `autofw-iptables.service`: two fixed
    /// units rather than one rendered per host, so that a package can ship
    /// them.
    pub unit: &'static str,
    /// The saved rules, as seen at boot, in the order of
    /// `record::Rules::boot_texts` (the ipsets file is written only with a
    /// blocklist).
    pub rules_files: &'static [&'static str],
    /// The files named in the unit's description.
    pub loads: &'static str,
    /// What loads the saved rules, in order.
    pub commands: &'static [BootCommand],
}

/// One command the hook runs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BootCommand {
    /// Absolute program path, then its arguments. Fixed strings: no quoting.
    pub argv: &'static [&'static str],
    /// A failure is expected and harmless (systemd's `-` prefix).
    pub may_fail: bool,
    /// Why it is there, for the comment above it.
    pub why: &'static str,
}

/// Delete the INPUT jump (propose's `JUMP_LINE`) in each family
/// (`$iptables`: `iptables` or `ip6tables`).
macro_rules! drop_jump {
    ($iptables:literal) => {
        &[$iptables, "-w", "-D", "INPUT", "-j", INPUT_CHAIN]
    };
}
const DROP_JUMP_V4: &[&str] = drop_jump!("/usr/sbin/iptables");
const DROP_JUMP_V6: &[&str] = drop_jump!("/usr/sbin/ip6tables");

/// Delete the jump from mangle's FORWARD into the published-ports guard
/// (propose's `GUARD_JUMP`), as the INPUT jump is deleted: the restore
/// inserts it.
macro_rules! drop_guard_jump {
    ($iptables:literal) => {
        &[
            $iptables,
            "-w",
            "-t",
            "mangle",
            "-D",
            "FORWARD",
            "-m",
            "conntrack",
            "--ctstate",
            "DNAT",
            "-j",
            PUBLISHED_CHAIN,
        ]
    };
}
const DROP_GUARD_JUMP_V4: &[&str] = drop_guard_jump!("/usr/sbin/iptables");
const DROP_GUARD_JUMP_V6: &[&str] = drop_guard_jump!("/usr/sbin/ip6tables");

/// Delete the DOCKER-USER jump into the published-ports chain that rules
/// saved by an autofw before issue 20 insert (propose's
/// `DOCKER_USER_JUMP`), for the same reason.
macro_rules! drop_docker_jump {
    ($iptables:literal) => {
        &[
            $iptables,
            "-w",
            "-D",
            DOCKER_USER,
            "-m",
            "conntrack",
            "--ctstate",
            "DNAT",
            "-j",
            PUBLISHED_CHAIN,
        ]
    };
}
const DROP_DOCKER_JUMP_V4: &[&str] = drop_docker_jump!("/usr/sbin/iptables");
const DROP_DOCKER_JUMP_V6: &[&str] = drop_docker_jump!("/usr/sbin/ip6tables");

/// Create DOCKER-USER (empty: at boot Docker has not started yet) when the
/// saved rules (`$rules`) jump from it, as rules saved by an autofw before
/// issue 20 do, and only then: `find` runs the second `-exec` only if
/// `grep` found the chain (rules saved since hook the guard into mangle's
/// FORWARD and never name it). Creating, never declaring
/// in the rules file: a declaration would flush Docker's chain on a restart
/// of the unit.
macro_rules! make_docker_user {
    ($rules:literal, $iptables:literal) => {
        &[
            "/usr/bin/find",
            "/etc/autofw",
            "-maxdepth",
            "1",
            "-name",
            $rules,
            "-exec",
            "/usr/bin/grep",
            "-q",
            DOCKER_USER,
            "{}",
            "\\;",
            "-exec",
            $iptables,
            "-w",
            "-N",
            DOCKER_USER,
            "\\;",
        ]
    };
}
const MAKE_DOCKER_USER_V4: &[&str] = make_docker_user!("rules.v4", "/usr/sbin/iptables");
const MAKE_DOCKER_USER_V6: &[&str] = make_docker_user!("rules.v6", "/usr/sbin/ip6tables");

/// Each `/etc/autofw/blocklist-NNNN.nft` loaded by its own `nft -f`; the
/// files that fail are handed to `false` (`-exec ... +` makes find's exit
/// status non-zero when that fails), so every batch is tried and the unit
/// still fails, visibly, if one did not load. No `$`: the quoting and `\;`
/// read the same to systemd and to sh.
const LOAD_BLOCKLIST_BATCHES: &[&str] = &[
    "/usr/bin/find",
    "/etc/autofw",
    "-maxdepth",
    "1",
    "-name",
    "'blocklist-*.nft'",
    "!",
    "-exec",
    "/usr/sbin/nft",
    "-f",
    "{}",
    "\\;",
    "-exec",
    "/usr/bin/false",
    "{}",
    "+",
];

/// nftables' boot hook.
pub(crate) const NFT: BootPlan = BootPlan {
    unit: "autofw.service",
    rules_files: &[NFT_RULES],
    loads: NFT_RULES,
    commands: &[
        BootCommand {
            argv: &["/usr/sbin/nft", "-f", NFT_RULES],
            may_fail: false,
            why: "one transaction that replaces table inet autofw (blocklist sets declared, \
              empty) and touches no other table",
        },
        BootCommand {
            argv: LOAD_BLOCKLIST_BATCHES,
            may_fail: false,
            why: "the blocklist's elements: one nft process a batch file \
              (persist::blocklist_batch_path, at most 50,000 elements each), so none \
              holds a million-entry list; finds nothing without a blocklist; a batch \
              that fails leaves the others loaded and fails the unit",
        },
    ],
};

/// iptables' boot hook.
pub(crate) const IPTABLES: BootPlan = BootPlan {
    unit: "autofw-iptables.service",
    rules_files: &[IPTABLES_RULES_V4, IPTABLES_RULES_V6, IPSETS],
    loads: "/etc/autofw/rules.v4 and /etc/autofw/rules.v6",
    commands: &[
        BootCommand {
            argv: DROP_JUMP_V4,
            may_fail: true,
            why: "drop a jump loaded before (restarted unit, second interface), so the \
              restore below does not add a second one; fails harmlessly when there is none",
        },
        BootCommand {
            argv: DROP_JUMP_V6,
            may_fail: true,
            why: "the same for IPv6",
        },
        BootCommand {
            argv: DROP_GUARD_JUMP_V4,
            may_fail: true,
            why: "drop the jump from mangle's FORWARD into autofw's published-ports \
              guard loaded before, for the same reason; fails harmlessly when there is none",
        },
        BootCommand {
            argv: DROP_GUARD_JUMP_V6,
            may_fail: true,
            why: "the same for IPv6",
        },
        BootCommand {
            argv: DROP_DOCKER_JUMP_V4,
            may_fail: true,
            why: "the same for the jump from Docker's DOCKER-USER that rules saved by an \
              older autofw insert; fails harmlessly when there is none",
        },
        BootCommand {
            argv: DROP_DOCKER_JUMP_V6,
            may_fail: true,
            why: "the same for IPv6",
        },
        BootCommand {
            argv: MAKE_DOCKER_USER_V4,
            may_fail: true,
            why: "create DOCKER-USER when the saved rules jump from it (rules saved by an \
              older autofw) and Docker has not started yet (Docker keeps a chain that \
              exists, and jumps to it first)",
        },
        BootCommand {
            argv: MAKE_DOCKER_USER_V6,
            may_fail: true,
            why: "the same for IPv6",
        },
        BootCommand {
            argv: &["/usr/sbin/ipset", "restore", "-exist", "-file", IPSETS],
            may_fail: true,
            why: "the blocklist sets, before the rules that match them; the file exists \
              only with a blocklist (if these sets fail to load, the rules that match \
              them fail below, and the unit with them)",
        },
        BootCommand {
            argv: &[
                "/usr/sbin/iptables-restore",
                "-w",
                "--noflush",
                IPTABLES_RULES_V4,
            ],
            may_fail: false,
            why: "autofw's AUTOFW-* chains, the INPUT jump (inserted first, before any \
              accept loaded earlier in boot) and the policies; other chains are left \
              as they are",
        },
        BootCommand {
            argv: &[
                "/usr/sbin/ip6tables-restore",
                "-w",
                "--noflush",
                IPTABLES_RULES_V6,
            ],
            may_fail: false,
            why: "the same for IPv6",
        },
    ],
};

/// The systemd unit of a backend: loaded before the network like
/// `nftables.service`, and after it and `netfilter-persistent` (whose
/// `flush ruleset` / full restore would otherwise wipe autofw's rules), and
/// again whenever they restart.
pub(crate) fn systemd_unit(plan: &BootPlan) -> String {
    let mut exec = String::new();
    for command in plan.commands {
        exec.push_str(&wrap_comment(command.why));
        exec.push_str(&format!(
            "ExecStart={}{}\n",
            if command.may_fail { "-" } else { "" },
            command.argv.join(" ")
        ));
    }
    let rules = plan.loads;
    format!(
        "{MARKER}
# Enabled by `autofw apply --confirm --persist` once the rules are confirmed
# (the sysinit.target.wants link); `autofw unpersist` disables it.
[Unit]
Description=autofw firewall: load the confirmed ruleset ({rules})
Documentation=man:autofw-apply(8)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=local-fs.target nftables.service netfilter-persistent.service
PartOf=nftables.service netfilter-persistent.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
{exec}
[Install]
WantedBy=sysinit.target
"
    )
}

/// The ifupdown hook (hosts without systemd), the same commands. It runs
/// before each interface comes up (loading is idempotent) and never fails
/// the interface: a server reached only over the network must come up even
/// if the firewall cannot be loaded.
pub(crate) fn ifupdown_script(plan: &BootPlan) -> String {
    let mut body = String::new();
    for command in plan.commands {
        body.push_str(&wrap_comment(command.why));
        let line = command.argv.join(" ");
        if command.may_fail {
            body.push_str(&format!("{line} 2>/dev/null || true\n"));
        } else {
            body.push_str(&format!("{line} || failed \"{line}\"\n"));
        }
    }
    format!(
        "#!/bin/sh
{MARKER}
# ifupdown runs this before each interface comes up; loading again is harmless.
failed() {{
    echo \"autofw: '$1' failed; interface $IFACE comes up without autofw's rules\" >&2
    exit 0
}}
{body}exit 0
"
    )
}

/// `text` as `# ` comment lines of at most about 76 columns.
fn wrap_comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 76 && line != "#" {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_unit_loads_the_saved_file_before_the_network_and_never_runs_autofw() {
        let unit = systemd_unit(&NFT);
        assert!(unit.contains("Before=network-pre.target"));
        assert!(unit.contains("Wants=network-pre.target"));
        assert!(
            unit.contains("After=local-fs.target nftables.service netfilter-persistent.service")
        );
        let exec: Vec<&str> = unit
            .lines()
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .collect();
        assert_eq!(
            exec,
            [
                "/usr/sbin/nft -f /etc/autofw/rules.nft",
                "/usr/bin/find /etc/autofw -maxdepth 1 -name 'blocklist-*.nft' ! -exec /usr/sbin/nft -f {} \\; -exec /usr/bin/false {} +"
            ]
        );
        assert!(unit.starts_with(MARKER));
    }

    #[test]
    fn iptables_unit_loads_sets_then_both_families_without_flushing() {
        let unit = systemd_unit(&IPTABLES);
        let exec: Vec<&str> = unit
            .lines()
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .collect();
        assert_eq!(
            exec,
            [
                "-/usr/sbin/iptables -w -D INPUT -j AUTOFW-INPUT",
                "-/usr/sbin/ip6tables -w -D INPUT -j AUTOFW-INPUT",
                "-/usr/sbin/iptables -w -t mangle -D FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED",
                "-/usr/sbin/ip6tables -w -t mangle -D FORWARD -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED",
                "-/usr/sbin/iptables -w -D DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED",
                "-/usr/sbin/ip6tables -w -D DOCKER-USER -m conntrack --ctstate DNAT -j AUTOFW-PUBLISHED",
                "-/usr/bin/find /etc/autofw -maxdepth 1 -name rules.v4 -exec /usr/bin/grep -q DOCKER-USER {} \\; -exec /usr/sbin/iptables -w -N DOCKER-USER \\;",
                "-/usr/bin/find /etc/autofw -maxdepth 1 -name rules.v6 -exec /usr/bin/grep -q DOCKER-USER {} \\; -exec /usr/sbin/ip6tables -w -N DOCKER-USER \\;",
                "-/usr/sbin/ipset restore -exist -file /etc/autofw/ipsets",
                "/usr/sbin/iptables-restore -w --noflush /etc/autofw/rules.v4",
                "/usr/sbin/ip6tables-restore -w --noflush /etc/autofw/rules.v6",
            ]
        );
    }

    #[test]
    fn the_iptables_unit_names_the_files_it_loads() {
        assert_eq!(
            IPTABLES.loads,
            format!("{IPTABLES_RULES_V4} and {IPTABLES_RULES_V6}")
        );
        assert_eq!(NFT.loads, NFT_RULES);
    }

    #[test]
    fn no_command_names_autofw_itself() {
        for plan in [&NFT, &IPTABLES] {
            for command in plan.commands {
                assert!(
                    command.argv[0].starts_with("/usr/sbin/") || command.argv[0] == "/usr/bin/find",
                    "{command:?}"
                );
                assert!(!command.argv[0].ends_with("/autofw"), "{command:?}");
            }
        }
    }

    #[test]
    fn script_never_fails_the_interface() {
        let script = ifupdown_script(&NFT);
        assert!(script.contains(
            "/usr/sbin/nft -f /etc/autofw/rules.nft || failed \"/usr/sbin/nft -f /etc/autofw/rules.nft\""
        ));
        assert!(script.trim_end().ends_with("exit 0"));
        let script = ifupdown_script(&IPTABLES);
        assert!(script.contains("-D INPUT -j AUTOFW-INPUT 2>/dev/null || true"));
    }

    #[test]
    fn comments_wrap() {
        let long = "word ".repeat(40);
        for line in wrap_comment(&long).lines() {
            assert!(line.len() <= 80, "{line}");
            assert!(line.starts_with("# "));
        }
    }
}
