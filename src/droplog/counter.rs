//! How many packets autofw's drop rule counted, from the live ruleset: the
//! kernel counts every packet the rule drops, but logs only a sample, and
//! none at all from a network namespace other than the host's first unless
//! `net.netfilter.nf_log_all_netns=1`. `autofw log` compares the two to say
//! why a log is empty while the rule drops. Pure: the edge hands in the
//! `nft -j -t list ruleset` JSON or the `iptables-save -c` text.

use serde_json::Value;

/// The packets counted by `table inet autofw`'s final `counter drop`
/// (comment `drop`) in its input chain; `None` when the listing has no
/// such rule (no autofw table, or the iptables backend).
pub(crate) fn nft_drop_packets(ruleset: &Value) -> Option<u64> {
    let items = ruleset.get("nftables")?.as_array()?;
    items
        .iter()
        .filter_map(|item| item.get("rule"))
        .filter(|rule| {
            rule["family"] == "inet"
                && rule["table"] == "autofw"
                && rule["chain"] == "input"
                && rule["comment"] == "drop"
        })
        .filter_map(|rule| {
            rule["expr"]
                .as_array()?
                .iter()
                .find_map(|e| e.get("counter")?.get("packets")?.as_u64())
        })
        .reduce(|a, b| a + b)
}

/// The packets counted by `AUTOFW-INPUT`'s final DROP (comment `drop`) in
/// an `iptables-save -c` (or `ip6tables-save -c`) listing.
pub(crate) fn iptables_drop_packets(save: &str) -> Option<u64> {
    save.lines()
        .filter(|line| {
            line.contains("-A AUTOFW-INPUT ")
                && (line.contains("--comment drop ") || line.contains("--comment \"drop\" "))
                && line.trim_end().ends_with("-j DROP")
        })
        .filter_map(|line| {
            let counts = line.strip_prefix('[')?.split(']').next()?;
            counts.split(':').next()?.parse::<u64>().ok()
        })
        .reduce(|a, b| a + b)
}

/// Why the log is empty although the rule dropped, and what to do: said
/// when no drop is logged and the counter is above zero. `first_netns`:
/// whether this is the host's first network namespace (`None`: unknown).
pub(crate) fn unlogged_note(
    logged: usize,
    counted: Option<u64>,
    first_netns: Option<bool>,
) -> Option<String> {
    let counted = counted.filter(|&n| n > 0 && logged == 0)?;
    let packets = crate::human::count(counted as usize, "packet", "packets");
    let head = format!(
        "autofw's drop rule has counted {packets} since its rules were loaded, but none is in this log"
    );
    Some(match first_netns {
        Some(false) => format!(
            "{head}: this is not the host's first network namespace (a container, an LXC or \
             VPS guest, `ip netns`), and the kernel logs packets only from the first unless \
             the host sets net.netfilter.nf_log_all_netns=1. Fix it on the host, not in here: \
             `sysctl -w net.netfilter.nf_log_all_netns=1` (and a file in /etc/sysctl.d/ to \
             keep it). Where you cannot reach the host, the counter is what there is: \
             `nft list chain inet autofw input`"
        ),
        _ => format!(
            "{head}: the drops are older than what was read (try `--since -24h`), or the log \
             was rotated or cleared; `nft list chain inet autofw input` shows the counter"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nft_drop_counter_is_read_from_the_json_listing() {
        let json: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"json_schema_version": 1}},
            {"table": {"family": "inet", "name": "autofw", "handle": 1}},
            {"rule": {"family": "inet", "table": "autofw", "chain": "input", "handle": 9,
              "comment": "log", "expr": [{"limit": {"rate": 5, "per": "minute", "burst": 10}},
              {"log": {"prefix": "autofw drop: "}}]}},
            {"rule": {"family": "inet", "table": "autofw", "chain": "input", "handle": 10,
              "comment": "drop", "expr": [{"counter": {"packets": 11, "bytes": 660}}, {"drop": null}]}},
            {"rule": {"family": "inet", "table": "other", "chain": "input", "handle": 3,
              "comment": "drop", "expr": [{"counter": {"packets": 99, "bytes": 1}}, {"drop": null}]}}]}"#,
        )
        .unwrap();
        assert_eq!(nft_drop_packets(&json), Some(11));
        let empty: Value = serde_json::from_str(r#"{"nftables": [{"metainfo": {}}]}"#).unwrap();
        assert_eq!(nft_drop_packets(&empty), None);
    }

    #[test]
    fn the_iptables_drop_counter_is_read_from_save_c() {
        let save = "*filter\n:INPUT DROP [0:0]\n:AUTOFW-INPUT - [0:0]\n\
            [3:180] -A INPUT -j AUTOFW-INPUT\n\
            [1:60] -A AUTOFW-INPUT -m limit --limit 5/min --limit-burst 10 -m comment --comment log -j LOG --log-prefix \"autofw drop: \"\n\
            [7:420] -A AUTOFW-INPUT -m comment --comment drop -j DROP\nCOMMIT\n";
        assert_eq!(iptables_drop_packets(save), Some(7));
        assert_eq!(iptables_drop_packets("*filter\nCOMMIT\n"), None);
    }

    #[test]
    fn an_empty_log_with_a_counting_rule_says_why() {
        let note = unlogged_note(0, Some(11), Some(false)).unwrap();
        assert!(note.contains("counted 11 packets"), "{note}");
        assert!(note.contains("nf_log_all_netns=1"), "{note}");
        let note = unlogged_note(0, Some(1), Some(true)).unwrap();
        assert!(
            note.contains("counted 1 packet since") && note.contains("--since -24h"),
            "{note}"
        );
        assert_eq!(unlogged_note(3, Some(11), Some(false)), None);
        assert_eq!(unlogged_note(0, Some(0), Some(false)), None);
        assert_eq!(unlogged_note(0, None, Some(false)), None);
    }
}
