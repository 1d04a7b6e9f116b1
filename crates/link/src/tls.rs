//! The link's side of mutual TLS: a rustls client configuration from PEM material (the CA that
//! signed the processing centre's certificate, our client certificate and key).
//!
//! Owns PEM parsing for the link. It must never log or put key material into an error; errors
//! name the file or the part that was wrong.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS material could not become a client config: the operator's material is wrong.
/// Never carries key material; it names the part that was wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The named part is not valid PEM.
    #[error("{what}: not valid PEM")]
    Pem {
        /// The part of the material that was wrong (CA certificate, client certificate or key).
        what: &'static str,
    },
    /// The named part holds no certificate.
    #[error("{what}: no certificate found")]
    NoCertificate {
        /// The part that should have held a certificate.
        what: &'static str,
    },
    /// The client key's PEM holds no private key.
    #[error("client key: no private key found")]
    NoKey,
    /// rustls refused the CA certificate.
    #[error("CA certificate rejected: {0}")]
    Ca(rustls::Error),
    /// rustls refused our certificate chain or its key (e.g. they do not match).
    #[error("client certificate or key rejected: {0}")]
    ClientAuth(rustls::Error),
    /// The crypto provider cannot do TLS 1.3; a build problem, not the operator's.
    #[error("TLS 1.3 unavailable: {0}")]
    Protocol(rustls::Error),
}

/// PEM text of the three pieces of TLS material. The key's buffer is wiped on drop.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA that signed the processing centre's certificate: the only one trusted.
    pub ca_cert_pem: String,
    /// Our certificate chain, presented to the processing centre.
    pub client_cert_pem: String,
    /// Our certificate's private key; wiped on drop, never logged.
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
