//! Who is on the other end of a connection: the peer's description for the audit log (Unix
//! credentials, TCP address, client certificate fingerprint), the source that per-source caps
//! and the login throttle count against, the mapping from a client certificate to exactly one
//! configured client, and the sanitising of a client id a peer claims.
//!
//! Must never match a certificate by pattern (no DNS names, no wildcards, no first match), and
//! never let a name the peer chose reach the audit log or a log line unsanitised.

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

use crate::config::{ClientEntry, TlsIdentity};

/// What per-source caps and the login throttle count against: a Unix peer's uid (every process
/// of one user is one source), a TCP peer's IP address (its port changes with every connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A Unix socket peer, by user id.
    Uid(u32),
    /// A Unix socket peer whose credentials the kernel did not give (counted together).
    UnknownUnix,
    /// A TCP peer, by address.
    Ip(IpAddr),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Uid(uid) => write!(f, "unix uid={uid}"),
            Source::UnknownUnix => f.write_str("unix credentials unavailable"),
            Source::Ip(ip) => write!(f, "tcp {ip}"),
        }
    }
}

/// A connected peer as the vault saw it, before and after authentication.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The source its connection counts against.
    pub source: Source,
    /// `unix uid=… gid=… pid=…` or `tcp addr:port`, then ` cert-sha256=…` once a TLS handshake
    /// gave a certificate: what an investigator needs to find the process or host.
    description: String,
}

impl Peer {
    /// A Unix socket peer from the kernel's credentials of the connecting process.
    pub fn unix(cred: Option<tokio::net::unix::UCred>) -> Peer {
        match cred {
            Some(c) => Peer {
                source: Source::Uid(c.uid()),
                description: format!(
                    "unix uid={} gid={} pid={}",
                    c.uid(),
                    c.gid(),
                    c.pid().map_or_else(|| "?".to_string(), |p| p.to_string())
                ),
            },
            None => Peer {
                source: Source::UnknownUnix,
                description: "unix credentials unavailable".into(),
            },
        }
    }

    /// A TCP peer by its address.
    pub fn tcp(addr: SocketAddr) -> Peer {
        Peer {
            source: Source::Ip(addr.ip()),
            description: format!("tcp {addr}"),
        }
    }

    /// Adds the fingerprint of the certificate the peer presented.
    pub fn presented(&mut self, cert_der: &[u8]) {
        self.description.push_str(" cert-sha256=");
        self.description.push_str(&hex(&fingerprint(cert_der)));
    }

    /// The description the audit log records.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

/// The SHA-256 of a certificate's DER encoding, as `tls_cert_sha256` pins it.
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    Sha256::digest(cert_der).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a (CA-verified) client certificate was given no client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate's extensions do not parse.
    #[error("the client certificate does not parse")]
    Unparsable,
    /// No configured client's identity is in the certificate.
    #[error("the client certificate names no configured client")]
    NoClient,
    /// Several configured clients' identities are in the certificate: giving it any one role
    /// would depend on the config's order.
    #[error("the client certificate names {0} configured clients")]
    Ambiguous(usize),
}

/// The one configured client a certificate identifies: its URI SAN equals a client's
/// `tls_uri`, or its hash equals a client's `tls_cert_sha256`. Zero or several matches refuse.
pub fn identify<'c>(
    clients: &'c [ClientEntry],
    cert_der: &[u8],
) -> Result<&'c ClientEntry, IdentityError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|_| IdentityError::Unparsable)?;
    let mut uris = Vec::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparsable)?
    {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                uris.push(*uri);
            }
        }
    }
    let hash = fingerprint(cert_der);
    let matches: Vec<&ClientEntry> = clients
        .iter()
        .filter(|c| match &c.tls_identity {
            Some(TlsIdentity::Uri(uri)) => uris.contains(&uri.as_str()),
            Some(TlsIdentity::CertSha256(pin)) => *pin == hash,
            None => false,
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(IdentityError::NoClient),
        many => Err(IdentityError::Ambiguous(many.len())),
    }
}

/// Longest client id kept from what a peer claims; configured ids are short names.
pub const MAX_CLAIMED_ID: usize = 64;

/// A client id claimed by a peer (before it proved anything), made safe to store and print:
/// at most [`MAX_CLAIMED_ID`] characters of `A-Z a-z 0-9 . _ - @ : + /`, anything else
/// replaced by `?`, and `...` appended when it was cut. A hostile id cannot break a log line,
/// drive a terminal or fill the audit log.
pub fn sanitize_claimed_id(claimed: &str) -> String {
    let mut out: String = claimed
        .chars()
        .take(MAX_CLAIMED_ID)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@:+/".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    if claimed.chars().nth(MAX_CLAIMED_ID).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn client(id: &str, identity: TlsIdentity) -> ClientEntry {
        ClientEntry {
            id: id.into(),
            role: Role::Facade,
            secret: None,
            tls_identity: Some(identity),
        }
    }

    fn cert_with(sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(u: &str) -> rcgen::SanType {
        rcgen::SanType::URI(u.try_into().unwrap())
    }

    #[test]
    fn a_certificate_gets_the_one_client_its_uri_or_hash_names() {
        let a = cert_with(vec![uri("urn:vault:client:a")]);
        let clients = [
            client("a", TlsIdentity::Uri("urn:vault:client:a".into())),
            client("b", TlsIdentity::CertSha256(fingerprint(b"other"))),
        ];
        assert_eq!(identify(&clients, &a).unwrap().id, "a");
        let pinned = [client("p", TlsIdentity::CertSha256(fingerprint(&a)))];
        assert_eq!(identify(&pinned, &a).unwrap().id, "p");
    }

    #[test]
    fn a_certificate_naming_two_clients_or_none_gets_nothing() {
        let both = cert_with(vec![uri("urn:vault:client:a"), uri("urn:vault:client:b")]);
        let clients = [
            client("a", TlsIdentity::Uri("urn:vault:client:a".into())),
            client("b", TlsIdentity::Uri("urn:vault:client:b".into())),
        ];
        assert_eq!(
            identify(&clients, &both).unwrap_err(),
            IdentityError::Ambiguous(2)
        );
        let near = cert_with(vec![uri("urn:vault:client:a2")]);
        assert_eq!(
            identify(&clients, &near).unwrap_err(),
            IdentityError::NoClient
        );
        assert_eq!(
            identify(&clients, b"not a certificate").unwrap_err(),
            IdentityError::Unparsable
        );
    }

    #[test]
    fn a_claimed_id_is_cut_and_stripped_of_anything_unprintable() {
        assert_eq!(sanitize_claimed_id("facade"), "facade");
        let hostile = format!("admin\n\u{1b}[31mok\r{}", "x".repeat(10_000));
        let clean = sanitize_claimed_id(&hostile);
        assert!(clean.starts_with("admin???31mok?xx"), "{clean}");
        assert!(clean.len() <= MAX_CLAIMED_ID + 3, "{}", clean.len());
        assert!(clean.chars().all(|c| c.is_ascii_graphic()));
    }
}
