//! A real PostgreSQL in a test namespace: Debian's server binaries, run as
//! user `postgres` in the foreground, from a cluster that `initdb` makes in
//! a temporary directory (not Debian's pg_ctlcluster clusters, which live
//! under /etc and /var/lib). About 0.7 s of initdb, 0.1 s to listen.

use super::*;
use std::process::Command;
use std::time::Duration;

/// Debian 12's PostgreSQL server programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Start postgres in `ns` on port 5432 of each of `addresses` (its
/// `listen_addresses`: `0.0.0.0`, `::`, `192.0.2.1`), and wait until every
/// one listens. Its Unix socket is in the temporary directory too.
pub fn start_postgres(ns: &Netns, addresses: &[&str]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let data = format!("{d}/data");
    // initdb and postgres refuse to run as root; the cluster is theirs.
    run_ok(Command::new("chown").args(["postgres:postgres", &d]));
    // -N: no fsync of a cluster that lives as long as the test.
    run_ok(Command::new("setpriv").args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        &format!("{BIN}/initdb"),
        "-D",
        &data,
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "-N",
        "--no-instructions",
    ]));
    let listen = format!("listen_addresses={}", addresses.join(","));
    let program = format!("{BIN}/postgres");
    let argv = [
        program.as_str(),
        "-D",
        &data,
        "-c",
        &listen,
        "-c",
        "port=5432",
        "-k",
        &d,
        "-c",
        "fsync=off",
    ];
    let mut postgres = Daemon::spawn_as(ns, dir, "postgres", &argv);
    let listening: Vec<String> = addresses
        .iter()
        .map(|a| match a.contains(':') {
            true => format!("[{a}]:5432"),
            false => format!("{a}:5432"),
        })
        .collect();
    let listening: Vec<&str> = listening.iter().map(String::as_str).collect();
    postgres.wait_ready(
        &format!("listen on {listening:?}"),
        Duration::from_secs(20),
        || tcp_listening_on(ns, &listening),
    );
    postgres
}
