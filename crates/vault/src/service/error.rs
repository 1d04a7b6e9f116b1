//! Why the vault service could not open, or could not do a call. Owns the line between what a
//! caller is told and what stays in the vault's log: a refusal ([`VaultError`]) goes to the caller
//! as is; a failure of the vault's own parts keeps its cause as a `#[source]` (never repeated in
//! this error's own text, so a printed chain names each cause once) and reaches the caller only as
//! `Internal` with this error's own text.
//!
//! Must never carry a PAN, a CVC, a cardholder name, a secret or a stored value.

use hsm::HsmError;
use store::StoreError;

use crate::audit::AuditError;
use crate::keyring::SealError;
use crate::model::VaultError;
use crate::wire::DecodeError;

/// Why opening the vault, or making, loading or rotating its keys, failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory has no current key: `vault init` was not run (the operator's to do).
    #[error("vault keys are not initialized in this data directory: run `vault init`")]
    NotInitialized,
    /// The HSM could not create, find, wrap or unwrap a key.
    #[error("an HSM key operation failed")]
    Hsm(#[from] HsmError),
    /// The store could not read or write the key records.
    #[error("cannot read or write the vault's key records")]
    Store(#[from] StoreError),
    /// The audit log could not be started (its head or checkpoints do not verify, or the store).
    #[error("cannot start the audit log")]
    Audit(#[from] AuditError),
    /// The wrapped DEK record of this version is missing or does not parse: corruption or
    /// tampering.
    #[error("stored key record {0} is malformed")]
    BadKeyRecord(u32),
}

/// Why one call failed inside the vault.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The rules or the caller's rights refused it: answered as is.
    #[error(transparent)]
    Refused(#[from] VaultError),

    // The vault's own parts failed: answered `Internal`, logged with the cause.
    /// The store failed a read or a commit.
    #[error("store read or write failed")]
    Store(#[from] StoreError),
    /// An HSM call (fingerprint, key creation) failed.
    #[error("HSM call failed")]
    Hsm(#[from] HsmError),
    /// A record's sealed card data does not open under its DEK, or sealing failed.
    #[error("sealed card data does not open or seal")]
    Seal(#[from] SealError),
    /// A stored record does not decode: corruption or tampering, never the caller's doing.
    #[error("a stored record is malformed")]
    Record(#[from] DecodeError),
    /// The call's audit entry (and its change) could not be made durable, so it is not answered
    /// as done.
    #[error("audit log append failed")]
    Audit(#[from] AuditError),
    /// A key rotation asked for by an admin call failed.
    #[error("key rotation failed")]
    Keys(#[from] OpenError),
    /// The blocking task that ran the rotation panicked or was cancelled.
    #[error("the key rotation task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl CallError {
    /// What the caller is told. A failure is logged here, with its whole cause chain, because
    /// the caller only hears this error's own text.
    pub fn into_answer(self) -> VaultError {
        match self {
            CallError::Refused(refusal) => refusal,
            failure => {
                tracing::error!(error = %Chain(&failure), "vault call failed");
                VaultError::Internal(failure.to_string())
            }
        }
    }
}

/// Displays an error and each of its sources, `: `-separated (what `anyhow` prints with `{:#}`).
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_answered_with_its_own_text_and_chained_once() {
        let failure = CallError::Audit(AuditError::Stopped);
        assert_eq!(
            Chain(&failure).to_string(),
            "audit log append failed: audit log stopped"
        );
        assert_eq!(
            failure.into_answer(),
            VaultError::Internal("audit log append failed".into())
        );
        assert_eq!(
            CallError::Refused(VaultError::NotFound).into_answer(),
            VaultError::NotFound
        );
    }
}
