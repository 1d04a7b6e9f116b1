//! The line the `authorizer` binary prints on stdout once its merchant API answers, and its
//! reading: `READY api=<addr> admin=<addr>` (the simulator's shape), so that a supervisor or a
//! test that asked for port 0 learns both addresses. This type is both its writer and its reader
//! (the binary and `testkit` use it), so the two cannot drift apart.

use std::fmt;
use std::net::SocketAddr;

/// Where the authorizer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The merchant API.
    pub api: SocketAddr,
    /// The admin endpoint (metrics, health).
    pub admin: SocketAddr,
}

impl Ready {
    /// Reads a readiness line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let mut words = line.split_whitespace();
        if words.next() != Some("READY") {
            return None;
        }
        let (mut api, mut admin) = (None, None);
        for word in words {
            if let Some(a) = word.strip_prefix("api=") {
                api = a.parse().ok();
            } else if let Some(a) = word.strip_prefix("admin=") {
                admin = a.parse().ok();
            }
        }
        Some(Ready {
            api: api?,
            admin: admin?,
        })
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "READY api={} admin={}", self.api, self.admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        let r = Ready {
            api: "127.0.0.1:8080".parse().unwrap(),
            admin: "127.0.0.1:9090".parse().unwrap(),
        };
        assert_eq!(Ready::parse(&r.to_string()), Some(r));
        assert_eq!(Ready::parse("admin listening on 127.0.0.1:9090"), None);
        assert_eq!(Ready::parse("READY api=127.0.0.1:1"), None);
    }
}
