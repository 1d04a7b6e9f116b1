//! The vault's counters and gauges, and the file an operator's collector reads them from.
//!
//! The vault has no HTTP interface on purpose (it is the PCI zone: nothing listens that is not
//! the authenticated protocol), so its metrics are written in the Prometheus text format to
//! `metrics.prom` in the data directory, replaced atomically every few seconds, for a
//! node_exporter "textfile" collector or an operator's `cat`. Owns the names and help texts of
//! every vault metric. Must never carry a PAN, a token, a customer number or a secret in a label:
//! labels are client ids from the config (which are not secret) and fixed outcome names only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// One counter or gauge with its Prometheus name and help text.
#[derive(Debug)]
pub struct Metric {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: AtomicU64,
}

impl Metric {
    const fn new(name: &'static str, kind: &'static str, help: &'static str) -> Metric {
        Metric {
            name,
            help,
            kind,
            value: AtomicU64::new(0),
        }
    }

    /// Adds one (a counter).
    pub fn inc(&self) {
        self.value.fetch_add(1, Relaxed);
    }

    /// Adds `n` (a counter).
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Relaxed);
    }

    /// Sets the value (a gauge).
    pub fn set(&self, v: u64) {
        self.value.store(v, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

/// Every metric of a running vault. One instance per process, shared by the server and the
/// service.
#[derive(Debug)]
pub struct VaultMetrics {
    /// Connections that proved who they are (secret or client certificate).
    pub logins: Metric,
    /// Logins refused: a wrong secret, an unknown client, a certificate that maps to no client.
    pub login_failures: Metric,
    /// Connections closed before authentication: failed TLS handshakes, idle or oversized
    /// hellos, over a per-source cap.
    pub preauth_failures: Metric,
    /// Detokenize calls answered with a PAN.
    pub detokenized: Metric,
    /// Cards erased by the retention sweep.
    pub purged: Metric,
    /// Purges or re-seals that failed (each is logged with its cause).
    pub sweep_failures: Metric,
    /// Records still sealed under a retired key, as of the last re-seal pass.
    pub reseal_backlog: Metric,
    /// Audit entries that could not be made durable (the call was answered `Internal`).
    pub audit_failures: Metric,
}

impl Default for VaultMetrics {
    fn default() -> VaultMetrics {
        VaultMetrics {
            logins: Metric::new(
                "vault_logins_total",
                "counter",
                "Authenticated connections.",
            ),
            login_failures: Metric::new(
                "vault_login_failures_total",
                "counter",
                "Refused logins (wrong secret, unknown client or certificate).",
            ),
            preauth_failures: Metric::new(
                "vault_preauth_failures_total",
                "counter",
                "Connections closed before authentication (handshake, idle, oversized, capped).",
            ),
            detokenized: Metric::new(
                "vault_detokenized_total",
                "counter",
                "Detokenize calls answered with a PAN.",
            ),
            purged: Metric::new(
                "vault_purged_total",
                "counter",
                "Cards erased at the end of their retention period.",
            ),
            sweep_failures: Metric::new(
                "vault_sweep_failures_total",
                "counter",
                "Purge or re-seal passes that failed.",
            ),
            reseal_backlog: Metric::new(
                "vault_reseal_backlog",
                "gauge",
                "Records sealed under a retired key at the last re-seal pass.",
            ),
            audit_failures: Metric::new(
                "vault_audit_failures_total",
                "counter",
                "Audit entries that could not be made durable.",
            ),
        }
    }
}

impl VaultMetrics {
    fn all(&self) -> [&Metric; 8] {
        [
            &self.logins,
            &self.login_failures,
            &self.preauth_failures,
            &self.detokenized,
            &self.purged,
            &self.sweep_failures,
            &self.reseal_backlog,
            &self.audit_failures,
        ]
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        for m in self.all() {
            let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
            let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
            let _ = writeln!(out, "{} {}", m.name, m.get());
        }
        out
    }

    /// Replaces `path` with the current rendering: written beside it, then renamed, so a reader
    /// never sees half a file. Owner-only, like everything in the data directory.
    pub fn write_file(&self, path: &Path) -> std::io::Result<()> {
        let tmp = temporary(path);
        std::fs::write(&tmp, self.render())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path)
    }
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// How often `metrics.prom` is rewritten.
pub const WRITE_EVERY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_its_type_and_value() {
        let m = VaultMetrics::default();
        m.detokenized.add(3);
        m.reseal_backlog.set(7);
        let text = m.render();
        assert!(
            text.contains("# TYPE vault_detokenized_total counter\nvault_detokenized_total 3\n")
        );
        assert!(text.contains("# TYPE vault_reseal_backlog gauge\nvault_reseal_backlog 7\n"));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 8);
    }

    #[test]
    fn the_file_is_replaced_whole_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.prom");
        let m = VaultMetrics::default();
        m.write_file(&path).unwrap();
        m.logins.inc();
        m.write_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("vault_logins_total 1\n"));
        assert!(!temporary(&path).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
