//! Files and directories that only their owner may reach: the vault's data directory and
//! database, a TLS private key (the vault's or a client's). Both sides of the vault protocol
//! check them the same way and refuse with the same words, naming the path and its mode.
//!
//! Owns the check, never the creation (the vault creates under an owner-only umask, see
//! `startup`). Must never read the file's contents.

use std::path::{Path, PathBuf};

/// Why a path that must be private was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// Group or others have some access: what it holds may already have leaked, and starting
    /// would hide that.
    #[error(
        "{} is mode {mode:04o}: group or others can reach it (chmod {} it)",
        path.display(),
        if *dir { "700" } else { "600" }
    )]
    Exposed {
        /// The refused path.
        path: PathBuf,
        /// Its permission bits, shown in octal.
        mode: u32,
        /// Whether it is a directory (the advice is then `chmod 700`, else `chmod 600`).
        dir: bool,
    },
    /// Its metadata cannot be read.
    #[error("cannot check the permissions of {}", path.display())]
    Stat {
        /// The path that could not be checked.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// Refuses `path` when its group or others have any permission bit.
pub fn check(path: &Path) -> Result<(), PrivateError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| PrivateError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PrivateError::Exposed {
            path: path.to_path_buf(),
            mode,
            dir: meta.is_dir(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_path_others_can_reach_is_refused_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("vault.key");
        std::fs::write(&key, "k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = check(&key).unwrap_err().to_string();
        assert!(
            err.contains("vault.key is mode 0640") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check(&key).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("mode 0755") && err.contains("chmod 700"),
            "{err}"
        );
    }
}
