//! Development and test setup of a SoftHSM2 token in a directory of our own (`SOFTHSM2_CONF`
//! pointing at a config file there), so that nothing touches the system token store. Used by
//! `vault init --dev` and by tests; never by a production start-up path.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{HsmConfig, HsmError, Pin};

/// Where Debian's `softhsm2` package installs the module.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Writes a SoftHSM2 config at `conf` keeping tokens in `token_dir` (created, mode 0700).
pub fn write_conf(conf: &Path, token_dir: &Path) -> Result<(), HsmError> {
    let setup = |e: std::io::Error| HsmError::SoftHsmSetup(e.to_string());
    std::fs::create_dir_all(token_dir).map_err(setup)?;
    restrict(token_dir, 0o700).map_err(setup)?;
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        token_dir.display()
    );
    std::fs::write(conf, text).map_err(setup)?;
    restrict(conf, 0o600).map_err(setup)
}

/// Initializes a token labelled `label` in the first free slot of the SoftHSM2 set up by `conf`.
pub fn init_token(conf: &Path, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<(), HsmError> {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args(["--init-token", "--free", "--label", label])
        .args(["--so-pin", so_pin.expose(), "--pin", user_pin.expose()])
        .output()
        .map_err(|e| {
            HsmError::SoftHsmSetup(format!(
                "cannot run softhsm2-util (apt-get install softhsm2): {e}"
            ))
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HsmError::SoftHsmSetup(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// For tests: runs the named test again in a child process whose `SOFTHSM2_CONF` points at a
/// fresh token directory (PKCS#11 is initialized once per process and reads the variable then,
/// and the process environment is not ours to change). Returns `None` in the parent, after the
/// child passed (it panics with the child's output if not), and the token's config in the child.
#[doc(hidden)]
pub fn isolated_test(test_name: &str) -> Option<HsmConfig> {
    const CHILD: &str = "HSM_ISOLATED_TEST";
    let config = |dir: &str| HsmConfig {
        module: PathBuf::from(
            std::env::var("HSM_MODULE").unwrap_or_else(|_| DEFAULT_MODULE.into()),
        ),
        token_label: "test".into(),
        user_pin: Pin::new(format!("user-{}", dir.len())),
        sessions: 8,
    };
    if let Ok(dir) = std::env::var(CHILD) {
        return Some(config(&dir));
    }
    let dir = std::env::temp_dir().join(format!("hsm-test-{}-{test_name}", std::process::id()));
    let dir_s = dir.display().to_string();
    let conf = dir.join("softhsm2.conf");
    write_conf(&conf, &dir.join("tokens")).unwrap_or_else(|e| panic!("{e}"));
    init_token(
        &conf,
        "test",
        &Pin::new("so-pin-0".into()),
        &config(&dir_s).user_pin,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, &dir_s)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "isolated test {test_name} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    None
}
