//! The systemd timer and service that write `autofw status --format
//! prometheus` for node_exporter's textfile collector. The Debian package
//! ships them disabled (`autofw generate units`); docs/status.md says how to
//! enable them. Pure: returns the unit texts.

/// node_exporter's textfile directory on Debian (`prometheus-node-exporter`).
pub(crate) const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
pub(crate) const SERVICE_NAME: &str = "autofw-status.service";
pub(crate) const TIMER_NAME: &str = "autofw-status.timer";

/// The oneshot service the timer starts. It does nothing where the
/// collector's directory does not exist (node_exporter not installed).
pub(crate) fn service_unit() -> String {
    format!(
        "[Unit]
Description=autofw status as Prometheus metrics (node_exporter textfile collector)
Documentation=man:autofw-status(8)
ConditionPathIsDirectory={TEXTFILE_DIR}
After=autofw.service autofw-iptables.service

[Service]
Type=oneshot
# Exits 0 whenever the metrics were written: drift is in the metrics
# (autofw_drift), so the timer does not show as failed.
ExecStart=/usr/sbin/autofw status --format prometheus --out {TEXTFILE_DIR}/autofw.prom
Nice=10
IOSchedulingClass=idle
"
    )
}

/// Every five minutes, from two minutes after boot. Disabled until the
/// operator runs `systemctl enable --now autofw-status.timer`.
pub(crate) fn timer_unit() -> String {
    "[Unit]
Description=Write autofw status metrics for Prometheus every 5 minutes
Documentation=man:autofw-status(8)

[Timer]
OnBootSec=2min
OnUnitActiveSec=5min
RandomizedDelaySec=20s

[Install]
WantedBy=timers.target
"
    .to_string()
}
