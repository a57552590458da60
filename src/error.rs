//! One error type for the whole tool, and the exit codes it maps to.
//!
//! Most code returns `anyhow::Result` and adds context as it goes. Where the
//! *kind* of failure matters to the caller (a script reading the exit code),
//! the error is raised as a [`Failure`], which `main` finds in the chain.

/// Exit codes, documented in `--help` and `docs/design.md`.
pub(crate) mod exit {
    /// Success: the scan ran, the rules were kept, no drift.
    pub(crate) const OK: u8 = 0;
    /// A negative answer that is not an error: drift found, rules rolled back.
    pub(crate) const NEGATIVE: u8 = 1;
    /// Bad input: a flag, spec, policy file or fixture that does not parse.
    pub(crate) const BAD_INPUT: u8 = 2;
    /// The host could not do it: not root, a missing tool, `nft` refused.
    pub(crate) const HOST: u8 = 3;
    /// Refused for safety: lockout guard, another apply running, operator said no.
    pub(crate) const REFUSED: u8 = 4;
}

/// A failure whose kind decides the exit code. Messages are lowercase and
/// name the thing that is wrong; the fix goes in the message too.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Host(String),
    #[error("{0}")]
    Refused(String),
}

impl Failure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => exit::BAD_INPUT,
            Failure::Host(_) => exit::HOST,
            Failure::Refused(_) => exit::REFUSED,
        }
    }
}

/// Shorthands that build an `anyhow::Error` carrying a [`Failure`].
pub(crate) fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    Failure::BadInput(msg.into()).into()
}
pub(crate) fn host_failure(msg: impl Into<String>) -> anyhow::Error {
    Failure::Host(msg.into()).into()
}
pub(crate) fn refused(msg: impl Into<String>) -> anyhow::Error {
    Failure::Refused(msg.into()).into()
}

/// The exit code for an error: the first [`Failure`] in its chain decides;
/// anything else (I/O, an unexpected state) counts as a host failure.
pub(crate) fn exit_code_for(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map(Failure::exit_code)
        .unwrap_or(exit::HOST)
}

/// True when the error is a closed stdout (`autofw scan | head`): not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
