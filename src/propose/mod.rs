//! `autofw propose`: the whitelist ruleset for a scan and the operator's
//! choices. (Skeleton: filled in by issue 3.)

use crate::cli::{Format, PolicyArgs, ProposeArgs};
use crate::model::{Proto, Scan};
use std::net::IpAddr;

/// The operator's validated choices (command line and policy file merged).
#[derive(Debug, Clone, Default)]
pub struct Choices {}

/// A drafted ruleset, ready to render.
#[derive(Debug, Clone)]
pub struct Proposal {}

impl Proposal {
    /// The ruleset as text in the given format.
    ///
    /// Contract with `apply` (and with operators who load it by hand):
    /// - nft: one self-contained script for `nft -f` that begins with
    ///   `table inet autofw` then `delete table inet autofw`, then defines the
    ///   table, so one transaction replaces `table inet autofw` and touches no
    ///   other table.
    /// - iptables / ip6tables: input for `iptables-restore --noflush` (and
    ///   `ip6tables-restore --noflush`) that declares, and so flushes, only
    ///   autofw's own chains (`AUTOFW-*`), sets the INPUT/FORWARD policies,
    ///   and hooks its chain from INPUT with exactly the line
    ///   `-A INPUT -j AUTOFW-INPUT`, so apply can leave that line out when the
    ///   live INPUT already jumps there.
    pub fn render(&self, _format: Format) -> String {
        unimplemented!("propose is not implemented yet")
    }
    /// Would this ruleset accept a new connection to `proto`/`port` from `source`?
    /// Used by apply's lockout guard.
    pub fn admits(&self, _proto: Proto, _port: u16, _source: IpAddr) -> bool {
        unimplemented!("propose is not implemented yet")
    }
    /// The ports this ruleset opens, for apply's record and `status`.
    pub fn opened(&self) -> Vec<crate::state::OpenedPort> {
        unimplemented!("propose is not implemented yet")
    }
}

/// Read the choices from the command line and `--policy`, and the scan from
/// `--from` or the live host.
pub fn gather(_args: &PolicyArgs) -> anyhow::Result<(Scan, Choices)> {
    anyhow::bail!("propose is not implemented yet")
}

/// Build the proposal: pure, no host access.
pub fn build(_scan: &Scan, _choices: &Choices) -> anyhow::Result<Proposal> {
    anyhow::bail!("propose is not implemented yet")
}

pub fn run(_args: &ProposeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("propose is not implemented yet")
}
