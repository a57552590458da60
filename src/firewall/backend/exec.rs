//! Running the firewall tools (`nft`, `iptables-restore`, ...): the one place
//! that spawns them, so their stderr is always captured and shown, and a
//! missing tool always gets the same clear message.

use crate::error::host_failure;
use crate::human::plural;
use std::io::Write;
use std::process::{Command, Stdio};

/// Run `program args`, feeding `stdin` if given. Returns stdout on success;
/// on failure, an error carrying the tool's own stderr.
pub(crate) fn run_tool(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            host_failure(format!(
                "`{program}` is not installed; install it (Debian: apt-get install {}) and run again",
                debian_package(program)
            ))
        } else {
            host_failure(format!("cannot run `{program}`: {e}"))
        }
    })?;
    if let Some(input) = stdin {
        // Take the pipe so it closes when written: the tool then sees EOF.
        let mut pipe = child.stdin.take().expect("stdin was piped");
        pipe.write_all(input.as_bytes())
            .map_err(|e| host_failure(format!("cannot write to `{program}`: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| host_failure(format!("cannot wait for `{program}`: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(host_failure(format!(
            "`{program} {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            stderr.trim_end()
        )))
    }
}

/// Is `program` on `PATH` (as an executable file)?
pub(crate) fn tool_exists(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Fail, before anything changes, when a tool a command needs is missing.
pub(crate) fn require_tools(programs: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| !tool_exists(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|p| debian_package(p)).collect();
    packages.dedup();
    Err(host_failure(format!(
        "{} not installed; install it (Debian: apt-get install {}) and run again; nothing was changed",
        missing
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ")
            + plural(missing.len(), " is", " are"),
        packages.join(" ")
    )))
}

/// Changing the firewall needs root (CAP_NET_ADMIN); say so up front rather
/// than let nft fail halfway with "Operation not permitted".
pub(crate) fn require_root(what: &str) -> anyhow::Result<()> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(host_failure(format!(
            "{what} needs root: run it with sudo; nothing was changed"
        )))
    }
}

/// The Debian package that ships a firewall tool, for the "install it" hint.
fn debian_package(program: &str) -> &'static str {
    match program {
        "nft" => "nftables",
        p if p.starts_with("ip6tables") || p.starts_with("iptables") => "iptables",
        "ip" | "ss" => "iproute2",
        "unshare" => "util-linux",
        _ => "the package that provides it",
    }
}
