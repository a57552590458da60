//! One integration-test binary: each module tests one command end to end,
//! running the real `autofw` binary (in network namespaces where it needs the
//! kernel). Shared helpers live in `support`.

// `support`'s helpers are `pub` for every test module of this one crate;
// the library's `unreachable_pub` (Cargo.toml) is for the library.
#![allow(unreachable_pub)]

mod support;

mod acceptance;
mod apply;
mod blocklist;
mod daytwo;
mod device;
mod docker;
mod fleet;
mod foreign;
mod forwarded;
mod guard;
mod harness;
mod hostile;
mod monitoring;
mod papercuts;
mod persist;
mod podman;
mod policy;
mod propose;
mod scan;
mod status;
mod trust;
mod untrusted;
mod window;
