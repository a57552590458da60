//! Whom `propose` trusts to open a port without being asked: the one place
//! that decides it, so Docker's published ports and every other caller
//! judge owners the same way. Pure: the scan carries the facts (uids, the
//! executable, `UID_MIN`), this module only reasons about them.
//!
//! An expert opens a port for a daemon the administrator installed, not for
//! whatever a user left listening. On Linux that line is the account that
//! created the socket: system accounts (root, and uids below `UID_MIN` that
//! packages create) start daemons; ordinary users (from `UID_MIN` up) and
//! `nobody` do not. Which account a daemon's processes run as *later* does
//! not move the line: nginx's workers, OpenVPN with `user nobody`, dnsmasq
//! with `user=dnsmasq` drop to an unprivileged account after root created
//! their sockets, as hardening guides ask ([`judge_owners`] lists the
//! cases). And a process's name proves nothing by itself: any user can call
//! a process `sshd` with `prctl(PR_SET_NAME)`, so a name is taken from the
//! program only when the executable agrees.

use crate::model::{Listener, Owner};
use std::collections::HashMap;

/// `UID_MIN` when `/etc/login.defs` does not say (Debian, Ubuntu, Fedora,
/// Arch all ship 1000).
pub(crate) const DEFAULT_UID_MIN: u32 = 1000;

/// `nobody`: the account for work that should have no privileges, which
/// makes what it runs the least trusted of all, whatever `UID_MIN` says.
pub(crate) const NOBODY: u32 = 65534;

/// Programs that run whatever script they are given: that one is called
/// `sshd` says nothing about what it runs. Matched on the executable's
/// basename, versions included (`python3.11`, `perl5.36.0`).
const INTERPRETERS: &[&str] = &[
    "python", "pypy", "perl", "ruby", "node", "nodejs", "deno", "bun", "java", "php", "lua",
    "luajit", "tclsh", "wish", "Rscript", "guile", "sh", "bash", "dash", "zsh", "ksh", "mksh",
    "fish", "busybox", "socat", "ncat", "nc", "netcat", "gawk", "awk",
];

/// The `UID_MIN` of a `/etc/login.defs` text, if it sets one.
pub(crate) fn uid_min_of_login_defs(text: &str) -> Option<u32> {
    // Only the lines that hold the word are parsed: login.defs is some 300
    // lines, nearly all comments.
    crate::services::lines_holding(text, "UID_MIN").find_map(|line| {
        let mut fields = line.split('#').next()?.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some("UID_MIN"), Some(value)) => value.parse().ok(),
            _ => None,
        }
    })
}

/// uid → account name, from an `/etc/passwd` text (lines that do not parse
/// are skipped: the file is the host's, not the operator's input).
pub(crate) fn users_of_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (uid, name.to_string()))
        })
        .collect()
}

/// Is `uid` an account that daemons run as: root, or a system account below
/// `uid_min`, and never `nobody`?
pub(crate) fn is_system_account(uid: u32, uid_min: u32) -> bool {
    uid != NOBODY && (uid == 0 || uid < uid_min)
}

/// Is this executable (a basename) an interpreter, with or without a version?
pub(crate) fn is_interpreter(basename: &str) -> bool {
    INTERPRETERS.iter().any(|name| {
        basename
            .strip_prefix(name)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// Why `owner`'s program name cannot name a service, or `None` when it can:
/// the name (`comm`, cut by the kernel at 15 bytes) is the basename of
/// `/proc/PID/exe`, that file is root-owned and writable by no one else,
/// and it is not an interpreter. Daemons that retitle themselves
/// (`sendmail: MTA`) are matched on the head of the title.
pub(crate) fn program_name_problem(owner: &Owner) -> Option<String> {
    let program = &owner.program;
    name_problem(owner).map(|problem| match problem {
        NameProblem::ExecutableUnread => {
            format!("its executable could not be read, so the name `{program}` is unproven")
        }
        NameProblem::Interpreter(path) => {
            format!("it is the interpreter {path}, which runs any script under any name")
        }
        NameProblem::NotItsExecutable(path) => format!(
            "the name `{program}` is not its executable's ({path}); any process can take a name"
        ),
        NameProblem::NotRootOnly(path) => format!(
            "its executable {path} is not root's alone (owned by another user, or writable by group or others)"
        ),
    })
}

/// Does `owner`'s program name name a service ([`program_name_problem`]
/// finds nothing against it)? Without putting the reason into words.
pub(crate) fn proves_its_name(owner: &Owner) -> bool {
    name_problem(owner).is_none()
}

/// `name` as the kernel keeps it for a comm: its first 15 bytes.
fn comm_cut(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(15)]
}

/// What stands against a program name, with the executable's path.
enum NameProblem<'a> {
    ExecutableUnread,
    Interpreter(&'a str),
    NotItsExecutable(&'a str),
    NotRootOnly(&'a str),
}

fn name_problem(owner: &Owner) -> Option<NameProblem<'_>> {
    let Some(exe) = owner.exe.as_deref() else {
        return Some(NameProblem::ExecutableUnread);
    };
    // A replaced binary reads as `/usr/sbin/sshd (deleted)`: it was still
    // that file, so judge the name it had.
    let path = exe.strip_suffix(" (deleted)").unwrap_or(exe);
    let basename = path.rsplit('/').next().unwrap_or(path);
    if is_interpreter(basename) {
        return Some(NameProblem::Interpreter(path));
    }
    let head = owner
        .program
        .split([':', ' '])
        .next()
        .unwrap_or(&owner.program);
    if comm_cut(basename) != comm_cut(&owner.program) && comm_cut(basename) != comm_cut(head) {
        return Some(NameProblem::NotItsExecutable(path));
    }
    if !owner.exe_root_only {
        return Some(NameProblem::NotRootOnly(path));
    }
    None
}

/// The verdict on who holds a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerTrust {
    /// The administrator's: opened by default.
    System,
    /// The scan recorded no uids (saved before autofw did): judged as before,
    /// on the service alone.
    Unrecorded,
    /// A user or `nobody` created the socket, or holds a root-created one
    /// with no program of the administrator's beside it: left closed unless
    /// allowed.
    NotSystem { reason: String },
}

/// Whom to trust: may `propose` open this listener without being asked?
///
/// The line is drawn at the socket's creation, which the socket's uid
/// records (the kernel sets it from the creator's fsuid and never changes
/// it): a socket created by an ordinary user (from `uid_min` up) or by
/// `nobody` is never opened unasked, whoever holds it now. A socket created
/// by root or a system account is the administrator's when every process
/// holding it runs as a system account, or when one of them runs a program
/// that proves its name ([`program_name_problem`]: a root-owned,
/// non-interpreter executable of that name): then the holders that run as
/// `nobody`, `www-data` or any other account dropped to it after root
/// created the socket, as hardening guides ask, and do not demote it.
///
/// The cases this decides, each a unit test below:
/// - nginx without a `user` line: the master (root) creates 80 and 443,
///   the workers run as `nobody` and hold them too: opened (the master's
///   and the workers' `/usr/sbin/nginx` proves the name).
/// - OpenVPN with `user nobody` / `group nogroup`: root creates 1194, then
///   the one process becomes `nobody`: opened (`/usr/sbin/openvpn`).
/// - dnsmasq with `user=dnsmasq`: root creates 53 and 67, the process
///   becomes the `dnsmasq` system account: opened.
/// - a systemd socket unit whose service has `User=alice`: PID 1 (root,
///   `/usr/lib/systemd/systemd`) created the socket and keeps holding it:
///   opened, as the unit file is root's to write.
/// - the impostor: a process of `nobody` (or of a user) that creates its own
///   socket, whatever it calls itself and whatever executable it runs: its
///   socket's uid is 65534 (or the user's), closed.
/// - a root-created socket held only by a `nobody` or user process whose
///   name nothing proves (an interpreter, a program in a home directory):
///   closed, as nothing shows it is the administrator's daemon.
///
/// With no readable owner (a kernel socket, an unreadable process) the
/// socket's uid decides. A scan without uids (`uid_min` or the socket's uid
/// missing) is [`OwnerTrust::Unrecorded`]. The reason names the account,
/// for the operator deciding to `--allow` it.
pub(crate) fn judge_owners(listener: &Listener, uid_min: Option<u32>) -> OwnerTrust {
    let (Some(uid_min), Some(socket_uid)) = (uid_min, listener.uid) else {
        return OwnerTrust::Unrecorded;
    };
    let account = |uid: u32, user: Option<&str>| match user {
        Some(name) => format!("user {name} (uid {uid})"),
        None => format!("uid {uid}"),
    };
    let why_not = |uid: u32| {
        if uid == NOBODY {
            "the account for unprivileged work, never a daemon an administrator installed"
                .to_string()
        } else {
            format!("not a system account (UID_MIN is {uid_min})")
        }
    };
    if !is_system_account(socket_uid, uid_min) {
        return OwnerTrust::NotSystem {
            reason: format!(
                "socket created by {}: {}",
                account(socket_uid, listener.user.as_deref()),
                why_not(socket_uid)
            ),
        };
    }
    let stranger = listener.owners.iter().find(|owner| {
        owner
            .uid
            .is_some_and(|uid| !is_system_account(uid, uid_min))
    });
    let Some(stranger) = stranger else {
        return OwnerTrust::System;
    };
    if listener.owners.iter().any(proves_its_name) {
        // The administrator's program, some of whose processes dropped
        // privileges after root (or a system account) created the socket.
        return OwnerTrust::System;
    }
    let uid = stranger.uid.unwrap_or_default();
    OwnerTrust::NotSystem {
        reason: format!(
            "run by {} as {}: {}; the socket is {}'s, but no process holding it runs \
             a root-owned program of its own name",
            stranger.program,
            account(uid, stranger.user.as_deref()),
            why_not(uid),
            listener
                .user
                .as_deref()
                .map_or_else(|| format!("uid {socket_uid}"), |name| name.to_string()),
        ),
    }
}

/// The program names of `listener` that may name it. Owners recorded with
/// their executables must prove their name ([`program_name_problem`]); a
/// scan without owner details (older `--json`) keeps its process names.
pub(crate) fn trusted_programs(listener: &Listener) -> Vec<&str> {
    if listener.owners.is_empty() {
        return listener
            .process
            .split(',')
            .filter(|p| !p.is_empty())
            .collect();
    }
    listener
        .owners
        .iter()
        .filter(|owner| proves_its_name(owner))
        .map(|owner| owner.program.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exposure, Proto};

    fn owner(program: &str, uid: u32, exe: &str, root_only: bool) -> Owner {
        Owner {
            pid: 100,
            program: program.to_string(),
            uid: Some(uid),
            user: None,
            exe: Some(exe.to_string()),
            exe_root_only: root_only,
        }
    }

    fn listener(uid: Option<u32>, owners: Vec<Owner>) -> Listener {
        Listener {
            service: "unknown".into(),
            process: owners
                .iter()
                .map(|o| o.program.clone())
                .collect::<Vec<_>>()
                .join(","),
            pids: owners.iter().map(|o| o.pid).collect(),
            uid,
            owners,
            ..Listener::bare(
                Proto::Tcp,
                "0.0.0.0".parse().unwrap(),
                3000,
                Exposure::Public,
            )
        }
    }

    #[test]
    fn login_defs_and_passwd() {
        let defs = "# UID_MIN 5\nUID_MAX\t\t60000\nUID_MIN\t\t 500 # local\nSYS_UID_MIN 100\n";
        assert_eq!(uid_min_of_login_defs(defs), Some(500));
        assert_eq!(uid_min_of_login_defs("UID_MIN lots\n"), None);
        assert_eq!(uid_min_of_login_defs(""), None);
        // Only a line that sets it counts; the first that parses wins.
        assert_eq!(
            uid_min_of_login_defs("SYS_UID_MIN 100\nUID_MIN bad\r\nUID_MIN 600\nUID_MIN 700"),
            Some(600)
        );
        assert_eq!(uid_min_of_login_defs("x\nUID_MIN 900"), Some(900));
        let users = users_of_passwd(
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\nbad\n:x:5:5::/:/bin/sh\n",
        );
        assert_eq!(users[&0], "root");
        assert_eq!(users[&1000], "alice");
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn system_accounts() {
        assert!(is_system_account(0, 1000));
        assert!(is_system_account(110, 1000));
        assert!(!is_system_account(1000, 1000));
        assert!(!is_system_account(NOBODY, 1000));
        // A host whose UID_MIN is above nobody's uid still never trusts nobody.
        assert!(!is_system_account(NOBODY, 70000));
        assert!(
            is_system_account(0, 0),
            "root is root whatever UID_MIN says"
        );
    }

    #[test]
    fn interpreters_with_versions() {
        for name in [
            "python3",
            "python3.11",
            "perl",
            "perl5.36.0",
            "node",
            "java",
            "bash",
            "sh",
        ] {
            assert!(is_interpreter(name), "{name}");
        }
        for name in ["sshd", "nginx", "python3-x", "shd", "nodeexporter", "javad"] {
            assert!(!is_interpreter(name), "{name}");
        }
    }

    #[test]
    fn a_name_needs_its_own_root_only_executable() {
        assert_eq!(
            program_name_problem(&owner("sshd", 0, "/usr/sbin/sshd", true)),
            None
        );
        // comm is cut at 15 bytes; daemons retitle themselves.
        assert_eq!(
            program_name_problem(&owner(
                "systemd-resolve",
                0,
                "/usr/lib/systemd/systemd-resolved",
                true
            )),
            None
        );
        assert_eq!(
            program_name_problem(&owner(
                "sendmail: MTA:",
                0,
                "/usr/lib/sm.bin/sendmail",
                true
            )),
            None
        );
        let python = program_name_problem(&owner("sshd", 0, "/usr/bin/python3.11", true)).unwrap();
        assert!(
            python.contains("interpreter /usr/bin/python3.11"),
            "{python}"
        );
        let other = program_name_problem(&owner("sshd", 0, "/usr/bin/redis-server", true)).unwrap();
        assert!(other.contains("not its executable's"), "{other}");
        let home = program_name_problem(&owner("sshd", 1000, "/home/alice/sshd", false)).unwrap();
        assert!(home.contains("not root's alone"), "{home}");
        let mut unread = owner("sshd", 0, "/x", true);
        unread.exe = None;
        assert!(
            program_name_problem(&unread)
                .unwrap()
                .contains("could not be read")
        );
        assert_eq!(
            program_name_problem(&owner("sshd", 0, "/usr/sbin/sshd (deleted)", true)),
            None
        );
    }

    fn with_pid(mut owner: Owner, pid: u32) -> Owner {
        owner.pid = pid;
        owner
    }

    fn not_system(verdict: OwnerTrust) -> String {
        match verdict {
            OwnerTrust::NotSystem { reason } => reason,
            other => panic!("expected NotSystem, got {other:?}"),
        }
    }

    const MIN: Option<u32> = Some(1000);

    /// nginx with no `user` line: the master creates the sockets as root,
    /// the workers (holding them too) run as nobody, its compiled-in default.
    #[test]
    fn nginx_default_workers_as_nobody() {
        let master = owner("nginx", 0, "/usr/sbin/nginx", true);
        let worker = with_pid(owner("nginx", NOBODY, "/usr/sbin/nginx", true), 101);
        let l = listener(Some(0), vec![master, worker.clone(), with_pid(worker, 102)]);
        assert_eq!(judge_owners(&l, MIN), OwnerTrust::System);
        // Debian's `user www-data;`: the same, with a system account.
        let www = owner("nginx", 33, "/usr/sbin/nginx", true);
        let l = listener(
            Some(0),
            vec![owner("nginx", 0, "/usr/sbin/nginx", true), www],
        );
        assert_eq!(judge_owners(&l, MIN), OwnerTrust::System);
    }

    /// OpenVPN with `user nobody` / `group nogroup`: one process, root when
    /// it created 1194/udp, nobody ever since.
    #[test]
    fn openvpn_user_nobody() {
        let openvpn = owner("openvpn", NOBODY, "/usr/sbin/openvpn", true);
        assert_eq!(
            judge_owners(&listener(Some(0), vec![openvpn]), MIN),
            OwnerTrust::System
        );
    }

    /// dnsmasq with `user=dnsmasq`: root creates 53 and 67, the process
    /// becomes a system account.
    #[test]
    fn dnsmasq_user_dnsmasq() {
        let dnsmasq = owner("dnsmasq", 108, "/usr/sbin/dnsmasq", true);
        assert_eq!(
            judge_owners(&listener(Some(0), vec![dnsmasq]), MIN),
            OwnerTrust::System
        );
    }

    /// A socket unit: PID 1 creates the socket as root and keeps it; the
    /// service it starts with `User=alice` (a program in her home) holds it
    /// as well. The unit file is root's to write: opened.
    #[test]
    fn socket_unit_passing_roots_socket_to_a_user_service() {
        let systemd = with_pid(owner("systemd", 0, "/usr/lib/systemd/systemd", true), 1);
        let app = owner("app", 1000, "/home/alice/app", false);
        assert_eq!(
            judge_owners(&listener(Some(0), vec![systemd, app.clone()]), MIN),
            OwnerTrust::System
        );
        // Without PID 1 beside it, nothing proves the user's process is the
        // administrator's: closed, naming the account.
        assert_eq!(
            not_system(judge_owners(&listener(Some(0), vec![app]), MIN)),
            "run by app as uid 1000: not a system account (UID_MIN is 1000); the socket is \
             uid 0's, but no process holding it runs a root-owned program of its own name"
        );
    }

    /// The impostor: nobody creates its own socket. Neither a name, nor an
    /// interpreter calling itself sshd, nor even root's nginx binary run as
    /// nobody makes it the administrator's.
    #[test]
    fn the_nobody_impostor_stays_closed() {
        let fake = owner("sshd", NOBODY, "/usr/bin/python3", true);
        let mut l = listener(Some(NOBODY), vec![fake]);
        l.user = Some("nobody".into());
        assert_eq!(
            not_system(judge_owners(&l, MIN)),
            "socket created by user nobody (uid 65534): the account for unprivileged work, \
             never a daemon an administrator installed"
        );
        let real_binary = owner("nginx", NOBODY, "/usr/sbin/nginx", true);
        assert!(matches!(
            judge_owners(&listener(Some(NOBODY), vec![real_binary]), MIN),
            OwnerTrust::NotSystem { .. }
        ));
        // A root-created socket passed to nobody's interpreter only.
        let python = owner("python3", NOBODY, "/usr/bin/python3.11", true);
        let reason = not_system(judge_owners(&listener(Some(0), vec![python]), MIN));
        assert!(
            reason.starts_with("run by python3 as uid 65534: the account"),
            "{reason}"
        );
    }

    #[test]
    fn the_socket_decides_then_the_holders() {
        let root = owner("sshd", 0, "/usr/sbin/sshd", true);
        let alice = owner("node", 1000, "/usr/bin/node", true);
        let system = owner("redis-server", 110, "/usr/bin/redis-server", true);
        assert_eq!(
            judge_owners(&listener(Some(0), vec![root.clone()]), MIN),
            OwnerTrust::System
        );
        assert_eq!(
            judge_owners(&listener(Some(110), vec![system]), MIN),
            OwnerTrust::System
        );
        // A root interpreter (a script root runs) is root's, as before.
        assert_eq!(
            judge_owners(
                &listener(Some(0), vec![owner("python3", 0, "/usr/bin/python3", true)]),
                MIN
            ),
            OwnerTrust::System
        );
        assert_eq!(
            not_system(judge_owners(&listener(Some(1000), vec![alice]), MIN)),
            "socket created by uid 1000: not a system account (UID_MIN is 1000)"
        );
        // A root process that holds a socket a user created and passed on.
        let mut user = listener(Some(1000), vec![root.clone()]);
        user.user = Some("alice".into());
        assert_eq!(
            not_system(judge_owners(&user, MIN)),
            "socket created by user alice (uid 1000): not a system account (UID_MIN is 1000)"
        );
        // Root's sshd handed its socket to a nobody process: root's doing,
        // and sshd proves its name.
        let nobody = owner("sshd", NOBODY, "/usr/bin/python3", true);
        assert_eq!(
            judge_owners(&listener(Some(0), vec![root.clone(), nobody]), MIN),
            OwnerTrust::System
        );
        // No owner readable: the socket's uid decides (a kernel socket is root's).
        assert_eq!(
            judge_owners(&listener(Some(0), vec![]), MIN),
            OwnerTrust::System
        );
        assert!(matches!(
            judge_owners(&listener(Some(NOBODY), vec![]), MIN),
            OwnerTrust::NotSystem { .. }
        ));
        // A host whose UID_MIN is 500 makes uid 600 a user.
        assert!(matches!(
            judge_owners(&listener(Some(600), vec![]), Some(500)),
            OwnerTrust::NotSystem { .. }
        ));
        // Older scans carry no uids.
        assert_eq!(
            judge_owners(&listener(None, vec![root.clone()]), MIN),
            OwnerTrust::Unrecorded
        );
        assert_eq!(
            judge_owners(&listener(Some(0), vec![root]), None),
            OwnerTrust::Unrecorded
        );
    }

    #[test]
    fn only_proven_names_are_trusted() {
        let l = listener(
            Some(0),
            vec![
                owner("launcher", 0, "/usr/bin/python3", true),
                owner("sshd", 0, "/usr/sbin/sshd", true),
            ],
        );
        assert_eq!(trusted_programs(&l), ["sshd"]);
        let mut old = listener(None, vec![]);
        old.process = "sshd".into();
        assert_eq!(
            trusted_programs(&old),
            ["sshd"],
            "older scans keep their names"
        );
    }
}
