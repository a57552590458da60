//! Running the firewall tools (`nft`, `iptables-restore`, ...): the one place
//! that spawns them, so their stderr is always captured and shown, and a
//! missing tool always gets the same clear message.

use crate::error::host_failure;
use std::io::Write;
use std::process::{Command, Stdio};

/// Run `program args`, feeding `stdin` if given. Returns stdout on success;
/// on failure, an error carrying the tool's own stderr.
pub fn run_tool(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
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

/// The Debian package that ships a firewall tool, for the "install it" hint.
fn debian_package(program: &str) -> &'static str {
    match program {
        "nft" => "nftables",
        p if p.starts_with("ip6tables") || p.starts_with("iptables") => "iptables",
        "ip" | "ss" => "iproute2",
        _ => "the package that provides it",
    }
}
