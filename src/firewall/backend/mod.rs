//! The two backends, nft ([`nft`]) and iptables ([`iptables`]): save,
//! atomic load, exact undo; [`exec`] is the only place that spawns the
//! tools that change the firewall, [`compare`] holds live rules against
//! applied ones.

pub mod compare;
pub mod exec;
pub mod iptables;
pub mod nft;
