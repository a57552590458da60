//! The rollback window's clock: `CLOCK_BOOTTIME` plus the boot id.
//!
//! The wall clock is wrong for a deadline: on a fresh VPS the first NTP sync
//! steps it by minutes or hours, which would end a window early or stretch
//! it. `CLOCK_BOOTTIME` is never stepped and keeps counting through suspend
//! (Rust's `Instant` is `CLOCK_MONOTONIC`, which stops in suspend), but it
//! starts again at zero on every boot: a reading is only comparable with one
//! taken in the same boot, which the kernel's random boot id tells.
//! apply, confirm, the watchdog and status all read it through here.

use crate::error::host_failure;
pub(crate) use crate::record::BootTime;

/// Where the kernel says which boot this is.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Test hook: read the boot id from this file instead of [`BOOT_ID`], so a
/// test can fake "the machine restarted" without restarting the machine.
pub(crate) const BOOT_ID_ENV: &str = "AUTOFW_TEST_BOOT_ID_FILE";

/// Now, on the boot clock.
pub(crate) fn now() -> anyhow::Result<BootTime> {
    Ok(BootTime {
        boot_id: boot_id()?,
        millis: boottime_millis(),
    })
}

/// This boot's id.
pub(crate) fn boot_id() -> anyhow::Result<String> {
    let path = std::env::var_os(BOOT_ID_ENV)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| BOOT_ID.into());
    let id = std::fs::read_to_string(&path)
        .map_err(|e| host_failure(format!("cannot read the boot id {}: {e}", path.display())))?;
    Ok(id.trim().to_string())
}

/// Milliseconds of `CLOCK_BOOTTIME`.
pub(crate) fn boottime_millis() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer;
    // CLOCK_BOOTTIME exists on every Linux since 2.6.39.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}
