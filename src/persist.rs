//! Persistence across reboots: boot files and hooks. (Skeleton: issue 5.)

use crate::cli::RootArgs;

pub fn restore(_args: &RootArgs) -> anyhow::Result<u8> {
    anyhow::bail!("restore is not implemented yet")
}
pub fn unpersist(_args: &RootArgs) -> anyhow::Result<u8> {
    anyhow::bail!("unpersist is not implemented yet")
}
