//! The link's validated configuration: where the processing centre is, how we identify
//! ourselves on the wire, and every time-out and bound of the connection pool.
//!
//! Owns validation, so that nothing downstream meets a zero pool or an 9-character terminal ID.
//! It must never hold TLS key material outside the rustls config it builds.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;

/// One processing-centre address; the pool fails over through them in order.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`, resolved at each connect.
    pub addr: String,
    /// The name the server's certificate must carry.
    pub server_name: ServerName<'static>,
}

/// DE 32: acquiring institution ID, 1 to 11 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerId(String);

impl AcquirerId {
    /// One to eleven digits, as DE 32 allows; [`ConfigError::AcquirerId`] otherwise.
    pub fn parse(s: &str) -> Result<AcquirerId, ConfigError> {
        if (1..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AcquirerId(s.to_owned()))
        } else {
            Err(ConfigError::AcquirerId)
        }
    }

    /// The digits of DE 32.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// DE 41: card acceptor terminal ID, printable ASCII, space-padded to 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalId([u8; 8]);

impl TerminalId {
    /// One to eight printable ASCII characters, padded with spaces to eight.
    pub fn parse(s: &str) -> Result<TerminalId, ConfigError> {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(ConfigError::TerminalId);
        }
        let mut t = [b' '; 8];
        t[..s.len()].copy_from_slice(s.as_bytes());
        Ok(TerminalId(t))
    }

    /// The eight bytes of DE 41, padding included.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

/// How long a slot waits between reconnects after a failed connect or a dropped connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry, doubled at each failure.
    pub initial: Duration,
    /// The cap, so a long outage is still retried at a steady pace.
    pub max: Duration,
}

impl Backoff {
    /// Exponential with "equal jitter": half fixed, half random, so that many slots reconnecting
    /// after one outage do not knock on the door in step.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        exp / 2 + exp.mul_f64(random.clamp(0.0, 1.0) / 2.0)
    }
}

/// Everything [`crate::Link::start`] needs to reach the processing centre; checked by
/// [`LinkConfig::validate`] before the pool starts.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The processing centre's addresses, tried in order on a failed connect (fail-over).
    pub endpoints: Vec<Endpoint>,
    /// Mutual TLS 1.3 with our client certificate ([`crate::tls::client_config`]).
    pub tls: Arc<ClientConfig>,
    /// Persistent connections in the pool.
    pub connections: usize,
    /// Requests in flight on one connection; a caller past it waits (back-pressure).
    pub max_in_flight: usize,
    /// DE 32 of every message: the acquirer the network knows us as.
    pub acquirer_id: AcquirerId,
    /// DE 41 of every message; with DE 7 and the STAN, how an answer is matched to its request.
    pub terminal_id: TerminalId,
    /// How long a 0100/0200/0220 waits for its answer before it is reversed.
    pub request_timeout: Duration,
    /// How long a 0400/0420/0421 waits before it (again) goes to store-and-forward.
    pub reversal_timeout: Duration,
    /// How long a TCP connect and TLS handshake may take before the next endpoint is tried.
    pub connect_timeout: Duration,
    /// An echo test (0800/301) goes out when a connection has been quiet this long.
    pub echo_interval: Duration,
    /// The delays between reconnects of a slot.
    pub backoff: Backoff,
    /// How often store-and-forward retries while reversals are pending.
    pub saf_retry_interval: Duration,
}

/// Why a [`LinkConfig`] was refused: always the fault of whoever wrote the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No endpoint was given.
    #[error("link: at least one endpoint is needed")]
    NoEndpoints,
    /// An endpoint's server name cannot be checked against a certificate.
    #[error("link: endpoint server name {0:?} is not a valid DNS name or IP address")]
    ServerName(String),
    /// `connections` or `max_in_flight` is zero: the pool could carry nothing.
    #[error("link: connections and max_in_flight must be at least 1")]
    ZeroPool,
    /// DE 32 is not 1 to 11 digits.
    #[error("link: acquirer_id must be 1 to 11 digits")]
    AcquirerId,
    /// DE 41 is empty, longer than 8 or not printable ASCII.
    #[error("link: terminal_id must be 1 to 8 printable ASCII characters")]
    TerminalId,
    /// A time-out or interval is zero, or the backoff's cap is below its initial delay.
    #[error("link: time-outs and intervals must be greater than zero")]
    ZeroDuration,
}

impl Endpoint {
    /// The endpoint at `addr` (`host:port`) whose certificate must name `server_name`.
    pub fn new(addr: impl Into<String>, server_name: &str) -> Result<Endpoint, ConfigError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ConfigError::ServerName(server_name.to_owned()))?;
        Ok(Endpoint {
            addr: addr.into(),
            server_name,
        })
    }
}

/// The dev defaults of ARCHITECTURE.md, written once: [`LinkConfig::new`] takes them, and the
/// authorizer's config file falls back on them for every key it leaves out.
pub mod defaults {
    use std::time::Duration;

    /// The simulator of the dev setup.
    pub const ENDPOINT: &str = "127.0.0.1:8583";
    /// The name on the dev simulator's certificate.
    pub const SERVER_NAME: &str = "localhost";
    /// Persistent connections in the pool.
    pub const CONNECTIONS: usize = 2;
    /// Requests in flight on one connection before callers wait.
    pub const MAX_IN_FLIGHT: usize = 256;
    /// DE 32: the acquirer's institution ID (not a merchant's).
    pub const ACQUIRER_ID: &str = "400001";
    /// DE 41.
    pub const TERMINAL_ID: &str = "ASSIST01";
    /// How long an authorization or completion waits for its answer.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long a reversal waits before it goes to store-and-forward.
    pub const REVERSAL_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long a connect and handshake may take.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// How long a connection may be quiet before an echo test.
    pub const ECHO_INTERVAL: Duration = Duration::from_secs(30);
    /// The first reconnect delay.
    pub const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
    /// The longest reconnect delay.
    pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
    /// How often pending reversals are repeated.
    pub const SAF_RETRY_INTERVAL: Duration = Duration::from_secs(10);
}

impl LinkConfig {
    /// The [`defaults`] around the given endpoints and TLS config.
    pub fn new(endpoints: Vec<Endpoint>, tls: Arc<ClientConfig>) -> LinkConfig {
        LinkConfig {
            endpoints,
            tls,
            connections: defaults::CONNECTIONS,
            max_in_flight: defaults::MAX_IN_FLIGHT,
            acquirer_id: AcquirerId::parse(defaults::ACQUIRER_ID).expect("a valid default"),
            terminal_id: TerminalId::parse(defaults::TERMINAL_ID).expect("a valid default"),
            request_timeout: defaults::REQUEST_TIMEOUT,
            reversal_timeout: defaults::REVERSAL_TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            echo_interval: defaults::ECHO_INTERVAL,
            backoff: Backoff {
                initial: defaults::BACKOFF_INITIAL,
                max: defaults::BACKOFF_MAX,
            },
            saf_retry_interval: defaults::SAF_RETRY_INTERVAL,
        }
    }

    /// The configuration itself when every bound and duration is usable, so a zero pool or a zero
    /// time-out is refused at start, not met under traffic.
    pub fn validate(self) -> Result<LinkConfig, ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        if self.connections == 0 || self.max_in_flight == 0 {
            return Err(ConfigError::ZeroPool);
        }
        let durations = [
            self.request_timeout,
            self.reversal_timeout,
            self.connect_timeout,
            self.echo_interval,
            self.backoff.initial,
            self.saf_retry_interval,
        ];
        if durations.iter().any(Duration::is_zero) || self.backoff.max < self.backoff.initial {
            return Err(ConfigError::ZeroDuration);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(AcquirerId::parse(defaults::ACQUIRER_ID).is_ok());
        assert!(TerminalId::parse(defaults::TERMINAL_ID).is_ok());
        assert!(Endpoint::new(defaults::ENDPOINT, defaults::SERVER_NAME).is_ok());
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(AcquirerId::parse("123456789012").is_err());
        assert!(AcquirerId::parse("12a").is_err());
        assert_eq!(TerminalId::parse("T1").unwrap().as_bytes(), b"T1      ");
        assert!(TerminalId::parse("TERMINAL9").is_err());
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_in_the_upper_half() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(30, 0.0), Duration::from_millis(500));
    }
}
