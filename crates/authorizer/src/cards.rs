//! Saved cards as the authorizer sees them: the link's [`CardRef`] names a card by merchant,
//! CustomerNumber, token and the payment it was detokenized for, and [`VaultCards`] turns it back
//! into a PAN (for a reversal of that payment) through the vault, with the `authorizer` client,
//! the only role the vault lets detokenize. The vault gives the card again only for a payment it
//! detokenized with a grant, within its reversal window.
//!
//! Owns what a vault answer means for a reversal: a card that is gone, or a payment the vault no
//! longer binds to it, resolves to `None` (the reversal goes without DE 2, which the network
//! accepts), a vault that cannot answer is an error (the reversal waits for it). Must never put a
//! PAN into a `CardRef`, a log or an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures::future::BoxFuture;
use vault::{
    ClientError, ClientOptions, Credentials, CustomerNumber, MerchantId, PaymentRef, Role, Token,
    VaultClient, VaultEndpoint, VaultError,
};

use link::{CardRef, CardResolver, CardsUnavailable};

use crate::vault_client::{LazyVault, describe};

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

    /// Over the process's shared `authorizer` connection (which the order engine's
    /// [`crate::secrets::VaultSecrets`] uses too).
    pub fn shared(vault: Arc<LazyVault>) -> VaultCards {
        VaultCards {
            vault,
            counts: Arc::default(),
        }
    }

    fn with(vault: LazyVault) -> VaultCards {
        VaultCards::shared(Arc::new(vault))
    }

    /// Connects if not yet connected and checks the vault gave this client the `authorizer`
    /// role, so that a misconfiguration shows at start rather than at the first reversal.
    pub async fn ready(&self) -> Result<(), CardsUnavailable> {
        self.vault
            .expect_role(Role::Authorizer, "detokenize")
            .await
            .map_err(CardsUnavailable)
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

    /// The reference the link keeps for a saved card used for `payment` (the payment reference
    /// its detokenize grant was issued for).
    pub fn card_ref(
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
    ) -> CardRef {
        CardRef {
            merchant: merchant.clone(),
            customer: customer.clone(),
            token,
            payment: Some(payment.clone()),
        }
    }

    async fn lookup(&self, card: &CardRef) -> Result<Option<card::Pan>, CardsUnavailable> {
        // Queued before payments were bound: the vault would not give the card for it.
        let Some(payment) = &card.payment else {
            return Ok(None);
        };
        let client = self
            .vault
            .client()
            .await
            .map_err(|e| CardsUnavailable(describe(&e)))?;
        match client
            .detokenize_for_reversal(&card.merchant, &card.customer, card.token, payment)
            .await
        {
            Ok(secret) => Ok(Some(secret.pan)),
            // The card, its customer's consent, its merchant, or the payment's binding (past the
            // reversal window) is gone: asking again will not bring it back.
            Err(ClientError::Refused(
                VaultError::NotFound
                | VaultError::CustomerDenied
                | VaultError::UnknownMerchant
                | VaultError::GrantRefused
                | VaultError::BadRequest(_),
            )) => Ok(None),
            // Down, slow, over this client's rate, or refusing these credentials: each passes or
            // an operator can fix it.
            Err(
                e @ (ClientError::Refused(
                    VaultError::Unauthenticated
                    | VaultError::Forbidden(_)
                    | VaultError::Internal(_)
                    | VaultError::RateLimited,
                )
                | ClientError::Connect { .. }
                | ClientError::Transport(_)
                | ClientError::Closed
                | ClientError::Timeout(_)
                | ClientError::Malformed(_)
                | ClientError::UnexpectedReply(_)
                | ClientError::Tls(_)
                | ClientError::ServerName(_)),
            ) => Err(CardsUnavailable(describe(&e))),
        }
    }
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
            &PaymentRef::parse("p1").unwrap(),
        );
        assert!(cards.resolve(&saved).await.is_err(), "the vault is down");
        assert_eq!(
            cards.counts(),
            (0, 0),
            "a held lookup is neither resolved nor gone"
        );
    }
}
