//! The one line the `simulator` binary prints on stdout once both listeners are bound:
//! `READY iso=<addr> acs=<addr>`. Supervisors and tests wait for it and learn the ports from it
//! when they asked for port 0; this type is both its writer and its reader.

use std::fmt;
use std::net::SocketAddr;

/// The addresses the `simulator` binary announces on its READY line once both listeners are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// Where the ISO 8583 listener is bound.
    pub iso: SocketAddr,
    /// Where the ACS pages and the ledger endpoint are bound.
    pub acs: SocketAddr,
}

impl Ready {
    /// Reads a readiness line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let mut words = line.split_whitespace();
        if words.next() != Some("READY") {
            return None;
        }
        let (mut iso, mut acs) = (None, None);
        for word in words {
            if let Some(a) = word.strip_prefix("iso=") {
                iso = a.parse().ok();
            } else if let Some(a) = word.strip_prefix("acs=") {
                acs = a.parse().ok();
            }
        }
        Some(Ready {
            iso: iso?,
            acs: acs?,
        })
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "READY iso={} acs={}", self.iso, self.acs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        let ready = Ready {
            iso: "127.0.0.1:8583".parse().unwrap(),
            acs: "127.0.0.1:8584".parse().unwrap(),
        };
        assert_eq!(Ready::parse(&ready.to_string()), Some(ready));
        assert_eq!(Ready::parse("READY iso=127.0.0.1:1"), None);
        assert_eq!(Ready::parse("vault listening unix=/x"), None);
    }
}
