//! The operator's answers to apply's two questions (`Apply these rules?`,
//! `Keep these rules?`): stdin read on a thread, so the rollback window can
//! be watched while waiting, and what counts as yes and no.

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

/// Ask again whether to keep the rules.
pub fn prompt_keep() {
    eprint!("Keep these rules? [yes/no] ");
    let _ = std::io::stderr().flush();
}

/// `y` or `yes`, any case.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
/// `n` or `no`, any case.
pub fn is_no(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "n" | "no")
}

/// Lines from stdin, read on a thread so the window can be watched while
/// waiting for the operator. End of input is reported once.
pub struct Input {
    rx: mpsc::Receiver<Option<String>>,
    eof: bool,
}

pub enum Polled {
    Line(String),
    Eof,
    Nothing,
}

impl Input {
    pub fn start() -> Input {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(None);
        });
        Input { rx, eof: false }
    }

    pub fn next_blocking(&mut self) -> Option<String> {
        if self.eof {
            return None;
        }
        match self.rx.recv() {
            Ok(Some(line)) => Some(line),
            _ => {
                self.eof = true;
                None
            }
        }
    }

    pub fn poll(&mut self, timeout: Duration) -> Polled {
        if self.eof {
            std::thread::sleep(timeout);
            return Polled::Nothing;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(Some(line)) => Polled::Line(line),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Polled::Eof
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Polled::Nothing,
        }
    }
}
