//! Loading PEM files into rustls configurations for mutual TLS between a client and a remote
//! vault, and the one TLS policy of both sides: TLS 1.3 only (as the link and the simulator), a
//! client certificate required. Owns nothing else; never logs key material.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a side's TLS files cannot be turned into a configuration; the operator's to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or CA file holds no PEM certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// A key file holds no PEM private key rustls can use.
    #[error("{0} holds no private key")]
    NoKey(PathBuf),
    /// rustls refused the certificates or key (say, a key that does not match its certificate).
    #[error("TLS configuration refused")]
    Config(#[from] rustls::Error),
    /// The server's CA file cannot make a client certificate verifier.
    #[error("the CA certificates cannot verify client certificates")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A private key file that group or others can read.
    #[error(transparent)]
    KeyExposed(#[from] crate::private::PrivateError),
}

/// The only protocol version either side offers or accepts.
const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// PEM files of one side: its certificate chain and key, and the CA that signs the other side.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signs the other side's certificate, the only root trusted.
    pub ca: PathBuf,
    /// This side's certificate chain.
    pub cert: PathBuf,
    /// This side's private key: owner-only, refused otherwise.
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every PEM certificate in `path`; none is an error.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        Err(TlsError::NoCertificate(path.to_path_buf()))
    } else {
        Ok(certs)
    }
}

/// Reads a private key, refusing a file that group or others can reach (it may have leaked).
fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    crate::private::check(path)?;
    let pem = zeroize::Zeroizing::new(read(path)?);
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoKey(path.to_path_buf()))
}

fn roots(ca: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c)?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that offers only TLS 1.3, trusts only `files.ca` and presents its certificate.
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots(&files.ca)?)
        .with_client_auth_cert(certs(&files.cert)?, key(&files.key)?)?;
    Ok(Arc::new(cfg))
}

/// A server that accepts only TLS 1.3 clients with a certificate signed by `files.ca`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&files.ca)?),
        provider(),
    )
    .build()?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&files.cert)?, key(&files.key)?)?;
    Ok(Arc::new(cfg))
}
