//! One initialized PKCS#11 context per module per process: `C_Initialize` may be called only once
//! per process, so every `Hsm` opened on the same module shares it. Never finalizes a context
//! another part of the process might still use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};

use crate::HsmError;

static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

pub(crate) fn context(module: &Path) -> Result<Pkcs11, HsmError> {
    let mut map = CONTEXTS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| HsmError::Pkcs11("context table poisoned".into()))?;
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let missing = |reason: String| HsmError::ModuleMissing {
        module: module.display().to_string(),
        reason,
    };
    if !module.exists() {
        return Err(missing(
            "no such file (install softhsm2 or set hsm.module)".into(),
        ));
    }
    let ctx = Pkcs11::new(module).map_err(|e| missing(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(missing(e.to_string())),
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}
