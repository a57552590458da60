//! One builder for running the binary under test, as `just`'s `Test`: the
//! arguments, where it runs (the host's crate root, or a namespace), through
//! what (`setpriv`, `env`), then what is expected of it.

use super::{Netns, show, text};
use serde_json::Value;
use std::process::{Child, Command, Output, Stdio};

/// The built binary under test.
pub fn autofw_bin() -> &'static str {
    env!("CARGO_BIN_EXE_autofw")
}

/// `setpriv` arguments that run a command as `nobody`, without root.
pub const AS_NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `autofw ARGS`, to be run.
pub struct Autofw {
    binary: String,
    args: Vec<String>,
    netns: Option<String>,
    wrapper: Vec<String>,
    env: Vec<(String, String)>,
}

impl Autofw {
    /// `autofw args`, on the host in the crate root unless [`Autofw::inside`]
    /// a namespace (only commands that never touch the firewall run on the
    /// host). Paths in the output are then relative to the crate root.
    pub fn new(args: &[&str]) -> Autofw {
        Autofw {
            binary: autofw_bin().to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            netns: None,
            wrapper: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Another copy of the binary (one that is moved or deleted later).
    pub fn binary(mut self, path: &str) -> Autofw {
        self.binary = path.to_string();
        self
    }

    /// More arguments.
    pub fn args(mut self, args: &[&str]) -> Autofw {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Run inside `ns`.
    pub fn inside(mut self, ns: &Netns) -> Autofw {
        self.netns = Some(ns.name().to_string());
        self
    }

    /// Run through `argv` (`env PATH=...`, [`AS_NOBODY`]).
    pub fn through(mut self, argv: &[&str]) -> Autofw {
        self.wrapper = argv.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Set an environment variable for it.
    pub fn env(mut self, key: &str, value: &str) -> Autofw {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The command, not yet started.
    pub fn command(&self) -> Command {
        let mut argv: Vec<&str> = Vec::new();
        if let Some(ns) = &self.netns {
            argv.extend(["ip", "netns", "exec", ns.as_str()]);
        }
        argv.extend(self.wrapper.iter().map(String::as_str));
        argv.push(&self.binary);
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .args(&self.args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Run it to the end, whatever the exit status.
    pub fn output(&self) -> Output {
        self.command()
            .output()
            .unwrap_or_else(|e| panic!("cannot run autofw {:?}: {e}", self.args))
    }

    /// Run it, expect exit 0, and return stdout.
    pub fn stdout(&self) -> String {
        stdout_of(&self.output())
    }

    /// Run it, expect exit 0, and parse stdout as JSON.
    pub fn json(&self) -> Value {
        json_of(&self.output())
    }

    /// Start it with stdin open (`stdin` piped or null) and stdout/stderr
    /// piped, for a command that waits (apply's window).
    pub fn spawn(&self, stdin: Stdio) -> Child {
        self.command()
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start autofw {:?}: {e}", self.args))
    }
}

/// Stdout of a run that must have succeeded.
pub fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "autofw failed: {}", show(out));
    text(&out.stdout)
}

/// Stdout of a run that must have succeeded, as JSON.
pub fn json_of(out: &Output) -> Value {
    let stdout = stdout_of(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}
