//! What the Debian package ships besides the binary, generated from the
//! program itself so it cannot drift from it: man pages and completions from
//! the clap definitions, the systemd units from the functions apply uses
//! (`autofw generate man|completions|units DIR`, run by pkg/build-deb; not
//! committed, as ripgrep does). `autofw completions SHELL` prints one
//! completion script, for installs with `cargo install`.

use std::io::Write;
use std::path::Path;

use clap_complete::Shell;

use super::man;
use crate::boot_hook;
use crate::cli::{Cli, GenerateArgs, Generated};
use crate::error::{exit, host_failure};
use crate::record::Backend;
use crate::status::timer;

/// `autofw completions SHELL`: the script on stdout. Rendered first, then
/// written: clap_complete panics on a write error, and `| head` is not one.
pub(crate) fn completions(shell: Shell) -> anyhow::Result<u8> {
    let (_, script) = completion(shell);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(exit::OK)
}

/// The command line without its internal (hidden) subcommands, which
/// clap_complete would otherwise offer at `autofw <TAB>`.
fn completable() -> clap::Command {
    // Unbuilt: each clone keeps its deferred arguments, which
    // clap_complete builds with the new root (built subcommands would not
    // get their names under it).
    let full = <Cli as clap::CommandFactory>::command();
    clap::Command::new("autofw")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// The completion script for `shell`, and the file name its Debian
/// directory expects.
pub(crate) fn completion(shell: Shell) -> (String, Vec<u8>) {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut completable(), "autofw", &mut script);
    let name = match shell {
        Shell::Bash => "autofw".to_string(),
        Shell::Zsh => "_autofw".to_string(),
        Shell::Fish => "autofw.fish".to_string(),
        other => format!("autofw.{other}"),
    };
    (name, script)
}

/// `autofw generate WHAT DIR`.
pub(crate) fn run(args: &GenerateArgs) -> anyhow::Result<u8> {
    let files: Vec<(String, Vec<u8>)> = match args.what {
        Generated::Man => man::pages(<Cli as clap::CommandFactory>::command())
            .into_iter()
            .map(|(name, text)| (name, text.into_bytes()))
            .collect(),
        Generated::Completions => [Shell::Bash, Shell::Zsh, Shell::Fish]
            .into_iter()
            .map(completion)
            .collect(),
        Generated::Units => {
            let mut units: Vec<(String, Vec<u8>)> = Backend::ALL
                .iter()
                .map(|b| {
                    let boot = b.boot();
                    (
                        boot.unit.to_string(),
                        boot_hook::systemd_unit(boot).into_bytes(),
                    )
                })
                .collect();
            units.push((
                timer::SERVICE_NAME.into(),
                timer::service_unit().into_bytes(),
            ));
            units.push((timer::TIMER_NAME.into(), timer::timer_unit().into_bytes()));
            units
        }
    };
    write_all(&args.dir, &files)?;
    Ok(exit::OK)
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| host_failure(format!("cannot create {}: {e}", dir.display())))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| host_failure(format!("cannot write {}: {e}", path.display())))?;
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each subcommand's arguments are deferred; once built, its `about`
    /// must still be its own. A doc comment on a flattened `Args` struct
    /// would replace it (apply's help said "The operator's choices, shared
    /// by `propose` and `apply`").
    #[test]
    fn building_the_deferred_arguments_keeps_each_subcommands_about() {
        let deferred = <Cli as clap::CommandFactory>::command();
        let mut built = deferred.clone();
        built.build();
        for sub in deferred.get_subcommands() {
            let whole = built.find_subcommand(sub.get_name()).unwrap();
            assert_eq!(
                whole.get_about().map(ToString::to_string),
                sub.get_about().map(ToString::to_string),
                "{}",
                sub.get_name()
            );
        }
        let apply = built.find_subcommand("apply").unwrap();
        assert!(apply.get_arguments().any(|a| a.get_id() == "confirm"));
    }
}
