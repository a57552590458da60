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
        let bad = || {
            format!(
                "bad rate `{text}`; write it as `N/second`, `N/minute` or `N/hour`, e.g. `10/minute`"
            )
        };
        let (count, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!(
                "rate `{text}` is zero; it would refuse every connection"
            ));
        }
        let per = match per.trim() {
            "second" | "sec" | "s" => Per::Second,
            "minute" | "min" | "m" => Per::Minute,
            "hour" | "h" => Per::Hour,
            _ => return Err(bad()),
        };
        Ok(Rate { count, per, burst })
    }
}
