//! Hostile input (issue 21): every file the operator names is opened as a
//! regular file only and read to a cap, so a FIFO, `/dev/zero`,
//! `/dev/urandom` or a directory fails at once with exit 2; and a fuzz-style
//! run (fixed seed) of the policy parser, the blocklist reader and the
//! saved-scan reader through the real binary: never a panic, exit 2 naming
//! the file and line, a short message with no raw control characters.

use crate::support::*;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// An address-space limit for each run: a reader that did not stop at its
/// cap would run out of it on `/dev/zero` (and die of it, not exit 2).
const AS_LIMIT: &str = "--as=1073741824";

/// `autofw args` under [`AS_LIMIT`], timed.
fn run_limited(args: &[&str]) -> (Output, Duration) {
    bounded(Autofw::new(args).through(&["prlimit", AS_LIMIT, "--"]))
}

/// Run it, killed (by pid) after 20 s: a reader that hangs on a FIFO
/// fails the test instead of hanging it.
fn bounded(autofw: Autofw) -> (Output, Duration) {
    let started = Instant::now();
    let child = autofw.spawn(std::process::Stdio::null());
    let pid = child.id();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(child.wait_with_output()));
    match receive.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => (out.unwrap(), started.elapsed()),
        Err(_) => {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let out = receive.recv().unwrap().unwrap();
            panic!("still running after 20 s, killed: {}", show(&out));
        }
    }
}

/// The special files each input is tried with, and how autofw names them.
fn specials(dir: &Path) -> Vec<(String, &'static str)> {
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sub = dir.join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    vec![
        (
            fifo.to_string_lossy().into_owned(),
            "is a FIFO (named pipe)",
        ),
        ("/dev/zero".to_string(), "is a character device"),
        ("/dev/urandom".to_string(), "is a character device"),
        (sub.to_string_lossy().into_owned(), "is a directory"),
    ]
}

fn assert_refused(what: &str, out: &Output, took: Duration, path: &str, is: &str) {
    assert_eq!(out.status.code(), Some(2), "{what}: {}", show(out));
    let err = text(&out.stderr);
    assert!(
        err.contains(path) && err.contains(is) && err.contains("not a regular file"),
        "{what}: {err}"
    );
    assert!(took < Duration::from_secs(1), "{what} took {took:?}");
}

#[test]
fn special_files_as_any_input_fail_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scan = "fixtures/scans/seed-host.json";
    for (path, is) in specials(dir) {
        // --policy, --from, log --file, the policy file `autofw allow` edits.
        for (what, args) in [
            (
                "--policy",
                vec!["propose", "--from", scan, "--policy", &path],
            ),
            ("--from", vec!["propose", "--from", &path]),
            ("log --file", vec!["log", "--file", &path]),
            ("allow --policy", vec!["allow", "ssh", "--policy", &path]),
        ] {
            let (out, took) = run_limited(&args);
            assert_refused(&format!("{what} {path}"), &out, took, &path, is);
        }
        // A blocklist file named in a policy: the policy's line is named too.
        let policy = dir.join("policy.toml");
        std::fs::write(
            &policy,
            format!("allow = [\"ssh\"]\n\n[blocklist]\nfiles = [{path:?}]\n"),
        )
        .unwrap();
        let policy = policy.to_string_lossy().into_owned();
        let (out, took) = run_limited(&["propose", "--from", scan, "--policy", &policy]);
        assert_refused(&format!("blocklist file {path}"), &out, took, &path, is);
        assert!(
            text(&out.stderr).contains(&format!("blocklist file named at {policy}:4")),
            "{}",
            show(&out)
        );
    }
}

/// The blocklist file an apply recorded, replaced by a FIFO or a device
/// afterwards: `status` and `blocklist refresh` re-read it, and must fail at
/// once (refresh holds the apply lock while it reads) with the rules as
/// they were: status with a `blocklist-differs` finding naming the file,
/// refresh with exit 2. In a namespace this test creates.
#[test]
fn a_recorded_blocklist_file_turned_special_fails_status_and_refresh_at_once() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("hostile-rec");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    write_scan(Path::new(&path("scan.json")), &[("ssh", "sshd", 22)]);
    std::fs::write(path("policy.toml"), "[blocklist]\nfiles = [\"list.txt\"]\n").unwrap();
    std::fs::write(path("list.txt"), "198.51.100.7\n203.0.113.0/24\n").unwrap();
    let state = path("state");
    let out = ns.autofw(&[
        "apply",
        "--confirm",
        "--yes",
        "--no-wait",
        "--from",
        &path("scan.json"),
        "--policy",
        &path("policy.toml"),
        "--state-dir",
        &state,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let confirmed = ns.autofw(&["confirm", "--state-dir", &state]);
    assert!(confirmed.status.success(), "{}", show(&confirmed));
    let rules = ns.ok(&["nft", "-s", "list", "ruleset"]);
    assert!(rules.contains("198.51.100.7"), "{rules}");

    let list = path("list.txt");
    let fifo = std::ffi::CString::new(list.as_str()).unwrap();
    let root = path("root");
    for (make, is) in [
        ("fifo", "is a FIFO (named pipe)"),
        ("/dev/zero", "is a character device"),
    ] {
        std::fs::remove_file(&list).unwrap();
        if make == "fifo" {
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        } else {
            std::os::unix::fs::symlink(make, &list).unwrap();
        }
        for args in [
            vec!["status", "--state-dir", &state],
            vec![
                "blocklist",
                "refresh",
                "--state-dir",
                &state,
                "--root",
                &root,
            ],
        ] {
            let (out, took) = bounded(
                Autofw::new(&args)
                    .inside(&ns)
                    .through(&["prlimit", AS_LIMIT, "--"]),
            );
            // status's drift checks scan the host: allow it that.
            let limit = Duration::from_secs(if args[0] == "status" { 5 } else { 1 });
            // status reports it as drift (exit 1, a finding naming the
            // file); refresh refuses it as bad input.
            let (code, said) = if args[0] == "status" {
                (1, text(&out.stdout))
            } else {
                (2, text(&out.stderr))
            };
            assert_eq!(
                out.status.code(),
                Some(code),
                "{args:?} on {make}: {}",
                show(&out)
            );
            assert!(
                said.contains(&list) && said.contains(is),
                "{args:?}: {}",
                show(&out)
            );
            eprintln!("{args:?} on {make}: {took:?}");
            assert!(took < limit, "{args:?} on {make} took {took:?}");
        }
        assert_eq!(
            ns.ok(&["nft", "-s", "list", "ruleset"]),
            rules,
            "after {make}"
        );
    }
}

/// Files that are not UTF-8 are named with the line and byte of the first
/// byte that is not; UTF-16 is said by its byte order mark. Each input.
#[test]
fn non_utf8_inputs_name_the_line_and_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scan = "fixtures/scans/seed-host.json";
    let latin1 = dir.join("latin1");
    std::fs::write(&latin1, b"# caf\xe9\n").unwrap();
    let mut utf16 = vec![0xff, 0xfe];
    for unit in "allow = [\"ssh\"]\n".encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    let utf16_file = dir.join("utf16");
    std::fs::write(&utf16_file, &utf16).unwrap();
    let binary = dir.join("binary");
    std::fs::write(
        &binary,
        b"198.51.100.7\n198.51.100.8\n\x7fELF\x02\x01\x01\x00\x00",
    )
    .unwrap();
    let policy_of = |list: &Path| {
        let p = dir.join("p.toml");
        std::fs::write(
            &p,
            format!("[blocklist]\nfiles = [{:?}]\n", list.to_str().unwrap()),
        )
        .unwrap();
        p.to_string_lossy().into_owned()
    };
    let name = |p: &Path| p.to_string_lossy().into_owned();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--policy".into(), name(&latin1)],
            format!(
                "policy file {} is not UTF-8 text: line 1 (byte 5) holds the byte 0xe9",
                name(&latin1)
            ),
        ),
        (
            vec!["--policy".into(), name(&utf16_file)],
            "is not UTF-8 text: it is UTF-16 (it starts with a UTF-16 byte order mark)".into(),
        ),
        (
            vec!["--policy".into(), policy_of(&binary)],
            format!(
                "blocklist file {} is not UTF-8 text: line 3 (byte 33) holds a NUL byte",
                name(&binary)
            ),
        ),
    ];
    for (extra, wanted) in cases {
        let mut args = vec!["propose", "--from", scan];
        args.extend(extra.iter().map(String::as_str));
        let out = Autofw::new(&args).output();
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        assert!(
            text(&out.stderr).contains(&wanted),
            "wanted {wanted:?}: {}",
            show(&out)
        );
    }
    let out = Autofw::new(&["propose", "--from", &name(&utf16_file)]).output();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("saved scan") && text(&out.stderr).contains("UTF-16"));
}

/// Bad values the kernel would refuse, and bad command-line values, are
/// bad input (exit 2) where they are given, never a proposal nft refuses.
#[test]
fn values_the_kernel_refuses_are_bad_input_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("p.toml");
    let scan = "fixtures/scans/seed-host.json";
    for (body, wanted) in [
        (
            "[service.ssh]\nlimit = true\nlimit_burst = 4294967295\n",
            ":3: `[service.ssh] limit_burst` 4294967295 is more than the kernel takes (at most 10000)",
        ),
        (
            "[service.ssh]\nlimit = true\nlimit_burst = 0\n",
            ":3: `[service.ssh] limit_burst` must be at least 1",
        ),
        (
            "[service.ssh]\nlimit = \"20000/second\"\n",
            ":2: in `[service.ssh] limit`: rate `20000/second` is faster than the kernel's rate limits take",
        ),
    ] {
        std::fs::write(&policy, body).unwrap();
        let out = Autofw::new(&[
            "propose",
            "--from",
            scan,
            "--policy",
            policy.to_str().unwrap(),
        ])
        .output();
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("{}{wanted}", policy.display())),
            "{err}"
        );
    }
    let out = Autofw::new(&["propose", "--from", scan, "--limit", "ssh=700000/minute"]).output();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    // Port 0 is no port: bad input, with no advice to open it.
    let out = Autofw::new(&["apply", "--guard", "203.0.113.81:0", "--from", scan]).output();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("--guard") && err.contains("port 0"), "{err}");
    assert!(!err.contains("--allow 0"), "{err}");
    // A state directory that is not UTF-8, named (escaped).
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/autofw-\xff-\x1b[2J");
    let out = std::process::Command::new(autofw_bin())
        .args(["status", "--state-dir"])
        .arg(bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("--state-dir") && err.contains("is not UTF-8"),
        "{err}"
    );
    assert!(err.contains("\\x1b[2J") && !err.contains('\x1b'), "{err}");
}

/// A small deterministic generator (xorshift64*): the same cases on every
/// run, so a failure can be replayed from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What hostile bytes look like: terminal controls, bidi overrides, byte
/// order marks, bytes that are not UTF-8, and a 100 KB run of text.
fn hostile_piece(rng: &mut Rng) -> Vec<u8> {
    let pieces: &[&[u8]] = &[
        b"\x00",
        b"\x1b[2J\x1b]0;owned\x07",
        b"\r",
        "\u{202e}".as_bytes(),
        "\u{feff}".as_bytes(),
        b"\xff\xfe",
        b"\xc3\x28",
        b"\xe9",
        b"\n",
        b"\"",
        b"[",
        b"]",
        b"=",
        b"{",
        b"}",
        b",",
        b"0",
        b"-1",
        b"4294967295",
        b"99999999999999999999999",
        b"/",
        b"-",
        b"#",
        b";",
        b"::",
        b"ssh",
        b"[service.\"\x1b[31m\"]\n",
    ];
    match rng.below(10) {
        0 => vec![b'a'; 100_000],
        _ => rng.pick(pieces).to_vec(),
    }
}

/// `seed` mutated once to five times: cut, a hostile piece inserted, a
/// byte changed, a line doubled, or a byte range removed.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(5) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 => bytes.truncate(at),
            1 | 2 => {
                let piece = hostile_piece(rng);
                bytes.splice(at..at, piece);
            }
            3 if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => {
                let end = (at + rng.below(40)).min(bytes.len());
                let cut: Vec<u8> = bytes[at..end].to_vec();
                if rng.below(2) == 0 {
                    bytes.drain(at..end);
                } else {
                    bytes.splice(at..at, cut);
                }
            }
        }
    }
    bytes
}

/// Bytes a terminal acts on, other than newline and tab.
fn controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        })
        .collect()
}

#[test]
fn fuzzed_policy_blocklist_and_saved_scan_are_bad_input_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let policy_seed = std::fs::read("fixtures/policies/admin.toml").unwrap();
    let list_seed = std::fs::read("fixtures/policies/blocklist.txt").unwrap();
    let scan_seed = std::fs::read("fixtures/scans/seed-host.json").unwrap();
    let scan = "fixtures/scans/seed-host.json";
    let mut rng = Rng(0x2121_2121_5eed);
    let (mut failed, mut ran, mut refused) = (0, 0, 0);
    let started = Instant::now();
    for case in 0..300 {
        // Each case its own file names, so a message naming the file is
        // known to name this one.
        let kind = case % 3;
        let (file, args): (std::path::PathBuf, Vec<String>) = match kind {
            0 => {
                let p = dir.join(format!("policy-{case}.toml"));
                std::fs::write(&p, mutate(&mut rng, &policy_seed)).unwrap();
                // Its blocklist file, as the seed names it.
                std::fs::write(dir.join("blocklist.txt"), &list_seed).unwrap();
                (
                    p.clone(),
                    vec![
                        "--from".into(),
                        scan.into(),
                        "--policy".into(),
                        p.to_string_lossy().into(),
                    ],
                )
            }
            1 => {
                let list = dir.join(format!("list-{case}.txt"));
                std::fs::write(&list, mutate(&mut rng, &list_seed)).unwrap();
                let p = dir.join(format!("policy-{case}.toml"));
                std::fs::write(&p, format!("[blocklist]\nfiles = [\"list-{case}.txt\"]\n"))
                    .unwrap();
                (
                    list,
                    vec![
                        "--from".into(),
                        scan.into(),
                        "--policy".into(),
                        p.to_string_lossy().into(),
                    ],
                )
            }
            _ => {
                let p = dir.join(format!("scan-{case}.json"));
                std::fs::write(&p, mutate(&mut rng, &scan_seed)).unwrap();
                (p.clone(), vec!["--from".into(), p.to_string_lossy().into()])
            }
        };
        let mut argv = vec!["propose"];
        argv.extend(args.iter().map(String::as_str));
        let case_started = Instant::now();
        let out = Autofw::new(&argv).output();
        let took = case_started.elapsed();
        ran += 1;
        let err = text(&out.stderr);
        let problem = match out.status.code() {
            _ if took > Duration::from_secs(2) => Some(format!("took {took:?}")),
            Some(0) => {
                // Still valid after mutation: whatever it says is escaped.
                let shown = controls(&text(&out.stdout));
                (!shown.is_empty() || !controls(&err).is_empty())
                    .then(|| format!("exit 0 with raw control characters {shown:?}"))
            }
            Some(2) => {
                refused += 1;
                let name = file.to_string_lossy();
                // After the file's name: `:LINE`, `, line LINE`, or the line
                // of a byte that is not UTF-8.
                let names_line = err.split(&*name).skip(1).any(|rest| {
                    rest.strip_prefix(':')
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                        || rest.starts_with(", line ")
                        || rest.starts_with(" is not UTF-8 text: line ")
                        || rest.starts_with(" is not UTF-8 text: it is UTF-16")
                });
                if err.contains("panicked") {
                    Some("panicked".to_string())
                } else if !err.starts_with("autofw: ") {
                    Some("not one autofw message".to_string())
                } else if !names_line {
                    Some("does not name the file and line".to_string())
                } else if err.len() > 1_000 {
                    Some(format!("{} bytes of message", err.len()))
                } else if !controls(&err).is_empty() {
                    Some(format!("raw control characters {:?}", controls(&err)))
                } else {
                    None
                }
            }
            code => Some(format!("exit {code:?}")),
        };
        if let Some(problem) = problem {
            failed += 1;
            eprintln!(
                "case {case} ({}): {problem}\n  stderr: {:?}",
                ["policy", "blocklist", "saved scan"][kind],
                err.chars().take(600).collect::<String>()
            );
        }
    }
    eprintln!(
        "{ran} fuzzed inputs ({refused} refused as bad input) in {:?}",
        started.elapsed()
    );
    assert!(
        refused > ran / 2,
        "the mutations should mostly break the input"
    );
    assert_eq!(failed, 0, "{failed} of {ran} fuzzed inputs failed (above)");
}

/// When the firewall refuses the rules anyway (a value the parser does not
/// know the kernel refuses), apply's error names the policy file they were
/// drafted with. An `nft` that refuses every load into this namespace (as
/// the kernel refused `limit_burst = 4294967295` before the parser checked
/// it) stands in for the kernel; in a namespace this test creates.
#[test]
fn a_refused_load_names_the_policy_file() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("hostile-nft");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    write_scan(Path::new(&path("scan.json")), &[("ssh", "sshd", 22)]);
    std::fs::write(path("policy.toml"), "[service.ssh]\nlimit = true\n").unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let netns = ns.ok(&["readlink", "/proc/self/ns/net"]);
    std::fs::write(
        bin.join("nft"),
        format!(
            "#!/bin/sh\nhere=$(readlink /proc/self/ns/net)\n\
             for a in \"$@\"; do if [ \"$a\" = -f ] && [ \"$here\" = '{}' ]; then \
             echo '/dev/stdin:9:16-60: Error: Could not process rule: Value too large for defined data type' >&2; \
             exit 1; fi; done\nexec /usr/sbin/nft \"$@\"\n",
            netns.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("nft"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = ns
        .command("env")
        .arg(format!(
            "PATH={}:{}",
            bin.display(),
            std::env::var("PATH").unwrap()
        ))
        .args([autofw_bin(), "apply", "--confirm", "--yes", "--no-wait"])
        .args([
            "--from",
            &path("scan.json"),
            "--policy",
            &path("policy.toml"),
        ])
        .args(["--state-dir", &path("state")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "the firewall refused the new rules drafted with the policy file {}",
            path("policy.toml")
        )) && err.contains("Value too large"),
        "{err}"
    );
    assert!(!ns.ruleset().contains("autofw"), "{}", ns.ruleset());
}

/// The same for values given on the command line: whatever is quoted back
/// is escaped and short, and the flag is named.
#[test]
fn fuzzed_flag_values_are_quoted_escaped_and_short() {
    let scan = "fixtures/scans/seed-host.json";
    let mut rng = Rng(0x0021_f1a9);
    let seeds: &[&[u8]] = &[
        b"ssh",
        b"8443/tcp",
        b"198.51.100.7",
        b"ssh=10/minute",
        b"ssh=192.0.2.0/24",
    ];
    let flags = ["--allow", "--block", "--blocklist", "--limit", "--source"];
    for case in 0..60 {
        let flag = flags[case % flags.len()];
        let value =
            String::from_utf8_lossy(&mutate(&mut rng, seeds[case % seeds.len()])).into_owned();
        // An argument cannot hold NUL.
        let value = value.replace('\0', "");
        let started = Instant::now();
        let out = Autofw::new(&["propose", "--from", scan, flag, &value]).output();
        let took = started.elapsed();
        // A 100 KB value once took 20 s (the did-you-mean's edit distance).
        assert!(took < Duration::from_secs(2), "case {case} took {took:?}");
        let err = text(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(2) => {
                assert!(err.contains(flag), "case {case}: {err}");
                assert!(err.len() < 1_000, "case {case}: {} bytes", err.len());
                assert!(
                    controls(&err).is_empty(),
                    "case {case}: {:?}",
                    controls(&err)
                );
            }
            code => panic!("case {case}: exit {code:?}: {err}"),
        }
    }
}
