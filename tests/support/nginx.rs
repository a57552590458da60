//! A real nginx in a test namespace, for tests about a web server: Debian's
//! nginx with a master (root) and a worker (`www-data`) sharing the
//! listening sockets, as on a real host, from a minimal configuration in a
//! temporary directory. It answers every request with 200.

use super::*;
use std::time::Duration;

/// Start nginx in `ns` listening on each of `addresses` (nginx's own
/// `listen` syntax, as `ss` prints it: `0.0.0.0:80`, `[::]:80`,
/// `[2001:db8::1]:443`), and wait until every one listens. Its workers run
/// as `www-data`, as Debian's own configuration says.
pub fn start_nginx(ns: &Netns, addresses: &[&str]) -> Daemon {
    start_nginx_as(ns, addresses, Some("www-data"))
}

/// [`start_nginx`] with the workers' `user` line of choice; `None` writes
/// none, so the workers run as nginx's compiled-in default, `nobody`
/// (Debian builds nginx without `--user`), as on a host whose
/// configuration left the line out.
pub fn start_nginx_as(ns: &Netns, addresses: &[&str], user: Option<&str>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let listen: String = addresses
        .iter()
        .map(|a| format!("        listen {a};\n"))
        .collect();
    let user = user.map_or_else(String::new, |user| format!("user {user};\n"));
    let config = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\n{user}\
         pid {d}/nginx.pid;\nlock_file {d}/nginx.lock;\nerror_log stderr;\n\
         events {{}}\n\
         http {{\n    access_log off;\n\
             client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             server {{\n{listen}        return 200 \"autofw test\\n\";\n    }}\n}}\n"
    );
    let conf = format!("{d}/nginx.conf");
    std::fs::write(&conf, config).unwrap();
    // -p: relative and default paths under the temporary directory; -e:
    // where nginx writes before it has read error_log.
    let argv = ["/usr/sbin/nginx", "-p", &d, "-e", "stderr", "-c", &conf];
    let mut nginx = Daemon::spawn(ns, dir, &argv);
    nginx.wait_ready(
        &format!("listen on {addresses:?}"),
        Duration::from_secs(10),
        || tcp_listening_on(ns, addresses),
    );
    nginx
}
