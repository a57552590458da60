//! `autofw restore`: load the persisted ruleset by hand, with apply's
//! loader. The boot hook does not run it: it loads the same files with nft
//! or iptables-restore itself ([`crate::boot_hook`]), so a host boots with
//! its firewall even where autofw's binary is gone. The boot files are read
//! by [`crate::persist`]; this loads them.

use std::path::Path;

use crate::error::host_failure;
use crate::firewall::backend::exec;
use crate::persist::{BootFiles, blocklist_batch_files, persisted_rules};

/// `autofw restore`: load the persisted ruleset now.
pub(crate) fn run(root: &Path) -> anyhow::Result<u8> {
    let files = BootFiles::new(root);
    let manifest = files.read_manifest()?.ok_or_else(|| {
        host_failure(format!(
            "nothing is persisted under {}: run `autofw apply --confirm --persist` first",
            files.dir().display()
        ))
    })?;
    let rules = persisted_rules(&files, &manifest)?;
    exec::require_root("autofw restore")?;
    exec::require_tools(rules.backend().tools())?;
    crate::firewall::backend::load(&rules, None, None)
        .map_err(crate::firewall::backend::LoadFailure::into_error)?;
    // The blocklist's elements, one bounded `nft -f` a batch file.
    for path in blocklist_batch_files(&manifest) {
        let full = files.under(&path.to_string_lossy());
        exec::run_tool("nft", &["-f", &full.to_string_lossy()], None)?;
    }
    println!(
        "loaded the {} ruleset persisted at {} from {}",
        manifest.rules.backend(),
        manifest.persisted_at,
        files.dir().display()
    );
    Ok(crate::error::exit::OK)
}
