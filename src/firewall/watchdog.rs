//! The detached rollback watchdog. (Skeleton: issue 4.)

use crate::cli::WatchdogArgs;

pub fn run(_args: &WatchdogArgs) -> anyhow::Result<u8> {
    anyhow::bail!("watchdog is not implemented yet")
}
