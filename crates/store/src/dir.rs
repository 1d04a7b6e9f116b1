//! The directory a database or its log lives in: syncing it, and naming it in an error. Owns
//! nothing; shared by the redb engine and the write-ahead log.

use std::fs::File;
use std::path::Path;

use crate::StoreError;

/// fsyncs `dir`, so that a file created or renamed in it survives power loss by that name.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| directory_error(dir, source))
}

/// `source`, failing on `dir`, as the store's error.
pub(crate) fn directory_error(dir: &Path, source: std::io::Error) -> StoreError {
    StoreError::Directory {
        path: dir.to_path_buf(),
        source,
    }
}
