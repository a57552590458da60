//! The operator's answers to apply's two questions, and where each may come
//! from.
//!
//! `Apply these rules?` is asked before anything changes: standard input
//! answers it (`--yes` does too), typed ahead or piped, since nothing is at
//! stake yet.
//!
//! `Keep these rules?` is different: keeping is only meaningful as an answer
//! given after the rules were loaded, by someone who saw them work. So it is
//! read from the terminal (`/dev/tty`) only, and whatever was typed there
//! before the load is discarded first (`tcflush(TCIFLUSH)`): a `y` typed
//! early, or `yes |` on standard input, never keeps the rules. Without a
//! terminal, only `autofw confirm` from a new login keeps them; a `no` on
//! standard input still rolls back (that is always safe).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc;
use std::time::Duration;

/// Ask again whether to keep the rules.
pub(crate) fn prompt_keep() {
    say_part!("Keep these rules? [yes/no] ");
    let _ = std::io::stderr().flush();
}

/// `y` or `yes`, any case.
pub(crate) fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
/// `n` or `no`, any case.
pub(crate) fn is_no(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "n" | "no")
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// The terminal, read after the load: may keep the rules.
    Terminal,
    /// Standard input that is not a terminal: may only roll back.
    Stdin,
}

pub(crate) enum Polled {
    Line(String, Channel),
    /// Standard input ended.
    Eof,
    Nothing,
}

/// Lines from standard input and, once [`Answers::listen_to_terminal`] was
/// called, from the terminal, each read on a thread so that the window can
/// be watched while waiting.
pub(crate) struct Answers {
    tx: mpsc::Sender<Option<(String, Channel)>>,
    rx: mpsc::Receiver<Option<(String, Channel)>>,
    stdin_is_terminal: bool,
    stdin_eof: bool,
    terminal: bool,
}

impl Answers {
    /// Start reading standard input, unless it is a terminal: then it is
    /// read only for `Apply these rules?` ([`Answers::ask_stdin`]), so that
    /// no thread holds back what the operator types later.
    pub(crate) fn start() -> Answers {
        let (tx, rx) = mpsc::channel();
        let stdin_is_terminal = std::io::stdin().is_terminal();
        if !stdin_is_terminal {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Some((line, Channel::Stdin))).is_err() {
                        return;
                    }
                }
                let _ = tx.send(None);
            });
        }
        Answers {
            tx,
            rx,
            stdin_is_terminal,
            stdin_eof: false,
            terminal: false,
        }
    }

    /// One line from standard input (the answer to `Apply these rules?`);
    /// `None` at its end.
    pub(crate) fn ask_stdin(&mut self) -> Option<String> {
        if self.stdin_is_terminal {
            // A terminal gives one line per read: nothing typed after it is
            // consumed here.
            let mut line = String::new();
            return match std::io::stdin().lock().read_line(&mut line) {
                Ok(n) if n > 0 => Some(line),
                _ => None,
            };
        }
        if self.stdin_eof {
            return None;
        }
        loop {
            match self.rx.recv() {
                Ok(Some((line, Channel::Stdin))) => return Some(line),
                Ok(Some(_)) => continue,
                _ => {
                    self.stdin_eof = true;
                    return None;
                }
            }
        }
    }

    /// After the load: discard what was typed on the terminal so far, and
    /// from now on read answers from it. `false` when there is no terminal.
    pub(crate) fn listen_to_terminal(&mut self) -> bool {
        let Some(tty) = open_terminal() else {
            return false;
        };
        // SAFETY: tcflush on a descriptor we own; TCIFLUSH drops input
        // received but not read.
        unsafe { libc::tcflush(tty.as_raw_fd(), libc::TCIFLUSH) };
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(tty).lines() {
                let Ok(line) = line else { break };
                if tx.send(Some((line, Channel::Terminal))).is_err() {
                    return;
                }
            }
        });
        self.terminal = true;
        true
    }

    /// Whether [`Answers::listen_to_terminal`] found a terminal.
    pub(crate) fn has_terminal(&self) -> bool {
        self.terminal
    }

    /// The next answer, waiting at most `timeout`.
    pub(crate) fn poll(&mut self, timeout: Duration) -> Polled {
        match self.rx.recv_timeout(timeout) {
            Ok(Some((line, from))) => Polled::Line(line, from),
            Ok(None) => {
                self.stdin_eof = true;
                Polled::Eof
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Polled::Nothing,
            // Every reader is gone (no terminal, stdin ended): just wait.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                Polled::Nothing
            }
        }
    }
}

/// The controlling terminal, if this process has one.
fn open_terminal() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty")
        .ok()
}
