//! Rates for `--limit` and the policy file's `limit`: `10/minute`, with a
//! burst. Pure.

/// A rate: `count` per `per`, with a burst. Written `10/minute` in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    pub count: u32,
    pub per: Per,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Second => "second",
            Per::Minute => "minute",
            Per::Hour => "hour",
        }
    }
}

impl Rate {
    /// What `limit = true` means: like `ufw limit`, which denies a source's
    /// sixth new connection within 30 s: a burst of 5, then 10 a minute.
    pub const UFW_LIKE: Rate = Rate {
        count: 10,
        per: Per::Minute,
        burst: 5,
    };

    /// Parse `N/second|minute|hour` (also `N/s`, `N/min`, `N/h`).
    pub fn parse(text: &str, burst: u32) -> Result<Rate, String> {
        let shown = crate::terminal::excerpt(text);
        let bad = || {
            format!(
                "bad rate `{shown}`; write it as `N/second`, `N/minute` or `N/hour`, e.g. `10/minute`"
            )
        };
        let (count, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!(
                "rate `{shown}` is zero; it would refuse every connection"
            ));
        }
        let per = match per.trim() {
            "second" | "sec" | "s" => Per::Second,
            "minute" | "min" | "m" => Per::Minute,
            "hour" | "h" => Per::Hour,
            _ => return Err(bad()),
        };
        if count > per.max_count() {
            return Err(format!(
                "rate `{shown}` is faster than the kernel's rate limits take (at most \
                 {}/second, {}/minute, {}/hour); leave a service that fast unlimited",
                Per::Second.max_count(),
                Per::Minute.max_count(),
                Per::Hour.max_count()
            ));
        }
        Ok(Rate { count, per, burst })
    }

    /// A burst the kernel takes: 1 to [`Rate::MAX_BURST`].
    pub fn check_burst(burst: u32) -> Result<u32, String> {
        match burst {
            0 => Err("must be at least 1".to_string()),
            b if b > Rate::MAX_BURST => Err(format!(
                "{b} is more than the kernel takes (at most {})",
                Rate::MAX_BURST
            )),
            b => Ok(b),
        }
    }

    /// The largest burst: iptables' `limit` match refuses more
    /// (`--limit-burst` is 0-10000); nft takes more, but a policy must load
    /// on either backend. Checked with `nft -c` and `iptables` in a
    /// namespace (issue 21): nft refuses `burst 4294967295` ("Value too large
    /// for defined data type"), and at 1/hour anything past 5,124,095.
    pub const MAX_BURST: u32 = 10_000;
}

impl Per {
    /// The fastest rate of this unit the kernel takes: iptables' `limit`
    /// match counts in 1/10000 s steps ("Rate too fast" beyond 10000/second,
    /// 600000/minute, 36000000/hour); nft takes more, but a policy must load
    /// on either backend.
    pub fn max_count(self) -> u32 {
        match self {
            Per::Second => 10_000,
            Per::Minute => 600_000,
            Per::Hour => 36_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_bursts_past_what_the_kernel_takes_are_refused() {
        assert!(Rate::parse("10000/second", 5).is_ok());
        assert!(Rate::parse("36000000/hour", 5).is_ok());
        for fast in [
            "10001/second",
            "600001/minute",
            "36000001/h",
            "4294967295/second",
        ] {
            let e = Rate::parse(fast, 5).unwrap_err();
            assert!(e.contains("faster than the kernel"), "{fast}: {e}");
        }
        let e = Rate::parse("99999999999999999999/second", 5).unwrap_err();
        assert!(e.starts_with("bad rate"), "{e}");
        assert_eq!(Rate::check_burst(10_000), Ok(10_000));
        assert!(Rate::check_burst(0).is_err());
        assert!(
            Rate::check_burst(10_001)
                .unwrap_err()
                .contains("at most 10000")
        );
        assert!(Rate::check_burst(u32::MAX).is_err());
    }
}
