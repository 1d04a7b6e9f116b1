//! Development and test setup of a SoftHSM2 token in a directory of our own (`SOFTHSM2_CONF`
//! pointing at a config file there), so that nothing touches the system token store. Used by
//! `vault init --dev` and by tests; never by a production start-up path. Initialises tokens
//! through PKCS#11 in this process and never puts a PIN in an argument list or the environment of
//! another process (`softhsm2-util --so-pin … --pin …` showed both in `/proc/<pid>/cmdline`).

use std::path::{Path, PathBuf};
use std::process::Command;

use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use crate::{HsmConfig, HsmError, Pin, context};

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

/// Initializes a token labelled `label` in the first free slot of the SoftHSM2 set up by `conf`,
/// with the module at [`DEFAULT_MODULE`].
pub fn init_token(conf: &Path, label: &str, so_pin: &Pin, user_pin: &Pin) -> Result<(), HsmError> {
    init_token_in(Path::new(DEFAULT_MODULE), conf, label, so_pin, user_pin)
}

/// Initializes a token labelled `label` in the first free slot of `module`, sets its SO PIN and
/// user PIN (`C_InitToken`, then `C_InitPIN` in an SO session), all in this process.
///
/// PKCS#11 is initialised once per process and SoftHSM reads `SOFTHSM2_CONF` then, so this
/// process's `SOFTHSM2_CONF` must already be `conf` (and `conf` written) before its first HSM
/// call; anything else would initialise a token in some other store, and is refused.
pub fn init_token_in(
    module: &Path,
    conf: &Path,
    label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<(), HsmError> {
    let setup = |what: &str, e: cryptoki::error::Error| {
        HsmError::SoftHsmSetup(format!("{what} for token {label:?}: {e}"))
    };
    if std::env::var_os("SOFTHSM2_CONF").as_deref() != Some(conf.as_os_str()) {
        return Err(HsmError::SoftHsmSetup(format!(
            "SOFTHSM2_CONF must be {} in the process that initialises the token",
            conf.display()
        )));
    }
    let ctx = context::context(module)?;
    let labelled = |ctx: &cryptoki::context::Pkcs11| -> Result<Vec<_>, HsmError> {
        Ok(ctx
            .get_slots_with_initialized_token()?
            .into_iter()
            .filter(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label() == label))
            .collect())
    };
    // `Hsm::open` finds the token by label, so a second one would make that ambiguous.
    if !labelled(&ctx)?.is_empty() {
        return Err(HsmError::SoftHsmSetup(format!(
            "a token labelled {label:?} already exists"
        )));
    }
    let free = ctx
        .get_all_slots()?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
        .ok_or_else(|| HsmError::SoftHsmSetup("no slot with an uninitialised token".into()))?;
    let so_auth = AuthPin::new(so_pin.expose().into());
    ctx.init_token(free, &so_auth, label)
        .map_err(|e| setup("C_InitToken", e))?;
    // SoftHSM moves an initialised token to a slot numbered after its serial, so look again.
    let slot = labelled(&ctx)?
        .into_iter()
        .next()
        .ok_or_else(|| HsmError::TokenMissing(label.to_string()))?;
    let so = ctx.open_rw_session(slot)?;
    so.login(UserType::So, Some(&so_auth))
        .map_err(|e| setup("SO login", e))?;
    so.init_pin(&AuthPin::new(user_pin.expose().into()))
        .map_err(|e| setup("C_InitPIN", e))?;
    so.logout().map_err(|e| setup("SO logout", e))?;
    tracing::info!(token = %label, "initialised the SoftHSM2 token and its user PIN");
    Ok(())
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
        // The child initialises its token itself: PKCS#11 reads `SOFTHSM2_CONF` once per
        // process, and the parent's points elsewhere (or nowhere).
        let cfg = config(&dir);
        let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").unwrap_or_default());
        init_token_in(
            &cfg.module,
            &conf,
            &cfg.token_label,
            &Pin::new("so-pin-0".into()),
            &cfg.user_pin,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        return Some(cfg);
    }
    let dir = std::env::temp_dir().join(format!("hsm-test-{}-{test_name}", std::process::id()));
    let dir_s = dir.display().to_string();
    let conf = dir.join("softhsm2.conf");
    write_conf(&conf, &dir.join("tokens")).unwrap_or_else(|e| panic!("{e}"));
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
