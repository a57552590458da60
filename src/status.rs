//! `autofw status`: what was applied, and drift. (Skeleton: issue 5.)

use crate::cli::StatusArgs;

pub fn run(_args: &StatusArgs) -> anyhow::Result<u8> {
    anyhow::bail!("status is not implemented yet")
}
