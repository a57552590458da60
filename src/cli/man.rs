//! Man pages from the clap definitions: `autofw(8)` and one page per
//! subcommand (`autofw-apply(8)`), as git and ripgrep do. clap_mangen renders
//! name, synopsis, description and options from the same doc comments as
//! `--help`; this module adds what a man page has and `--help` does not:
//! EXIT STATUS, FILES, EXAMPLES and SEE ALSO. Pure: returns roff text.

use clap::Command;
use roff::{Roff, bold, italic, roman};

/// Section 8: autofw administers the system and runs as root.
pub(crate) const SECTION: &str = "8";

/// The exit codes every command shares (docs/design.md).
const EXIT_STATUS: [(&str, &str); 5] = [
    ("0", "success: the scan ran, the rules were kept, no drift"),
    (
        "1",
        "a negative answer: drift found, or the rules were rolled back",
    ),
    (
        "2",
        "bad input: a flag, service spec, policy file or saved scan that does not parse",
    ),
    (
        "3",
        "the host could not do it: not root, nft/iptables missing, nft refused the rules",
    ),
    (
        "4",
        "refused for safety: lockout guard, another apply running, operator said no",
    ),
];

/// Files, and which pages list them.
const FILES: [(&str, &str, &[&str]); 9] = [
    (
        "/var/lib/autofw/",
        "state directory (0700): the ruleset saved before the last apply, the lock, the rollback window, the apply record",
        &[
            "autofw", "apply", "confirm", "rollback", "status", "disable",
        ],
    ),
    (
        "/etc/autofw/rules.nft",
        "the confirmed nftables ruleset, loaded at boot",
        &[
            "autofw",
            "apply",
            "confirm",
            "restore",
            "unpersist",
            "disable",
        ],
    ),
    (
        "/etc/autofw/rules.v4, /etc/autofw/rules.v6, /etc/autofw/ipsets",
        "the confirmed iptables rulesets and blocklist sets, loaded at boot",
        &[
            "autofw",
            "apply",
            "confirm",
            "restore",
            "unpersist",
            "disable",
        ],
    ),
    (
        "/etc/autofw/persist.json",
        "what --persist installed, so that unpersist removes exactly that",
        &["apply", "restore", "unpersist"],
    ),
    (
        "/lib/systemd/system/autofw.service, autofw-iptables.service",
        "the boot hooks: they load the files above with nft or iptables-restore, never autofw; apply --persist enables one (the sysinit.target.wants link)",
        &["autofw", "apply", "confirm", "unpersist", "disable"],
    ),
    (
        "/etc/network/if-pre-up.d/autofw",
        "the boot hook on hosts without systemd (ifupdown)",
        &["apply", "unpersist"],
    ),
    (
        "/etc/autofw/policy.toml",
        "the policy: read by propose, apply and status when it exists (--policy FILE for another, --no-policy for none); edited by allow, block, limit, source and forget; format in /usr/share/doc/autofw/policy.md",
        &[
            "autofw", "propose", "apply", "status", "allow", "block", "limit", "source", "forget",
        ],
    ),
    (
        "/lib/systemd/system/autofw-status.timer, autofw-status.service",
        "write status --format prometheus every 5 minutes to /var/lib/prometheus/node-exporter/autofw.prom (disabled until enabled)",
        &["autofw", "status"],
    ),
    (
        "/run/systemd/journal, /dev/kmsg",
        "where log reads the kernel's \"autofw drop:\" lines",
        &["log"],
    ),
];

/// Examples per page (command line, what it does).
fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page {
        "autofw" => &[
            ("autofw scan", "what listens, and who can reach it"),
            ("autofw propose > rules.nft", "review the ruleset"),
            ("autofw apply", "dry run: the plan and its diff"),
            (
                "autofw apply --confirm --persist",
                "load it; it rolls back in 60 s unless confirmed",
            ),
            (
                "autofw confirm",
                "from a NEW ssh login: keep the rules (and persist them)",
            ),
            ("autofw status", "later, from cron: exit 1 on drift"),
        ],
        "scan" => &[
            ("autofw scan", "public, private and link-local listeners"),
            ("autofw scan --all", "loopback-only ones too"),
            (
                "autofw scan --json > host.json",
                "for scripts, or propose --from",
            ),
        ],
        "propose" => &[
            (
                "autofw propose > rules.nft && nft -c -f rules.nft",
                "draft and check",
            ),
            (
                "autofw propose --allow https --block ftp --limit ssh",
                "choices on the command line",
            ),
            (
                "autofw propose --policy /etc/autofw/policy.toml",
                "choices in a file kept in version control",
            ),
            (
                "autofw propose --format iptables --ipset sets.ipset",
                "for hosts without nftables",
            ),
        ],
        "apply" => &[
            ("autofw apply", "dry run"),
            (
                "autofw apply --confirm --persist",
                "then, from a new login: autofw confirm",
            ),
            (
                "autofw apply --confirm --allow https --timeout 120",
                "a longer window",
            ),
            (
                "autofw apply --confirm --backend iptables",
                "hosts without nftables",
            ),
        ],
        "allow" => &[
            ("autofw allow https", "open it in /etc/autofw/policy.toml"),
            ("autofw allow 8443/tcp,9100/tcp", "several at once"),
        ],
        "block" => &[("autofw block ftp", "keep it closed even while it listens")],
        "limit" => &[(
            "autofw limit ssh",
            "like ufw limit: 5 at once, then 10 a minute per source",
        )],
        "source" => &[(
            "autofw source ssh=192.0.2.0/24,2001:db8:1::/48",
            "ssh only from the admin networks",
        )],
        "forget" => &[(
            "autofw forget 8443/tcp",
            "the policy says nothing of it any more",
        )],
        "confirm" => &[("autofw confirm", "from a new SSH login, within the window")],
        "rollback" => &[("autofw rollback", "the ruleset from before the last apply")],
        "restore" => &[(
            "autofw restore",
            "load the persisted rules now (the boot hook does it with nft itself)",
        )],
        "unpersist" => &[(
            "autofw unpersist",
            "nothing of autofw's is loaded at the next boot",
        )],
        "disable" => &[(
            "autofw disable",
            "no autofw rules now nor at boot; `autofw apply --confirm` brings them back",
        )],
        "status" => &[
            (
                "autofw status",
                "exit 1 on drift, each finding with its fix",
            ),
            (
                "autofw status --json > /run/autofw-status.json || alert",
                "for cron or a monitor",
            ),
            (
                "autofw status --format prometheus --out /var/lib/prometheus/node-exporter/autofw.prom",
                "for node_exporter; or: systemctl enable --now autofw-status.timer",
            ),
        ],
        "log" => &[
            (
                "autofw log",
                "drops of the last hour, top ports and sources",
            ),
            ("autofw log --since -24h --top 20", "a longer look"),
            ("autofw log --file /var/log/kern.log", "a saved log"),
        ],
        "completions" => &[(
            "autofw completions bash > /etc/bash_completion.d/autofw",
            "after cargo install (the package ships them)",
        )],
        _ => &[],
    }
}

/// Every page: (file name, roff text). `cli` is `Cli::command()`, built
/// here (the subcommands' deferred arguments with it).
pub(crate) fn pages(cli: Command) -> Vec<(String, String)> {
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let subcommands: Vec<Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut pages = vec![page(&cli, "autofw", &subcommands)];
    for sub in &subcommands {
        pages.push(page(sub, sub.get_name(), &[]));
    }
    pages
}

/// One page: clap_mangen's sections, then ours.
fn page(cmd: &Command, key: &str, subcommands: &[Command]) -> (String, String) {
    let man = clap_mangen::Man::new(cmd.clone())
        .section(SECTION)
        .manual("System Administration");
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = synopsis(cmd, key).to_writer(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    if !subcommands.is_empty() {
        let _ = man.render_subcommands_section(&mut out);
    }
    let mut roff = Roff::new();
    exit_status(&mut roff, key);
    files(&mut roff, key);
    examples_section(&mut roff, key);
    see_also(&mut roff, key, subcommands);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(format!("autofw {}", env!("CARGO_PKG_VERSION")))]);
    let _ = roff.to_writer(&mut out);
    (
        man.get_filename(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

/// SYNOPSIS with each option's argument named (`[--state-dir DIR]`,
/// `[--allow SPEC]...`), which clap_mangen's leaves out (`[--state-dir]`).
fn synopsis(cmd: &Command, key: &str) -> Roff {
    let name = if key == "autofw" {
        "autofw".to_string()
    } else {
        format!("autofw {key}")
    };
    let mut line = vec![bold(name)];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let takes_value = arg.get_action().takes_values();
        let repeats = matches!(arg.get_action(), clap::ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        // A value from a list (`--backend nft|iptables`) shows the list.
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        let value = match arg.get_value_names() {
            _ if !choices.is_empty() && choices.len() <= 4 => choices.join("|"),
            Some(names) => names.join(" "),
            None => arg.get_id().as_str().to_uppercase(),
        };
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.push(roman(format!(" {open}")));
        if arg.is_positional() {
            line.push(italic(value));
        } else {
            let flag = match (arg.get_short(), arg.get_long()) {
                (Some(short), Some(long)) => format!("-{short}|--{long}"),
                (None, Some(long)) => format!("--{long}"),
                (Some(short), None) => format!("-{short}"),
                (None, None) => continue,
            };
            line.push(bold(flag));
            if takes_value {
                line.push(roman(" "));
                line.push(italic(value));
            }
        }
        line.push(roman(close));
        if repeats {
            line.push(roman("..."));
        }
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

fn exit_status(roff: &mut Roff, key: &str) {
    roff.control("SH", ["EXIT STATUS"]);
    match key {
        "status" => {
            roff.text([roman(
                "0: no drift; 1: drift found (also when nothing was ever applied). \
                 With --format prometheus: 0 whenever the metrics were written, drift or not.",
            )]);
        }
        "log" => {
            roff.text([roman("0 when the log was read (also with no drops in it).")]);
        }
        _ => {}
    }
    for (code, meaning) in EXIT_STATUS {
        item(roff, code, meaning);
    }
}

fn files(roff: &mut Roff, key: &str) {
    let listed: Vec<_> = FILES
        .iter()
        .filter(|(_, _, on)| on.contains(&key))
        .collect();
    if listed.is_empty() {
        return;
    }
    roff.control("SH", ["FILES"]);
    for (path, what, _) in listed {
        item(roff, path, what);
    }
}

fn examples_section(roff: &mut Roff, key: &str) {
    let list = examples(key);
    if list.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in list {
        item(roff, command, what);
    }
}

fn see_also(roff: &mut Roff, key: &str, subcommands: &[Command]) {
    roff.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = if key == "autofw" {
        subcommands
            .iter()
            .map(|s| format!("autofw-{}({SECTION})", s.get_name()))
            .collect()
    } else {
        vec![format!("autofw({SECTION})")]
    };
    refs.extend(["nft(8)", "iptables-restore(8)"].map(String::from));
    roff.text([roman(refs.join(", "))]);
    roff.control("PP", []);
    roff.text([roman(
        "The documentation in /usr/share/doc/autofw/ (design, policy file, status findings, JSON schemas).",
    )]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synopsis_names_each_options_argument() {
        let pages = pages(<crate::cli::Cli as clap::CommandFactory>::command());
        let page = |name: &str| {
            pages
                .iter()
                .find(|(file, _)| file == name)
                .map(|(_, text)| text.clone())
                .unwrap()
        };
        let confirm = page("autofw-confirm.8");
        assert!(
            confirm.contains("[\\fB\\-\\-state\\-dir\\fR \\fIDIR\\fR]"),
            "{confirm}"
        );
        let apply = page("autofw-apply.8");
        for option in [
            "allow\\fR \\fISPEC\\fR]...",
            "timeout\\fR \\fISECONDS\\fR]",
            "backend\\fR \\fInft|iptables\\fR]",
            "confirm\\fR]",
        ] {
            assert!(apply.contains(option), "{option} in {apply}");
        }
        let allow = page("autofw-allow.8");
        assert!(
            allow.contains("\\fIspec\\fR") || allow.contains("\\fISPEC\\fR..."),
            "{allow}"
        );
    }
}
