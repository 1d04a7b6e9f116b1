//! Why an HSM operation failed, in words an operator can act on. Never carries key material or
//! the PIN.

use cryptoki::error::{Error as Pkcs11Error, RvError};

/// Why an HSM operation failed; each variant says whose fault it is. Never holds a key or the
/// PIN.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The PKCS#11 module could not be loaded: a wrong path or a missing install (configuration).
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    ModuleMissing {
        /// The configured path of the module.
        module: String,
        /// Why the loader refused it (not found, not a PKCS#11 library).
        reason: String,
    },
    /// No token has the configured label: wrong label, or the token was never initialised.
    #[error("no initialized token labelled {0:?} in the PKCS#11 module")]
    TokenMissing(String),
    /// The user PIN was refused: the configuration's PIN is wrong.
    #[error("the HSM refused the user PIN (wrong PIN)")]
    WrongPin,
    /// Too many wrong PINs locked the user out; the security officer must reset the PIN.
    #[error("the HSM token is locked (too many wrong PINs); an officer must reset the user PIN")]
    TokenLocked,
    /// A key the operation needs is not on the token (not created, or destroyed as retired).
    #[error("HSM key {0} is missing; run `vault init` to create or find the keys")]
    KeyMissing(String),
    /// A key of that label and version is already on the token: generation refused, not repeated.
    #[error("HSM key {0} already exists")]
    KeyExists(String),
    /// The caller asked to destroy a key that is not older than the current version.
    #[error(
        "refusing to destroy HSM key {label}: it is not older than the current version {current}"
    )]
    KeyNotRetired {
        /// The key that was to be destroyed.
        label: String,
        /// The version in use; only versions older than it may be destroyed.
        current: crate::KeyVersion,
    },
    /// The module refused to export a non-extractable key: expected of a KEK, a bug if asked.
    #[error("the HSM refused to export a non-extractable key")]
    KeyUnextractable,
    /// A stored wrapped DEK is damaged or was wrapped under another KEK: the data, not the HSM.
    #[error("wrapped key is malformed or was wrapped under another key")]
    BadWrappedKey,
    /// Setting up a dev SoftHSM token failed (config file, `SOFTHSM2_CONF`, token init).
    #[error("cannot set up a SoftHSM token: {0}")]
    SoftHsmSetup(String),
    /// Any other PKCS#11 failure, with the module's return value for the operator.
    #[error("PKCS#11 call failed: {0}")]
    Pkcs11(String),
}

impl From<Pkcs11Error> for HsmError {
    fn from(e: Pkcs11Error) -> Self {
        match e {
            Pkcs11Error::Pkcs11(RvError::PinIncorrect, _) => HsmError::WrongPin,
            Pkcs11Error::Pkcs11(RvError::PinLocked, _) => HsmError::TokenLocked,
            Pkcs11Error::Pkcs11(RvError::KeyUnextractable, _) => HsmError::KeyUnextractable,
            Pkcs11Error::Pkcs11(
                RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange,
                _,
            ) => HsmError::BadWrappedKey,
            other => HsmError::Pkcs11(other.to_string()),
        }
    }
}
