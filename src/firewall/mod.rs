//! Everything that changes the live firewall: running `nft` and
//! `iptables-restore`, apply with its rollback window, the watchdog.
//! (Skeleton: filled in by issue 4.)

pub mod apply;
pub mod exec;
pub mod watchdog;
