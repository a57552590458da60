//! The operator's choices: `--allow`/`--block`/`--limit`/`--source`/
//! `--blocklist` from the command line merged with a parsed policy file into
//! [`Choices`]. Pure: the texts come in as values, and every error names the
//! flag or `file:line` it came from.

use super::policy_file::Policy;
use super::rate::Rate;
use super::ruleset::Blocklist;
use super::spec::{Given, Spec, parse_net};
use crate::blocklist::{Collected, Ranges};
use crate::error::bad_input;
use crate::services::ServiceTable;
use crate::terminal::excerpt;
use ipnet::IpNet;

/// What the policy says about one service: who may reach it, how fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicy {
    /// The `[service.NAME]` key, parsed.
    pub spec: Spec,
    /// Only these networks may connect; `None` means anyone.
    pub sources: Option<Vec<IpNet>>,
    /// Where `sources` was given (`--source ssh=...`, `policy.toml:8`): the
    /// lockout guard names it, and the fix is made there.
    pub sources_place: Option<String>,
    /// New connections per source address above this rate are dropped.
    pub limit: Option<Rate>,
    /// Where it was written, for messages.
    pub place: String,
}

/// The operator's validated choices, command line and policy file merged.
#[derive(Debug, Clone)]
pub struct Choices {
    /// Open these even when nothing listens, and even when scan flagged them risky.
    pub allow: Vec<Given<Spec>>,
    /// Keep these closed even when they listen. Block wins over allow.
    pub block: Vec<Given<Spec>>,
    /// Per-service source restrictions and rate limits, in file order.
    pub services: Vec<ServicePolicy>,
    /// Addresses and networks whose packets are all dropped: the policy's
    /// `addresses` and `--blocklist` (few, as written), each with its place.
    pub blocklist: Vec<Given<IpNet>>,
    /// The entries of the `[blocklist] files` (up to millions, as integers).
    pub blocklist_lists: Collected,
    /// `[blocklist] files` named at least one file: the sets exist even
    /// while the files are empty, so a refresh can fill them.
    pub blocklist_files_named: bool,
    /// The blocklist files, absolute: what apply records for a refresh.
    pub blocklist_paths: Vec<std::path::PathBuf>,
    /// Names ↔ ports, for specs.
    pub table: ServiceTable,
    /// The policy file read, if any: what apply records.
    pub policy_source: Option<PolicySource>,
}

/// The policy file a run read: where, and a digest of the text it read
/// (status tells from it whether the file changed since the apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Absolute.
    pub path: std::path::PathBuf,
    /// `policy_edit::text_digest` of the text read.
    pub digest: String,
}

impl Default for Choices {
    fn default() -> Self {
        Choices {
            allow: Vec::new(),
            block: Vec::new(),
            services: Vec::new(),
            blocklist: Vec::new(),
            blocklist_lists: Collected::default(),
            blocklist_files_named: false,
            blocklist_paths: Vec::new(),
            table: ServiceTable::builtin(),
            policy_source: None,
        }
    }
}

/// Where a service's policy was written, when its settings come from more
/// than one place (`policy.toml:7, --limit ssh`).
fn joined_place(old: &str, new: &str) -> String {
    if old == new {
        old.to_string()
    } else {
        format!("{old}, {new}")
    }
}

impl Choices {
    /// Merge command-line specs and a parsed policy. Pure.
    pub fn merge(
        cli_allow: &[String],
        cli_block: &[String],
        policy: Policy,
        table: ServiceTable,
    ) -> anyhow::Result<Choices> {
        let mut allow = Vec::new();
        let mut block = Vec::new();
        for (texts, flag, out) in [
            (cli_allow, "--allow", &mut allow),
            (cli_block, "--block", &mut block),
        ] {
            // `--allow ssh,http` is `--allow ssh --allow http`.
            for text in &super::spec::split_specs(texts) {
                let value = Spec::parse(text, &table)
                    .map_err(|e| bad_input(format!("{flag} {}: {e}", excerpt(text))))?;
                out.push(Given {
                    value,
                    place: format!("{flag} {}", excerpt(text)),
                });
            }
        }
        allow.extend(policy.allow);
        block.extend(policy.block);
        Ok(Choices {
            allow,
            block,
            services: policy.services,
            blocklist: policy.blocklist,
            blocklist_lists: Collected::default(),
            blocklist_files_named: !policy.blocklist_files.is_empty(),
            blocklist_paths: Vec::new(),
            table,
            policy_source: None,
        })
    }

    /// Add `--limit SPEC[=RATE]`, `--source SPEC=NET[,NET...]` and
    /// `--blocklist NET`: the policy file's `[service.SPEC]` and
    /// `[blocklist]` on the command line. Pure. A setting given both here and
    /// in the file for the same SPEC is an error naming both places: which
    /// one should win is the operator's call, not ours.
    pub fn add_command_line(
        &mut self,
        limits: &[String],
        sources: &[String],
        blocklist: &[String],
    ) -> anyhow::Result<()> {
        for text in limits {
            let place = format!("--limit {}", excerpt(text));
            let (spec, rate) = match text.split_once('=') {
                Some((spec, rate)) => (spec, Some(rate)),
                None => (text.as_str(), None),
            };
            let rate = match rate {
                None => Rate::UFW_LIKE,
                Some(rate) => Rate::parse(rate, Rate::UFW_LIKE.burst)
                    .map_err(|e| bad_input(format!("{place}: {e}")))?,
            };
            self.set_from_flag(spec, &place, "a limit", |p| &mut p.limit, rate)?;
        }
        for text in sources {
            let place = format!("--source {}", excerpt(text));
            let (spec, nets) = text.split_once('=').ok_or_else(|| {
                bad_input(format!(
                    "{place}: expected SPEC=NET[,NET...], e.g. `ssh=192.0.2.0/24`"
                ))
            })?;
            let nets = nets
                .split(',')
                .map(parse_net)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad_input(format!("{place}: {e}")))?;
            self.set_from_flag(spec, &place, "sources", |p| &mut p.sources, nets)?;
            if let Some(policy) = self.services.iter_mut().find(|p| p.place.ends_with(&place)) {
                policy.sources_place = Some(place);
            }
        }
        for text in blocklist {
            let net = parse_net(text)
                .map_err(|e| bad_input(format!("--blocklist {}: {e}", excerpt(text))))?;
            self.blocklist.push(Given {
                value: net,
                place: format!("--blocklist {}", excerpt(text)),
            });
        }
        Ok(())
    }

    /// Set one setting of the policy of `spec` from the flag at `place`,
    /// unless the file or an earlier flag already set it.
    fn set_from_flag<T>(
        &mut self,
        spec: &str,
        place: &str,
        what: &str,
        setting: impl FnOnce(&mut ServicePolicy) -> &mut Option<T>,
        value: T,
    ) -> anyhow::Result<()> {
        let spec =
            Spec::parse(spec, &self.table).map_err(|e| bad_input(format!("{place}: {e}")))?;
        let policy = self.service_policy(spec, place);
        let earlier = policy.place.clone();
        let slot = setting(policy);
        if slot.is_some() {
            return Err(bad_input(format!(
                "{place}: {what} for this service is also given at {earlier}; keep one"
            )));
        }
        *slot = Some(value);
        policy.place = joined_place(&earlier, place);
        Ok(())
    }

    /// The policy of exactly this spec, made (empty, at `place`) if there is
    /// none yet.
    fn service_policy(&mut self, spec: Spec, place: &str) -> &mut ServicePolicy {
        let i = match self.services.iter().position(|s| s.spec == spec) {
            Some(i) => i,
            None => {
                self.services.push(ServicePolicy {
                    spec,
                    sources: None,
                    sources_place: None,
                    limit: None,
                    place: place.to_string(),
                });
                self.services.len() - 1
            }
        };
        &mut self.services[i]
    }

    /// The blocklist, merged into sorted, disjoint ranges per family: nft
    /// rejects overlapping interval elements, and the output must not depend
    /// on the order the operator listed them in.
    pub fn blocklist(&self) -> Blocklist {
        let mut v4 = self.blocklist_lists.v4.clone();
        let mut v6 = self.blocklist_lists.v6.clone();
        for net in &self.blocklist {
            match net.value {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Blocklist {
            enabled: self.blocklist_files_named || !self.blocklist.is_empty(),
            shards: crate::blocklist::shards_for(self.blocklist_files_named),
            ipv4: Ranges::merge(v4),
            ipv6: Ranges::merge(v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::policy_file::parse_policy;
    use crate::propose::rate::Per;

    fn table() -> ServiceTable {
        ServiceTable::builtin()
    }

    #[test]
    fn cli_specs_are_validated_with_their_flag() {
        let e = Choices::merge(&["htps".into()], &[], Policy::default(), table()).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("--allow htps: unknown service"),
            "{e:#}"
        );
        let e = Choices::merge(&[], &["0/tcp".into()], Policy::default(), table()).unwrap_err();
        assert!(format!("{e:#}").contains("--block 0/tcp: port 0"), "{e:#}");
    }

    #[test]
    fn comma_lists_are_one_spec_each() {
        let c = Choices::merge(
            &["ssh,http".into(), "8443/tcp".into()],
            &["ftp, 11211".into()],
            Policy::default(),
            table(),
        )
        .unwrap();
        let places: Vec<_> = c.allow.iter().map(|g| g.place.as_str()).collect();
        assert_eq!(places, ["--allow ssh", "--allow http", "--allow 8443/tcp"]);
        assert_eq!(c.block.len(), 2);
        let e = Choices::merge(&["ssh,htps".into()], &[], Policy::default(), table()).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("--allow htps: unknown service"),
            "{e:#}"
        );
    }

    #[test]
    fn command_line_limits_sources_and_blocklist() {
        let mut c = Choices::default();
        c.add_command_line(
            &["ssh".into(), "53/udp=20/second".into()],
            &["ssh=192.0.2.0/24,2001:db8:1::/48".into()],
            &["198.51.100.7".into()],
        )
        .unwrap();
        let ssh = c
            .services
            .iter()
            .find(|s| s.spec == Spec::Name("ssh".into()))
            .unwrap();
        assert_eq!(ssh.limit, Some(Rate::UFW_LIKE));
        assert_eq!(
            ssh.sources,
            Some(vec![
                parse_net("192.0.2.0/24").unwrap(),
                parse_net("2001:db8:1::/48").unwrap()
            ])
        );
        let dns = c
            .services
            .iter()
            .find(|s| s.place == "--limit 53/udp=20/second")
            .unwrap();
        assert_eq!(dns.limit.map(|r| (r.count, r.per)), Some((20, Per::Second)));
        assert_eq!(c.blocklist[0].value, parse_net("198.51.100.7").unwrap());
        assert_eq!(c.blocklist[0].place, "--blocklist 198.51.100.7");
        assert_eq!(
            ssh.sources_place.as_deref(),
            Some("--source ssh=192.0.2.0/24,2001:db8:1::/48")
        );
    }

    #[test]
    fn command_line_policies_say_what_is_wrong_and_where() {
        let err = |limits: &[&str], sources: &[&str], blocklist: &[&str]| {
            let mut c = Choices::merge(
                &[],
                &[],
                parse_policy("[service.ssh]\nlimit = true\n", "p.toml", &table()).unwrap(),
                table(),
            )
            .unwrap();
            let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let e = c
                .add_command_line(&owned(limits), &owned(sources), &owned(blocklist))
                .unwrap_err();
            format!("{e:#}")
        };
        assert!(err(&["htps"], &[], &[]).starts_with("--limit htps: unknown service"));
        assert!(err(&["ssh=fast"], &[], &[]).contains("--limit ssh=fast: bad rate"));
        let twice = err(&["ssh"], &[], &[]);
        assert!(twice.contains("also given at p.toml:1"), "{twice}");
        assert!(err(&[], &["ssh"], &[]).contains("expected SPEC=NET"));
        assert!(err(&[], &["ssh=192.0.2.999"], &[]).contains("is not an IP address"));
        assert!(err(&[], &[], &["203.0.113.5/24"]).contains("did you mean `203.0.113.0/24`"));
    }

    #[test]
    fn blocklist_is_merged_and_sorted() {
        let mut c = Choices::default();
        for n in [
            "203.0.113.0/25",
            "203.0.113.128/25",
            "198.51.100.7",
            "2001:db8::1",
            "2001:db8::/64",
        ] {
            c.blocklist.push(Given {
                value: parse_net(n).unwrap(),
                place: "test".to_string(),
            });
        }
        let b = c.blocklist();
        let v4: Vec<_> = b
            .ipv4
            .ranges()
            .iter()
            .map(|&(a, z)| crate::blocklist::nft_element(a, z))
            .collect();
        assert_eq!(v4, ["198.51.100.7", "203.0.113.0/24"]);
        assert_eq!(b.ipv6.len(), 1);
    }
}
