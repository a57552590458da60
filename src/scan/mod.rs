//! `autofw scan`: listeners from the kernel's socket tables, joined to their
//! processes, classified and named. (Skeleton: filled in by issue 2.)

use crate::cli::{ScanArgs, SocketSource};
use crate::model::Scan;

/// Scan this host (the current network namespace).
pub fn scan_host(_source: SocketSource) -> anyhow::Result<Scan> {
    anyhow::bail!("scan is not implemented yet")
}

pub fn run(_args: &ScanArgs) -> anyhow::Result<u8> {
    anyhow::bail!("scan is not implemented yet")
}
