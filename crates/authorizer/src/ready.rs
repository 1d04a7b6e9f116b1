//! The one line the `authorizer` binary prints on stdout once its admin listener is bound:
//! `admin listening on <addr>`. Supervisors and tests wait for it and learn the admin port from
//! it when they asked for port 0; this type is both its writer and its reader, so the two cannot
//! drift apart.

use std::fmt;
use std::net::SocketAddr;

/// The address the `authorizer` binary announces on its readiness line once its admin endpoint
/// (metrics, health) is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// Where the admin endpoint is bound.
    pub admin: SocketAddr,
}

impl Ready {
    const PREFIX: &'static str = "admin listening on ";

    /// Reads a readiness line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let admin = line.trim().strip_prefix(Ready::PREFIX)?.parse().ok()?;
        Some(Ready { admin })
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Ready::PREFIX, self.admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        let ready = Ready {
            admin: "127.0.0.1:9090".parse().unwrap(),
        };
        assert_eq!(Ready::parse(&ready.to_string()), Some(ready));
        assert_eq!(Ready::parse("admin listening on nowhere"), None);
        assert_eq!(Ready::parse("READY iso=127.0.0.1:1 acs=127.0.0.1:2"), None);
    }
}
