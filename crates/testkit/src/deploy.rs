//! The repository's deployment examples (`deploy/*.toml`) on a site made in a temp directory, so
//! that a test can load each through its binary's real parser and validator: the example's
//! absolute paths are moved under the directory, and what a site provides beside a config file is
//! made there (each secret file it names, the link's PKI, the merchants file).
//!
//! Owns that rewriting only. Must never change what an example says apart from its paths' roots.

use std::path::{Path, PathBuf};

use crate::vault::write_owner_only;

/// Where the examples keep configuration and secrets (`/etc/assist/...`).
const ETC: &str = "/etc/assist";
/// Where the examples keep data (`/var/lib/assist/...`).
const VAR: &str = "/var/lib/assist";

/// `deploy/<name>`, rewritten under a temp directory with what it names made there; the
/// directory (dropped last) and the config file's path.
pub fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(repo.join("deploy").join(name))
        .unwrap_or_else(|e| panic!("deploy/{name}: {e}"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let (etc, var) = (dir.path().join("etc"), dir.path().join("var"));
    let text = text
        .replace(ETC, &etc.display().to_string())
        .replace(VAR, &var.display().to_string());
    std::fs::create_dir_all(etc.join("secrets")).expect("the secrets directory");
    // Every quoted path under the secrets directory: an owner-only secret long enough for the
    // vault's rule (16 bytes at least).
    let secrets = etc.join("secrets").display().to_string();
    for quoted in text.split('"').filter(|s| s.starts_with(&secrets)) {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        write_owner_only(Path::new(quoted), &secret).expect("a secret file");
    }
    simulator::DevPki::generate()
        .write_to(&etc.join("link"))
        .expect("the link's PKI");
    std::fs::copy(
        repo.join("config/merchants.dev.toml"),
        etc.join("merchants.toml"),
    )
    .expect("the merchants file");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("the rewritten example");
    (dir, path)
}
