//! Persistence across reboots: the confirmed ruleset saved under
//! `/etc/autofw/`, and the boot hook that loads it before the network comes
//! up. The hook loads the saved files with nft/iptables-restore and never
//! runs autofw ([`crate::boot_hook`] renders it); when the Debian package
//! ships the unit, persist writes only the rules and the enabling link.
//! `--root DIR` puts every file under DIR instead of `/`, for tests and for
//! building images.
//!
//! Only [`crate::firewall::apply::window::confirm`] calls [`persist`]: an
//! unconfirmed ruleset never reaches the boot files, so a reboot can never
//! bring back a lockout. Every file is written atomically (temp + fsync +
//! rename), root-only, and the previous rules are kept as `*.prev`. A
//! manifest (`/etc/autofw/persist.json`) lists what was installed, so that
//! `autofw unpersist` removes exactly that and nothing else.
//! docs/persist.md explains the hooks and how they coexist with
//! `nftables.service` and `netfilter-persistent`.

use serde::{Deserialize, Serialize};
use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::boot_hook::{self, MARKER};
use crate::error::host_failure;
use crate::record::{Backend, Rules};
use crate::state::{now_secs, read_json, remove_if_exists, write_json, write_private};

/// The marker of hooks written by autofw versions whose hook ran `autofw
/// restore`: unpersist still recognises (and removes) them.
const OLD_MARKER: &str = "# Installed by `autofw apply --persist`; `autofw unpersist` removes it.";

/// Which boot hook a host gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Hook {
    /// `/etc/systemd/system/autofw.service`, enabled for sysinit.target.
    Systemd,
    /// `/etc/network/if-pre-up.d/autofw` (ifupdown), as the seed article does.
    Ifupdown,
}

/// What `--persist` installed: read by `restore` and `unpersist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub hook: Hook,
    /// Absolute paths as seen from the target root (`/etc/autofw/rules.nft`).
    pub installed: Vec<PathBuf>,
    pub persisted_at: u64,
    /// The rules the files were rendered from (and so their backend), typed,
    /// so that `restore`
    /// loads them as apply does (the INPUT jump placed among the live
    /// rules, not inserted first as at boot) without reading rendered text
    /// back.
    pub rules: Rules,
}

/// The boot files of one root.
#[derive(Debug, Clone)]
pub(crate) struct BootFiles {
    root: PathBuf,
}

impl BootFiles {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        BootFiles { root: root.into() }
    }
    /// `path` (absolute, as seen at boot) under this root.
    pub(crate) fn under(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
    pub(crate) fn dir(&self) -> PathBuf {
        self.under("/etc/autofw")
    }
    pub(crate) fn manifest(&self) -> PathBuf {
        self.under("/etc/autofw/persist.json")
    }
    /// Where an admin's (and autofw's own, without the package) units live.
    pub(crate) const ETC_UNITS: &'static str = "/etc/systemd/system";
    /// Where a package installs units (Debian 12 ships them in /lib).
    pub(crate) const PACKAGED_UNITS: [&'static str; 2] =
        ["/lib/systemd/system", "/usr/lib/systemd/system"];
    /// The directory of the enabling links, as `systemctl enable` makes them.
    pub(crate) const WANTS: &'static str = "/etc/systemd/system/sysinit.target.wants";
    pub(crate) const IFUP: &'static str = "/etc/network/if-pre-up.d/autofw";

    /// The unit autofw writes when no package ships it.
    pub(crate) fn etc_unit(backend: Backend) -> String {
        format!("{}/{}", Self::ETC_UNITS, backend.boot().unit)
    }
    pub(crate) fn unit_link(backend: Backend) -> String {
        format!("{}/{}", Self::WANTS, backend.boot().unit)
    }
    /// The unit a package installed under this root, if any.
    fn packaged_unit(&self, backend: Backend) -> Option<String> {
        Self::PACKAGED_UNITS
            .iter()
            .map(|dir| format!("{dir}/{}", backend.boot().unit))
            .find(|unit| self.under(unit).is_file())
    }

    fn is_live_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// systemd where it runs (for `/`), or where the image has it installed.
    pub(crate) fn hook(&self) -> Hook {
        let systemd = if self.is_live_root() {
            Path::new("/run/systemd/system").is_dir()
        } else {
            [
                "/run/systemd/system",
                "/usr/lib/systemd/systemd",
                "/lib/systemd/systemd",
            ]
            .iter()
            .any(|p| self.under(p).exists())
        };
        if systemd {
            Hook::Systemd
        } else {
            Hook::Ifupdown
        }
    }

    pub(crate) fn read_manifest(&self) -> anyhow::Result<Option<Manifest>> {
        read_json(&self.manifest())
    }
}

/// The boot file of the `n`th blocklist batch (0-based), as seen at boot:
/// `/etc/autofw/blocklist-0001.nft`. Each holds at most
/// `render_nft::BATCH` elements and is loaded by its own `nft -f`, after
/// the rules file (which declares the sets empty).
pub(crate) fn blocklist_batch_path(n: usize) -> PathBuf {
    PathBuf::from(format!("/etc/autofw/blocklist-{:04}.nft", n + 1))
}

/// The blocklist batch files a manifest lists, in load order.
pub(crate) fn blocklist_batch_files(manifest: &Manifest) -> Vec<PathBuf> {
    let mut batches: Vec<PathBuf> = manifest
        .installed
        .iter()
        .filter(|p| {
            p.to_str()
                .is_some_and(|s| s.starts_with("/etc/autofw/blocklist-") && s.ends_with(".nft"))
        })
        .cloned()
        .collect();
    batches.sort();
    batches
}

/// Save `rules` for boot under `root` and install the boot hook, with the
/// blocklist's elements as `batches` (nft `add element` scripts), one file
/// each.
pub(crate) fn persist(root: &Path, rules: &Rules, batches: &[String]) -> anyhow::Result<Manifest> {
    let files = BootFiles::new(root);
    make_dir(&files.dir(), 0o700)?;
    // On iptables the files insert the INPUT jump first (Hooks::Boot).
    let texts = rules.boot_texts();
    let mut installed = Vec::new();
    for (path, text) in rules.backend().boot().rules_files.iter().zip(texts) {
        let target = files.under(path);
        if let Ok(previous) = std::fs::read(&target) {
            write_private(&prev_of(&target), &previous)?;
            installed.push(prev_of(Path::new(path)));
        }
        write_private(&target, text.as_bytes())?;
        installed.push(PathBuf::from(path));
    }
    installed.extend(write_blocklist_batches(&files, batches)?);
    let hook = files.hook();
    installed.extend(install_hook(&files, hook, rules.backend())?);
    let manifest = Manifest {
        hook,
        installed,
        persisted_at: now_secs(),
        rules: rules.clone(),
    };
    // Files an earlier persist installed that this one did not (another
    // backend or hook): they are ours, and would only confuse the next boot.
    if let Some(old) = files.read_manifest()? {
        for path in old
            .installed
            .iter()
            .filter(|p| !manifest.installed.contains(p))
        {
            remove_ours(&files, path)?;
        }
    }
    write_json(&files.manifest(), &manifest)?;
    if hook == Hook::Systemd && files.is_live_root() {
        systemctl_daemon_reload();
    }
    Ok(manifest)
}

/// After `autofw blocklist refresh`: replace the persisted blocklist batch
/// files with `batches`, keeping the rules and the hook. `false` when
/// nothing (or no nft ruleset) is persisted under `root`.
pub(crate) fn replace_blocklist_batches(root: &Path, batches: &[String]) -> anyhow::Result<bool> {
    let files = BootFiles::new(root);
    let Some(mut manifest) = files.read_manifest()? else {
        return Ok(false);
    };
    if !manifest.rules.backend().loads_sets_apart() {
        return Ok(false);
    }
    let old = blocklist_batch_files(&manifest);
    manifest.installed.retain(|p| !old.contains(p));
    manifest
        .installed
        .extend(write_blocklist_batches(&files, batches)?);
    for path in old.iter().filter(|p| !manifest.installed.contains(p)) {
        remove_if_exists(&files.under(&path.to_string_lossy()))?;
    }
    write_json(&files.manifest(), &manifest)?;
    Ok(true)
}

/// Write one boot file per blocklist batch; their paths, as seen at boot.
fn write_blocklist_batches(files: &BootFiles, batches: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (n, text) in batches.iter().enumerate() {
        let path = blocklist_batch_path(n);
        write_private(&files.under(&path.to_string_lossy()), text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

fn prev_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".prev");
    PathBuf::from(name)
}

/// Install the boot hook of `backend`. With systemd: the unit the package
/// shipped if there is one, else the same text written to /etc; then the
/// enabling link. The hook loads the rules files and never runs autofw.
fn install_hook(files: &BootFiles, hook: Hook, backend: Backend) -> anyhow::Result<Vec<PathBuf>> {
    match hook {
        Hook::Systemd => {
            let mut installed = Vec::new();
            let unit = match files.packaged_unit(backend) {
                Some(packaged) => packaged,
                None => {
                    let unit = BootFiles::etc_unit(backend);
                    let path = files.under(&unit);
                    make_dir(path.parent().expect("unit path has a parent"), 0o755)?;
                    write_private(&path, boot_hook::systemd_unit(backend.boot()).as_bytes())?;
                    installed.push(PathBuf::from(&unit));
                    unit
                }
            };
            let link_path = BootFiles::unit_link(backend);
            let link = files.under(&link_path);
            make_dir(link.parent().expect("link path has a parent"), 0o755)?;
            replace_symlink(Path::new(&unit), &link)?;
            installed.push(PathBuf::from(link_path));
            Ok(installed)
        }
        Hook::Ifupdown => {
            let script = files.under(BootFiles::IFUP);
            make_dir(script.parent().expect("script path has a parent"), 0o755)?;
            write_private(
                &script,
                boot_hook::ifupdown_script(backend.boot()).as_bytes(),
            )?;
            // run-parts only runs executable files; root-only is enough.
            std::fs::set_permissions(&script, Permissions::from_mode(0o700))
                .map_err(|e| host_failure(format!("cannot chmod {}: {e}", script.display())))?;
            Ok(vec![BootFiles::IFUP.into()])
        }
    }
}

fn make_dir(path: &Path, mode: u32) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| host_failure(format!("cannot create {}: {e}", path.display())))
}

/// Point `link` at `target`, replacing it atomically (symlink + rename).
fn replace_symlink(target: &Path, link: &Path) -> anyhow::Result<()> {
    let tmp = link.with_extension("autofw-tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| std::fs::rename(&tmp, link))
        .map_err(|e| host_failure(format!("cannot link {}: {e}", link.display())))
}

/// Is `path` (as seen at boot) a unit file or script autofw writes?
fn is_hook_file(path: &Path) -> bool {
    path == Path::new(BootFiles::IFUP)
        || (path.parent() == Some(Path::new(BootFiles::ETC_UNITS))
            && path.extension().is_some_and(|e| e == "service"))
}

/// Is `target` one of the places an autofw unit lives?
fn is_autofw_unit(target: &Path) -> bool {
    Backend::ALL.iter().any(|&backend| {
        let name = backend.boot().unit;
        std::iter::once(BootFiles::ETC_UNITS)
            .chain(BootFiles::PACKAGED_UNITS)
            .any(|dir| target == Path::new(dir).join(name))
    })
}

/// Remove one installed file, but a hook only if it is still ours (an
/// operator may have replaced it), and an enabling link only if it still
/// points at an autofw unit.
fn remove_ours(files: &BootFiles, path: &Path) -> anyhow::Result<bool> {
    let full = files.under(&path.to_string_lossy());
    let Ok(meta) = std::fs::symlink_metadata(&full) else {
        return Ok(false);
    };
    if is_hook_file(path) && meta.is_file() {
        let text = std::fs::read_to_string(&full).unwrap_or_default();
        if !text.contains(MARKER) && !text.contains(OLD_MARKER) {
            say!(
                "autofw: left {} alone: it was changed after autofw installed it",
                full.display()
            );
            return Ok(false);
        }
    }
    if path.parent() == Some(Path::new(BootFiles::WANTS))
        && !std::fs::read_link(&full)
            .ok()
            .is_some_and(|target| is_autofw_unit(&target))
    {
        say!(
            "autofw: left {} alone: it no longer points at autofw's unit",
            full.display()
        );
        return Ok(false);
    }
    remove_if_exists(&full)?;
    Ok(true)
}

fn systemctl_daemon_reload() {
    // Best effort: without it systemd would pick the unit up at next boot
    // anyway, which is when it matters.
    let _ = std::process::Command::new("systemctl")
        .arg("daemon-reload")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The rules persisted under `root`, if any (apply `--no-wait` compares them
/// with what it would persist, to tell "nothing to do" from a change).
pub(crate) fn persisted(root: &Path) -> anyhow::Result<Option<Rules>> {
    let files = BootFiles::new(root);
    match files.read_manifest()? {
        Some(manifest) => persisted_rules(&files, &manifest).map(Some),
        None => Ok(None),
    }
}

/// The persisted rules of a manifest, as autofw saved them: the files must
/// still hold exactly what they were rendered as, or `restore` would load
/// rules nobody confirmed in a form nobody reviewed.
pub(crate) fn persisted_rules(files: &BootFiles, manifest: &Manifest) -> anyhow::Result<Rules> {
    let again = "run `autofw apply --confirm --persist` again";
    let rules = &manifest.rules;
    for (path, text) in rules
        .backend()
        .boot()
        .rules_files
        .iter()
        .zip(rules.boot_texts())
    {
        let full = files.under(path);
        let on_disk = std::fs::read_to_string(&full).map_err(|e| {
            host_failure(format!(
                "cannot read the persisted ruleset {}: {e}; {again}",
                full.display()
            ))
        })?;
        if on_disk != text {
            return Err(host_failure(format!(
                "the persisted ruleset {} is not what autofw saved there (changed by hand?): \
                 autofw loads only the rules it persisted; load that file with the \
                 firewall's own tool, or {again}",
                full.display()
            )));
        }
    }
    Ok(rules.clone())
}

/// `autofw unpersist`: remove what `--persist` installed, and nothing else.
/// The live rules stay as they are.
pub(crate) fn unpersist(root: &Path) -> anyhow::Result<u8> {
    match remove_boot_files(root)? {
        None => println!(
            "nothing to remove: autofw has persisted nothing under {}",
            BootFiles::new(root).dir().display()
        ),
        Some(removed) => {
            for path in removed {
                println!("removed {}", path.display());
            }
            println!("the live rules are unchanged; they will not be loaded at the next boot");
        }
    }
    Ok(crate::error::exit::OK)
}

/// Remove what `apply --persist` installed under `root` (the boot hook and
/// the saved rules), and nothing else: `None` when nothing was persisted,
/// else the files removed. `unpersist` and `disable` share it.
pub(crate) fn remove_boot_files(root: &Path) -> anyhow::Result<Option<Vec<PathBuf>>> {
    let files = BootFiles::new(root);
    let Some(manifest) = files.read_manifest()? else {
        return Ok(None);
    };
    let mut removed = Vec::new();
    for path in &manifest.installed {
        if remove_ours(&files, path)? {
            removed.push(files.under(&path.to_string_lossy()));
        }
    }
    remove_if_exists(&files.manifest())?;
    // The directory goes only if nothing else was put in it.
    let _ = std::fs::remove_dir(files.dir());
    if manifest.hook == Hook::Systemd && files.is_live_root() {
        systemctl_daemon_reload();
    }
    Ok(Some(removed))
}
