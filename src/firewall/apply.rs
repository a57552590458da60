//! `autofw apply`, `confirm` and `rollback`. (Skeleton: issue 4.)

use crate::cli::{ApplyArgs, StateArgs};

pub fn run(_args: &ApplyArgs) -> anyhow::Result<u8> {
    anyhow::bail!("apply is not implemented yet")
}
pub fn confirm(_args: &StateArgs) -> anyhow::Result<u8> {
    anyhow::bail!("confirm is not implemented yet")
}
pub fn rollback(_args: &StateArgs) -> anyhow::Result<u8> {
    anyhow::bail!("rollback is not implemented yet")
}
