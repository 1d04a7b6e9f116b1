//! Why an HSM operation failed, in words an operator can act on. Never carries key material or
//! the PIN.

use cryptoki::error::{Error as Pkcs11Error, RvError};

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    ModuleMissing { module: String, reason: String },
    #[error("no initialized token labelled {0:?} in the PKCS#11 module")]
    TokenMissing(String),
    #[error("the HSM refused the user PIN (wrong PIN)")]
    WrongPin,
    #[error("the HSM token is locked (too many wrong PINs); an officer must reset the user PIN")]
    TokenLocked,
    #[error("HSM key {0} is missing; run `vault init` to create or find the keys")]
    KeyMissing(String),
    #[error("HSM key {0} already exists")]
    KeyExists(String),
    #[error(
        "refusing to destroy HSM key {label}: it is not older than the current version {current}"
    )]
    KeyNotRetired {
        label: String,
        current: crate::KeyVersion,
    },
    #[error("the HSM refused to export a non-extractable key")]
    KeyUnextractable,
    #[error("wrapped key is malformed or was wrapped under another key")]
    BadWrappedKey,
    #[error("cannot set up a SoftHSM token: {0}")]
    SoftHsmSetup(String),
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
