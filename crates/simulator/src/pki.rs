//! Development PKI: a throw-away CA, a server certificate for the simulator and a client
//! certificate for the authorizer's link, so that the ISO 8583 wire runs over real mutual TLS in
//! dev and in tests.
//!
//! Owns generation (rcgen), the on-disk layout of the five PEM files and the simulator's rustls
//! `ServerConfig`. It must never print or log a private key: [`DevPki`]'s `Debug` omits them and
//! they live in zeroizing strings. The link builds its own `ClientConfig` from these PEMs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use zeroize::Zeroizing;

// File names inside a certificate directory, as `simulator certs --out DIR` writes them.
/// The file of the CA certificate that both sides trust.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The file of the simulator's server certificate, signed by the CA.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// The file of the server certificate's private key.
pub const SERVER_KEY_FILE: &str = "server-key.pem";
/// The file of the link's client certificate, signed by the CA.
pub const CLIENT_CERT_FILE: &str = "client.pem";
/// The file of the client certificate's private key.
pub const CLIENT_KEY_FILE: &str = "client-key.pem";

/// Why PKI material could not be produced, read or turned into a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen could not generate a key or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM document holds no block of the expected kind.
    #[error("{what}: no PEM {kind} found")]
    MissingPem {
        /// Which document (e.g. the server certificate), never its contents.
        what: &'static str,
        /// What was expected: `certificate` or `private key`.
        kind: &'static str,
    },
    /// A PEM document is not well-formed PEM.
    #[error("{what}: malformed PEM")]
    MalformedPem {
        /// Which document, never its contents.
        what: &'static str,
    },
    /// rustls refused the certificates or key (e.g. the key does not match the certificate).
    #[error("TLS configuration rejected the certificates: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the CA.
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The five PEM documents of the development PKI. The server certificate names `localhost` and
/// `127.0.0.1`; both leaf certificates are signed by the CA.
#[derive(Clone)]
pub struct DevPki {
    /// The CA certificate that both sides trust.
    pub ca_cert_pem: String,
    /// The simulator's server certificate (`localhost`, `127.0.0.1`).
    pub server_cert_pem: String,
    /// The server certificate's private key; wiped on drop and never printed.
    pub server_key_pem: Zeroizing<String>,
    /// The link's client certificate.
    pub client_cert_pem: String,
    /// The client certificate's private key; wiped on drop and never printed.
    pub client_key_pem: Zeroizing<String>,
}

impl fmt::Debug for DevPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevPki").finish_non_exhaustive()
    }
}

impl DevPki {
    /// A fresh CA and leaf certificates (ECDSA P-256), valid for the default rcgen period.
    ///
    /// # Panics
    /// Only if rcgen cannot sign with fixed, valid parameters, which would be a bug in this
    /// function, not a runtime condition. [`DevPki::try_generate`] returns the error instead.
    pub fn generate() -> DevPki {
        DevPki::try_generate().expect("fixed dev PKI parameters are valid")
    }

    /// As [`DevPki::generate`], returning rcgen's error.
    pub fn try_generate() -> Result<DevPki, PkiError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "payment-core dev CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server_params
            .distinguished_name
            .push(DnType::CommonName, "simulator");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca_cert, &ca_key)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "authorizer");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &ca_cert, &ca_key)?;

        Ok(DevPki {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: Zeroizing::new(server_key.serialize_pem()),
            client_cert_pem: client_cert.pem(),
            client_key_pem: Zeroizing::new(client_key.serialize_pem()),
        })
    }

    /// Writes the five files into `dir` (created if missing). Key files are made owner-only.
    pub fn write_to(&self, dir: &Path) -> Result<(), PkiError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PkiError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for (name, body, secret) in [
            (CA_CERT_FILE, self.ca_cert_pem.as_str(), false),
            (SERVER_CERT_FILE, self.server_cert_pem.as_str(), false),
            (SERVER_KEY_FILE, self.server_key_pem.as_str(), true),
            (CLIENT_CERT_FILE, self.client_cert_pem.as_str(), false),
            (CLIENT_KEY_FILE, self.client_key_pem.as_str(), true),
        ] {
            let path = dir.join(name);
            write_file(&path, body.as_bytes(), secret).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Reads the five files that [`DevPki::write_to`] wrote.
    pub fn load_from(dir: &Path) -> Result<DevPki, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Io { path, source })
        };
        Ok(DevPki {
            ca_cert_pem: read(CA_CERT_FILE)?,
            server_cert_pem: read(SERVER_CERT_FILE)?,
            server_key_pem: Zeroizing::new(read(SERVER_KEY_FILE)?),
            client_cert_pem: read(CLIENT_CERT_FILE)?,
            client_key_pem: Zeroizing::new(read(CLIENT_KEY_FILE)?),
        })
    }

    /// A TLS 1.3 client presenting the client certificate and trusting only this CA: what a
    /// plain acquirer-side client (a test, a bench, a load tool) connects to the simulator with.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in parse_certs(&self.ca_cert_pem, "CA certificate")? {
            roots.add(ca)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                parse_certs(&self.client_cert_pem, "client certificate")?,
                parse_key(&self.client_key_pem, "client key")?,
            )?;
        Ok(Arc::new(config))
    }

    /// The part of the PKI that the simulator's TLS server needs.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            ca_cert_pem: self.ca_cert_pem.clone(),
            cert_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
        }
    }
}

#[cfg(unix)]
fn write_file(path: &Path, body: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    options.open(path)?.write_all(body)
}

#[cfg(not(unix))]
fn write_file(path: &Path, body: &[u8], _secret: bool) -> std::io::Result<()> {
    std::fs::write(path, body)
}

/// The simulator's TLS identity and the CA it requires client certificates to chain to.
#[derive(Clone)]
pub struct ServerTls {
    /// The CA a client certificate must chain to.
    pub ca_cert_pem: String,
    /// The server certificate the simulator presents.
    pub cert_pem: String,
    /// Its private key; wiped on drop and never printed.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// TLS 1.3 only, with a client certificate required and verified against the CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in parse_certs(&self.ca_cert_pem, "CA certificate")? {
            roots.add(ca)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                parse_certs(&self.cert_pem, "server certificate")?,
                parse_key(&self.key_pem, "server key")?,
            )?;
        Ok(Arc::new(config))
    }
}

/// All certificates of a PEM document, in order.
pub fn parse_certs(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PkiError::MalformedPem { what })?;
    if certs.is_empty() {
        return Err(PkiError::MissingPem {
            what,
            kind: "certificate",
        });
    }
    Ok(certs)
}

/// The first private key of a PEM document.
pub fn parse_key(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => PkiError::MissingPem {
            what,
            kind: "private key",
        },
        _ => PkiError::MalformedPem { what },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pki_round_trips_through_a_directory_and_builds_a_server_config() {
        let pki = DevPki::generate();
        let dir = tempfile::tempdir().unwrap();
        pki.write_to(dir.path()).unwrap();
        let loaded = DevPki::load_from(dir.path()).unwrap();
        assert_eq!(loaded.ca_cert_pem, pki.ca_cert_pem);
        assert_eq!(*loaded.client_key_pem, *pki.client_key_pem);
        loaded.server_tls().server_config().unwrap();
        assert!(!format!("{loaded:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_key_is_not_accepted_as_a_certificate() {
        let pki = DevPki::generate();
        let err = parse_certs(&pki.server_key_pem, "server certificate").unwrap_err();
        assert!(matches!(err, PkiError::MissingPem { .. }), "{err}");
    }
}
