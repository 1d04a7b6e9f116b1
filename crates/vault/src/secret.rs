//! Where a process finds a secret that must not sit in its config file: an environment variable or
//! a file only its owner can read. Shared by the vault (client secrets, the HSM PIN) and its
//! clients (their own secret), so both refuse the same unsafe setups with the same words.
//!
//! Must never put a secret's value into an error.

use std::path::{Path, PathBuf};

/// A config names a secret by `<name>_env = "VAR"` or `<name>_file = "path"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The name of the environment variable holding the secret.
    Env(String),
    /// The path of a file holding the secret, readable by its owner only.
    File(PathBuf),
}

/// Why a secret cannot be read; never carries the secret's value. The operator's to fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The named environment variable is not set (the error carries its name).
    #[error("secret {0}: environment variable is not set")]
    MissingEnv(String),
    #[error("secret file {}: {reason}", path.display())]
    /// The file cannot be read, or group or others can reach it (the secret may have leaked).
    File {
        /// The secret file.
        path: PathBuf,
        /// What is wrong with it, never its contents.
        reason: String,
    },
    /// The config gives both `*_env` and `*_file` for one secret.
    #[error("a secret needs exactly one of *_env or *_file")]
    Ambiguous,
}

impl SecretSource {
    /// The source named by the two optional config keys; `None` when neither is set.
    pub fn from_keys(
        env: Option<String>,
        file: Option<PathBuf>,
    ) -> Result<Option<SecretSource>, SecretError> {
        match (env, file) {
            (None, None) => Ok(None),
            (Some(var), None) => Ok(Some(SecretSource::Env(var))),
            (None, Some(path)) => Ok(Some(SecretSource::File(path))),
            (Some(_), Some(_)) => Err(SecretError::Ambiguous),
        }
    }

    /// Reads the secret; a file's trailing newline is not part of it. The caller moves the value
    /// into a zeroizing holder at once.
    pub fn read(&self) -> Result<String, SecretError> {
        match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| SecretError::MissingEnv(var.clone()))
            }
            SecretSource::File(path) => read_file(path),
        }
    }
}

/// A secret file must be readable by its owner only: anything else means the secret may already
/// have leaked, and starting would hide that.
fn read_file(path: &Path) -> Result<String, SecretError> {
    let err = |reason: String| SecretError::File {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(err(
                "must not be readable by group or others (chmod 600)".into()
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_others_can_read_is_refused_and_one_only_its_owner_can_read_is_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "hunter2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let source = SecretSource::File(path.clone());
        let err = source.read().unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && !err.contains("hunter2"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.read().unwrap(), "hunter2");
    }

    #[test]
    fn exactly_one_source_or_none() {
        assert_eq!(SecretSource::from_keys(None, None).unwrap(), None);
        assert!(matches!(
            SecretSource::from_keys(Some("A".into()), Some("f".into())),
            Err(SecretError::Ambiguous)
        ));
        let missing = SecretSource::Env("VAULT_TEST_SURELY_UNSET_VARIABLE".into());
        assert!(matches!(missing.read(), Err(SecretError::MissingEnv(_))));
    }
}
