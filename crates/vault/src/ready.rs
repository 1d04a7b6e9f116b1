//! The one line `vault serve` prints on stdout once its keys are loaded and its sockets are bound:
//! `vault listening unix=<path> tls=<addr|->`. Supervisors, scripts and tests wait for it and learn
//! the TLS port from it when the config asked for port 0; this type is both its writer and its
//! reader, so the two cannot drift apart. The text is what operators' scripts already match, so
//! it must not change without them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `vault serve` announces on its readiness line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The Unix socket the vault serves.
    pub unix: PathBuf,
    /// The mutual-TLS listener, when one is configured (`-` on the line otherwise).
    pub tls: Option<SocketAddr>,
}

impl Ready {
    /// Reads a readiness line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Ready> {
        let mut words = line.split_whitespace();
        if (words.next(), words.next()) != (Some("vault"), Some("listening")) {
            return None;
        }
        let (mut unix, mut tls) = (None, None);
        for word in words {
            if let Some(path) = word.strip_prefix("unix=") {
                unix = Some(PathBuf::from(path));
            } else if let Some(addr) = word.strip_prefix("tls=") {
                tls = Some(if addr == "-" {
                    None
                } else {
                    Some(addr.parse().ok()?)
                });
            }
        }
        Some(Ready {
            unix: unix?,
            tls: tls?,
        })
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vault listening unix={} tls=", self.unix.display())?;
        match self.tls {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        let plain = Ready {
            unix: "/tmp/v.sock".into(),
            tls: None,
        };
        assert_eq!(plain.to_string(), "vault listening unix=/tmp/v.sock tls=-");
        assert_eq!(Ready::parse(&plain.to_string()), Some(plain));
        let tls = Ready {
            unix: "/v".into(),
            tls: Some("127.0.0.1:7000".parse().unwrap()),
        };
        assert_eq!(
            tls.to_string(),
            "vault listening unix=/v tls=127.0.0.1:7000"
        );
        assert_eq!(Ready::parse(&tls.to_string()), Some(tls));
        assert_eq!(Ready::parse("vault listening tls=-"), None);
        assert_eq!(Ready::parse("vault listening unix=/v tls=nowhere"), None);
        assert_eq!(Ready::parse("READY iso=127.0.0.1:1 acs=127.0.0.1:2"), None);
    }
}
