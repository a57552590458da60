//! What apply records, in one place that firewall, persist and status all
//! read: the backend, and (below) the apply record itself. Pure data.

/// Which firewall apply drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// nftables: one atomic `nft -f` that replaces only `table inet autofw`.
    #[default]
    Nft,
    /// iptables-restore and ip6tables-restore, for hosts without nftables.
    Iptables,
}

impl Backend {
    /// The name in records and messages: `nft`, `iptables`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Iptables => "iptables",
        }
    }
}
