//! The vault's counters and gauges, and the file an operator's collector reads them from.
//!
//! The vault has no HTTP interface on purpose (it is the PCI zone: nothing listens that is not
//! the authenticated protocol), so its metrics are written in the Prometheus text format to
//! `metrics.prom` in the data directory, replaced atomically every few seconds, for a
//! node_exporter "textfile" collector or an operator's `cat`. Owns the names and help texts of
//! every vault metric. Must never carry a PAN, a token, a customer number or a secret in a label:
//! labels are client ids from the config (which are not secret) and fixed outcome names only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
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
    /// Detokenize volume per client, and the alert threshold it is compared with.
    pub detokenize: DetokenizeByClient,
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
            detokenize: DetokenizeByClient::default(),
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
        self.detokenize.render(&mut out);
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

/// One client's detokenize counters. The service holds an `Arc` of each, so counting costs an
/// atomic add and no lookup.
#[derive(Debug, Default)]
pub struct ClientDetokenize {
    /// Detokenizes answered with a PAN.
    pub answered: AtomicU64,
    /// Detokenizes refused because the client was over its rate.
    pub rate_limited: AtomicU64,
    /// Seconds in which the client crossed the alert threshold.
    pub alerts: AtomicU64,
}

/// Which of a client's counters a series shows.
type Counter = fn(&ClientDetokenize) -> &AtomicU64;

/// Detokenize counters labelled by client id (ids come from the config and are not secret).
#[derive(Debug, Default)]
pub struct DetokenizeByClient {
    clients: Mutex<BTreeMap<String, Arc<ClientDetokenize>>>,
    /// The configured alert threshold (detokenizes per second per client), shown beside the
    /// counters so an alerting rule can compare against it.
    pub alert_per_sec: AtomicU64,
}

impl DetokenizeByClient {
    /// The counters of `client`, created at the first call.
    pub fn client(&self, client: &str) -> Arc<ClientDetokenize> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(clients.entry(client.to_string()).or_default())
    }

    fn render(&self, out: &mut String) {
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let series: [(&str, &str, Counter); 3] = [
            (
                "vault_client_detokenized_total",
                "Detokenize calls answered with a PAN, per client.",
                |c| &c.answered,
            ),
            (
                "vault_client_detokenize_rate_limited_total",
                "Detokenize calls refused over the client's rate, per client.",
                |c| &c.rate_limited,
            ),
            (
                "vault_client_detokenize_alerts_total",
                "Seconds in which a client's detokenizes crossed the alert threshold.",
                |c| &c.alerts,
            ),
        ];
        for (name, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (client, c) in clients.iter() {
                let client = client.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(
                    out,
                    "{name}{{client=\"{client}\"}} {}",
                    value(c).load(Relaxed)
                );
            }
        }
        let name = "vault_detokenize_alert_threshold_per_sec";
        let _ = writeln!(
            out,
            "# HELP {name} Configured detokenizes per second per client that raise an alert."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {}", self.alert_per_sec.load(Relaxed));
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
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 9);
    }

    #[test]
    fn detokenize_counters_are_labelled_by_client() {
        let m = VaultMetrics::default();
        m.detokenize
            .client("authorizer")
            .answered
            .fetch_add(5, Relaxed);
        m.detokenize
            .client("authorizer")
            .alerts
            .fetch_add(1, Relaxed);
        m.detokenize.alert_per_sec.store(15_000, Relaxed);
        let text = m.render();
        assert!(text.contains("vault_client_detokenized_total{client=\"authorizer\"} 5\n"));
        assert!(text.contains("vault_client_detokenize_alerts_total{client=\"authorizer\"} 1\n"));
        assert!(text.contains("vault_detokenize_alert_threshold_per_sec 15000\n"));
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
