//! What a vault process does before it touches a secret, and what `vault serve` holds while it
//! runs: an owner-only umask, no core dumps and a non-dumpable process (the HSM PIN, client
//! secrets and unwrapped DEKs live in its memory); the data directory created owner-only and
//! refused when wider; an exclusive lock on the data directory taken before anything in it is
//! opened or replaced; and the socket file removed at shutdown only when it is still the one
//! this process bound.
//!
//! Must never remove or replace a file in the data directory without holding the lock.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::private::{self, PrivateError};

/// Why the vault refused to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // The operator's setup.
    /// Another vault process holds the data directory.
    #[error(
        "another vault is running on {} (it holds {}); stop it first",
        dir.display(),
        lock.display()
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file the other process holds.
        lock: PathBuf,
    },
    /// The data directory (or the database) can be reached by group or others.
    #[error(transparent)]
    Private(#[from] PrivateError),

    // The system.
    /// The data directory or its lock file could not be created or opened.
    #[error("cannot create or open {}", path.display())]
    Create {
        /// The directory or file that could not be created or opened.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A process hardening call failed.
    #[error("cannot {what}")]
    Harden {
        /// What the vault tried to do, in its own words (for the error text).
        what: &'static str,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// Owner-only creation mask, no core file, not dumpable (no core either, and `/proc/<pid>/mem`,
/// `environ` and ptrace closed to other processes of the same user). Called first by every
/// `vault` command: each of them holds the HSM PIN.
pub fn harden_process() -> Result<(), StartError> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit};
    let harden = |what| {
        move |e: rustix::io::Errno| StartError::Harden {
            what,
            source: e.into(),
        }
    };
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(Resource::Core, none)
        .map_err(harden("set the core file size limit to 0"))?;
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(harden("mark the process not dumpable"))?;
    Ok(())
}

/// Creates `dir` (and missing parents) owner-only, and refuses it when group or others can
/// reach it.
pub fn private_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StartError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(private::check(dir)?)
}

/// The exclusive lock on a data directory (`flock` on `vault.lock`), held for the life of the
/// process: the kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    /// Held open for the lock; never read or written.
    _file: File,
}

impl DataDirLock {
    /// Creates the data directory owner-only (refusing a wider one), then takes its lock or
    /// says which running vault holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StartError> {
        private_dir(dir)?;
        let lock = dir.join("vault.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock)
            .map_err(|source| StartError::Create {
                path: lock.clone(),
                source,
            })?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(StartError::Locked {
                dir: dir.to_path_buf(),
                lock,
            }),
            Err(e) => Err(StartError::Create {
                path: lock,
                source: e.into(),
            }),
        }
    }
}

/// The socket file this process bound, by device and inode, so that shutdown removes it only
/// if no one replaced it since.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Notes the file just bound at `path`.
    pub fn claim(path: &Path) -> std::io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Removes the socket file if it is still the one bound; leaves anything else alone.
    pub fn remove_if_ours(self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours && let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(%err, path = %self.path.display(), "cannot remove the socket");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_directory_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        let err = DataDirLock::acquire(&data).unwrap_err().to_string();
        assert!(err.contains("another vault is running"), "{err}");
        drop(first);
        DataDirLock::acquire(&data).unwrap();
    }

    #[test]
    fn a_socket_replaced_by_another_process_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.sock");
        std::fs::write(&path, "").unwrap();
        let ours = SocketFile::claim(&path).unwrap();
        // Created while ours exists, so its inode differs; then moved into ours's place.
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, "").unwrap();
        std::fs::rename(&theirs, &path).unwrap();
        ours.remove_if_ours();
        assert!(path.exists());
        SocketFile::claim(&path).unwrap().remove_if_ours();
        assert!(!path.exists());
    }
}
