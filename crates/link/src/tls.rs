//! The link's side of mutual TLS: a rustls client configuration from PEM material (the CA that
//! signed the processing centre's certificate, our client certificate and key).
//!
//! Owns PEM parsing for the link. It must never log or put key material into an error; errors
//! name the file or the part that was wrong.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: not valid PEM")]
    Pem { what: &'static str },
    #[error("{what}: no certificate found")]
    NoCertificate { what: &'static str },
    #[error("client key: no private key found")]
    NoKey,
    #[error("CA certificate rejected: {0}")]
    Ca(rustls::Error),
    #[error("client certificate or key rejected: {0}")]
    ClientAuth(rustls::Error),
    #[error("TLS 1.3 unavailable: {0}")]
    Protocol(rustls::Error),
}

/// PEM text of the three pieces of TLS material. The key's buffer is wiped on drop.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca_cert_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

fn certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem { what })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certs)
}

/// A TLS 1.3-only client config that presents our certificate and trusts only the given CA.
pub fn client_config(m: &TlsMaterial) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certs(&m.ca_cert_pem, "CA certificate")? {
        roots.add(ca).map_err(TlsError::Ca)?;
    }
    let chain = certs(&m.client_cert_pem, "client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(m.client_key_pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey,
        _ => TlsError::Pem { what: "client key" },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Protocol)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(TlsError::ClientAuth)?;
    Ok(Arc::new(config))
}
