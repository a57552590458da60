//! Entry point: parse arguments, run, turn the outcome into an exit code.
//! Everything else lives in the library so that tests can reach it.

use std::process::ExitCode;

fn main() -> ExitCode {
    autofw::main_with_exit_code()
}
