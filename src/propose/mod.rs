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
    /// The ruleset as text in the given format. For nft, one self-contained
    /// script that atomically replaces `table inet autofw` and nothing else.
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
