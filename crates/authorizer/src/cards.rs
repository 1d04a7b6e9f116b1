//! Saved cards as the authorizer sees them: the link's [`CardRef`] names a card by merchant,
//! CustomerNumber and token, and [`VaultCards`] turns it back into a PAN (for a reversal) through
//! the vault, with the `authorizer` client, the only role the vault lets detokenize.
//!
//! Owns what a vault answer means for a reversal: a card that is gone
//! resolves to `None` (the reversal goes without DE 2), a vault that cannot answer is an error
//! (the reversal waits for it). Must never put a PAN into a `CardRef`, a log or an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures::future::BoxFuture;
use vault::{
    ClientError, ClientOptions, Credentials, CustomerNumber, MerchantId, Role, Token, VaultClient,
    VaultEndpoint, VaultError,
};

use link::{CardRef, CardResolver, CardsUnavailable};

use crate::vault_client::LazyVault;

/// Resolves the link's card references through the vault. Clones share the connection and the
/// counts.
#[derive(Debug, Clone)]
pub struct VaultCards {
    vault: Arc<LazyVault>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    resolved: AtomicU64,
    gone: AtomicU64,
}

impl VaultCards {
    /// Over a connected client, which must have the `authorizer` role.
    pub fn new(client: VaultClient) -> VaultCards {
        VaultCards::with(LazyVault::connected(client))
    }

    /// Connects on first use, and again on each lookup until a connection succeeds; the client
    /// reconnects by itself after that.
    pub fn connecting(
        endpoint: VaultEndpoint,
        credentials: Credentials,
        options: ClientOptions,
    ) -> VaultCards {
        VaultCards::with(LazyVault::connecting(endpoint, credentials, options))
    }

    fn with(vault: LazyVault) -> VaultCards {
        VaultCards {
            vault: Arc::new(vault),
            counts: Arc::default(),
        }
    }

    /// Connects if not yet connected and checks the vault gave this client the `authorizer`
    /// role, so that a misconfiguration shows at start rather than at the first reversal.
    pub async fn ready(&self) -> Result<(), CardsUnavailable> {
        self.vault
            .ready(Role::Authorizer)
            .await
            .map_err(|e| CardsUnavailable(format!("{e}: it may not detokenize")))
    }

    /// How many references the vault turned back into a PAN, and how many named a card that is
    /// gone (the link then reverses without DE 2, which the network accepts: only this count
    /// shows it).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.resolved.load(Relaxed),
            self.counts.gone.load(Relaxed),
        )
    }

    /// The reference the link keeps for a saved card.
    pub fn card_ref(merchant: &MerchantId, customer: &CustomerNumber, token: Token) -> CardRef {
        CardRef {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
        }
    }

    async fn lookup(&self, card: &CardRef) -> Result<Option<card::Pan>, CardsUnavailable> {
        let client = self.vault.client().await.map_err(|e| unavailable(&e))?;
        match client
            .detokenize(&card.merchant, &card.customer, card.token)
            .await
        {
            Ok(secret) => Ok(Some(secret.pan)),
            // The card, its customer's consent or its merchant is gone: asking again will not
            // bring it back.
            Err(ClientError::Refused(
                VaultError::NotFound
                | VaultError::CustomerDenied
                | VaultError::UnknownMerchant
                | VaultError::BadRequest(_),
            )) => Ok(None),
            // Down, slow, or refusing these credentials: an operator can fix each.
            Err(
                e @ (ClientError::Refused(
                    VaultError::Unauthenticated
                    | VaultError::Forbidden(_)
                    | VaultError::Internal(_),
                )
                | ClientError::Connect { .. }
                | ClientError::Transport(_)
                | ClientError::Closed
                | ClientError::Timeout(_)
                | ClientError::Malformed(_)
                | ClientError::UnexpectedReply(_)
                | ClientError::Tls(_)
                | ClientError::ServerName(_)),
            ) => Err(unavailable(&e)),
        }
    }
}

/// The client error and its causes in one line: `CardsUnavailable` carries text only.
fn unavailable(e: &ClientError) -> CardsUnavailable {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    CardsUnavailable(text)
}

impl CardResolver for VaultCards {
    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
    ) -> BoxFuture<'a, Result<Option<card::Pan>, CardsUnavailable>> {
        Box::pin(async move {
            let pan = self.lookup(card).await?;
            let count = match &pan {
                Some(_) => &self.counts.resolved,
                None => &self.counts.gone,
            };
            count.fetch_add(1, Relaxed);
            Ok(pan)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_vault_holds_a_lookup_back() {
        let dir = tempfile::tempdir().unwrap();
        let cards = VaultCards::connecting(
            VaultEndpoint::Unix(dir.path().join("no-vault.sock")),
            Credentials::Secret {
                client: "authorizer".into(),
                secret: vault::ClientSecret::new(b"s".to_vec()),
            },
            ClientOptions::default(),
        );
        assert!(cards.ready().await.is_err());
        let saved = VaultCards::card_ref(
            &MerchantId::parse("452739").unwrap(),
            &CustomerNumber::parse("c1").unwrap(),
            Token::random(),
        );
        assert!(cards.resolve(&saved).await.is_err(), "the vault is down");
        assert_eq!(
            cards.counts(),
            (0, 0),
            "a held lookup is neither resolved nor gone"
        );
    }
}
