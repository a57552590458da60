//! Whether the policy file still says what it said when the rules were
//! applied: `autofw allow` and friends edit it, and only an apply loads
//! it, so between the two the live rules do not follow the operator's
//! intent, and status says so. Pure: the edge reads the file's digest.

use super::drift::{Finding, Kind};
use crate::propose::DEFAULT_POLICY;
use std::path::{Path, PathBuf};

/// The policy file an apply read (or looked for), then and now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyCheck {
    pub path: PathBuf,
    /// Its digest at apply; `None`: there was no file.
    pub then: Option<String>,
    /// Its digest now; `Ok(None)`: there is no file; `Err`: unreadable.
    pub now: Result<Option<String>, String>,
}

/// The finding, if the file is not what the rules were made from.
pub(crate) fn finding(check: &PolicyCheck) -> Option<Finding> {
    let path = check.path.display();
    let root = root_of(&check.path)
        .filter(|root| root != Path::new(""))
        .map(|root| format!(" --root {}", root.display()));
    let without = format!(
        "autofw apply --confirm{} --no-policy",
        root.as_deref().unwrap_or("")
    );
    // The flags after `autofw apply`, the same for the dry run and the load.
    let flags = match (&root, check.path == Path::new(DEFAULT_POLICY)) {
        (_, true) => String::new(),
        (Some(root), false) => root.clone(),
        (None, false) => format!(" --policy {path}"),
    };
    let apply = format!("autofw apply --confirm{flags}");
    let review = format!(
        "review the change with `autofw apply{flags}` (a dry run), then load it: `{apply}`"
    );
    let (message, fix) = match (&check.then, &check.now) {
        (Some(then), Ok(Some(now))) if then == now => return None,
        (None, Ok(None)) => return None,
        (Some(_), Ok(Some(_))) => (
            format!(
                "the policy file {path} changed since the rules were applied: the live rules do not follow it yet"
            ),
            review,
        ),
        (None, Ok(Some(_))) => (
            format!(
                "the policy file {path} was written since the rules were applied (they were made without one): the live rules do not follow it yet"
            ),
            review,
        ),
        (Some(_), Ok(None)) => (
            format!("the policy file {path} that the rules were applied from is gone"),
            format!("put it back, or load the rules without a policy: `{without}`"),
        ),
        (_, Err(e)) => (
            format!(
                "the policy file {path} cannot be read ({e}), so whether the live rules follow it is unknown"
            ),
            "make it readable by root; `autofw apply` reads it too".to_string(),
        ),
    };
    Some(Finding::new(Kind::PolicyChanged, message, fix))
}

/// `DIR` of `DIR/etc/autofw/policy.toml`: the `--root` an apply was given.
fn root_of(path: &Path) -> Option<PathBuf> {
    let rel = DEFAULT_POLICY.trim_start_matches('/');
    let s = path.to_str()?;
    s.strip_suffix(rel)
        .filter(|root| root.ends_with('/'))
        .map(|root| PathBuf::from(root.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, then: Option<&str>, now: Result<Option<&str>, &str>) -> Option<Finding> {
        finding(&PolicyCheck {
            path: PathBuf::from(path),
            then: then.map(str::to_string),
            now: now.map(|n| n.map(str::to_string)).map_err(str::to_string),
        })
    }

    #[test]
    fn the_same_file_or_none_then_and_now_is_no_finding() {
        assert_eq!(check(DEFAULT_POLICY, Some("ab"), Ok(Some("ab"))), None);
        assert_eq!(check(DEFAULT_POLICY, None, Ok(None)), None);
    }

    #[test]
    fn a_changed_new_or_gone_policy_says_how_to_load_it() {
        let f = check(DEFAULT_POLICY, Some("ab"), Ok(Some("cd"))).unwrap();
        assert_eq!(f.kind, Kind::PolicyChanged);
        assert!(
            f.message.contains("changed since the rules were applied"),
            "{}",
            f.message
        );
        assert!(
            f.fix
                .contains("`autofw apply` (a dry run), then load it: `autofw apply --confirm`"),
            "{}",
            f.fix
        );
        let f = check("/tmp/x/root/etc/autofw/policy.toml", None, Ok(Some("cd"))).unwrap();
        assert!(f.message.contains("was written since"), "{}", f.message);
        assert!(
            f.fix
                .ends_with("`autofw apply --confirm --root /tmp/x/root`"),
            "{}",
            f.fix
        );
        let f = check("/srv/p.toml", Some("ab"), Ok(None)).unwrap();
        assert!(f.message.contains("is gone"), "{}", f.message);
        assert!(
            f.fix.contains("`autofw apply --confirm --no-policy`"),
            "{}",
            f.fix
        );
        let f = check("/srv/p.toml", Some("ab"), Err("permission denied")).unwrap();
        assert!(
            f.message.contains("cannot be read (permission denied)"),
            "{}",
            f.message
        );
    }
}
