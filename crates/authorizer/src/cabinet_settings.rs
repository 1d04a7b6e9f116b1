//! The cabinet's settings overlay ([`facade::SettingsStore`]) in the authorizer's store, one
//! record per merchant under `cabinet/settings/`, so that what a merchant changed in its
//! cabinet outlives a restart and stays beside the orders it applies to.
//!
//! Owns the keys and nothing else: the overlay's shape and rules are the facade's.

use facade::{MerchantOverlay, SettingsStore, SettingsStoreError};
use futures::future::BoxFuture;
use store::{Batch, Store};

const PREFIX: &[u8] = b"cabinet/settings/";

/// The authorizer's store, as the cabinet's settings see it.
#[derive(Debug, Clone)]
pub struct StoredSettings(pub Store);

impl StoredSettings {
    /// Every overlay saved so far.
    pub fn load(&self) -> Result<Vec<MerchantOverlay>, SettingsStoreError> {
        self.0
            .scan_prefix(PREFIX)
            .map_err(|e| SettingsStoreError::Unavailable(Box::new(e)))?
            .iter()
            .map(|(_, v)| MerchantOverlay::decode(v))
            .collect()
    }
}

fn key(merchant: u64) -> Vec<u8> {
    // Fixed width, so that the records sort by merchant.
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(format!("{merchant:020}").as_bytes());
    k
}

impl SettingsStore for StoredSettings {
    fn save<'a>(
        &'a self,
        overlay: &'a MerchantOverlay,
    ) -> BoxFuture<'a, Result<(), SettingsStoreError>> {
        Box::pin(async move {
            let mut batch = Batch::default();
            batch.put(key(overlay.merchant), overlay.encode());
            self.0
                .commit(batch)
                .await
                .map_err(|e| SettingsStoreError::Unavailable(Box::new(e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_saved_overlay_is_loaded_again_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorizer.db");
        let overlay = MerchantOverlay {
            merchant: 452739,
            url_return_ok: Some("https://shop.example/ok".into()),
            notification_url: Some("https://shop.example/notify".into()),
            ..MerchantOverlay::default()
        };
        {
            let settings = StoredSettings(Store::open(store::EngineKind::Redb, &path).unwrap());
            settings.save(&overlay).await.unwrap();
        }
        let reopened = StoredSettings(Store::open(store::EngineKind::Redb, &path).unwrap());
        assert_eq!(reopened.load().unwrap(), vec![overlay]);
    }
}
