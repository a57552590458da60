//! The published-ports guard ([`PublishedGuard`]): what a proposal does
//! about ports the host forwards with DNAT. Docker's `-p 6379:6379` is
//! rewritten in the nat prerouting hook and accepted in Docker's FORWARD
//! rules, so INPUT never sees it; the guard drops, in the forward hook and
//! before Docker's rules, every new DNATed connection from outside whose
//! original port the proposal does not open. It takes the openings from
//! the INPUT rules already drafted, so a port is open (and from the same
//! sources) in both hooks or in neither. Pure.

use super::ruleset::{Action, Forward, GuardOpening, Match, PublishedGuard, Rule};
use crate::model::ROUTING_BRIDGES;

/// The guard for a ruleset whose FORWARD is `forward` and INPUT `input`:
/// `None` when FORWARD drops everything (nothing is routed to guard).
pub(crate) fn guard_for(forward: &Forward, input: &[Rule]) -> Option<PublishedGuard> {
    if matches!(forward, Forward::Drop { .. }) {
        return None;
    }
    let open = input
        .iter()
        .filter(|rule| rule.action == Action::Accept)
        .filter_map(|rule| match &rule.matches {
            Match::Service {
                proto,
                port,
                service,
                family,
                sources,
                bound,
            } => Some(GuardOpening {
                proto: *proto,
                port: *port,
                service: service.clone(),
                family: *family,
                sources: sources.clone(),
                bound: bound.clone(),
                label: rule.label.clone(),
            }),
            _ => None,
        })
        .collect();
    Some(PublishedGuard {
        reason: "ports this host forwards with DNAT (Docker's and podman's published ports, \
                 port forwards) bypass INPUT: new connections to them from outside a container \
                 or VM bridge are dropped unless the port is opened above, from the same sources"
            .to_string(),
        bridges: ROUTING_BRIDGES.iter().map(|b| b.to_string()).collect(),
        open,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;
    use crate::propose::rules::rule;
    use crate::propose::ruleset::Family;

    #[test]
    fn guard_follows_input_openings_and_only_on_routing_hosts() {
        let input = vec![
            rule(Match::Loopback, Action::Accept, "loopback", ""),
            rule(
                Match::Service {
                    proto: Proto::Tcp,
                    port: 8080,
                    service: "http-alt".into(),
                    family: None,
                    sources: vec![],
                    bound: None,
                },
                Action::Accept,
                "http-alt",
                "",
            ),
            rule(
                Match::Service {
                    proto: Proto::Tcp,
                    port: 6379,
                    service: "redis".into(),
                    family: Some(Family::Ipv4),
                    sources: vec!["10.0.0.0/8".parse().unwrap()],
                    bound: None,
                },
                Action::Accept,
                "redis",
                "",
            ),
            rule(Match::Any, Action::Drop, "drop", ""),
        ];
        let drop = Forward::Drop {
            reason: String::new(),
        };
        assert_eq!(guard_for(&drop, &input), None);
        let routes = Forward::LeaveAlone {
            reason: String::new(),
        };
        let guard = guard_for(&routes, &input).unwrap();
        let open: Vec<String> = guard
            .open
            .iter()
            .map(|o| format!("{}/{} {:?} {:?}", o.port, o.proto, o.family, o.sources))
            .collect();
        assert_eq!(
            open,
            ["8080/tcp None []", "6379/tcp Some(Ipv4) [10.0.0.0/8]"]
        );
        assert!(guard.bridges.contains(&"docker".to_string()));
    }
}
