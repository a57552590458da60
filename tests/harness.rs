//! Checks of the test harness itself: namespaces are really separate and are
//! cleaned up, so the other tests can trust them.

use crate::support::*;
use std::time::Duration;

#[test]
fn namespace_link_carries_traffic_and_is_removed() {
    if !require_root() {
        return;
    }
    let name;
    {
        let mut server = Netns::new("harness-s");
        let client = Netns::new("harness-c");
        name = server.name().to_string();
        link(&server, &client);
        server.listen(
            Some("sshd"),
            &["tcp:0.0.0.0:5622", "tcp:[::]:5622", "udp:0.0.0.0:53"],
        );
        assert_eq!(probe_tcp(&client, SERVER_V4, 5622), Probe::Open);
        assert!(wait_until(Duration::from_secs(3), || probe_tcp(
            &client, SERVER_V6, 5622
        ) == Probe::Open));
        assert_eq!(probe_tcp(&client, SERVER_V4, 5623), Probe::Refused);
        assert!(probe_dns(&client, SERVER_V4, 53));
        assert!(ping(&client, SERVER_V4));
        let comm = server.ok(&["sh", "-c", "ss -Htlnp | grep 5622"]);
        assert!(comm.contains("\"sshd\""), "{comm}");
    }
    let left = run_ok(std::process::Command::new("ip").args(["netns", "list"]));
    assert!(!left.contains(&name), "namespace {name} was not removed");
}
