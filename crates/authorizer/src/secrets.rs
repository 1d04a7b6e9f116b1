//! [`VaultSecrets`]: the order engine's [`CardSecrets`] over the vault. The vault splits the work
//! by role, so this holds two clients: the `facade` client saves cards and asks for a
//! detokenize grant for one payment; the `authorizer` client presents that grant to detokenize and
//! records successful payments. Every PAN comes back only for the payment the engine names.
//!
//! A card the shopper did not save is held under its order's own owner (`h<billnumber>`, named by
//! the engine) and resolved only for operations of that order, whatever customer number a later
//! request names. Saving or holding a card also binds it to its payment (a grant and a detokenize
//! for it), because the vault answers a reversal's lookup only for a payment it detokenized.
//!
//! Owns what a vault answer means for a payment: a card that is unknown, removed, expired, another
//! customer's or of a denied customer resolves to `None` (the engine declines, never uses another
//! card); a vault that cannot answer, or refuses us, is [`SecretsUnavailable`]. Must never put a
//! PAN, a CVC or a grant into a log or an error.

use std::sync::Arc;

use futures::future::BoxFuture;
use link::CardRef;
use orders::{BillNumber, CardSecrets, NewCard, OperationRef, ResolvedCard, SecretsUnavailable};
use time::OffsetDateTime;
use vault::{
    CardSecret, CardUse, CardholderName, ClientError, ClientOptions, Credentials, CustomerNumber,
    MerchantId, PaymentRef, Role, Timestamp, Token, TokenizeRequest, VaultClient, VaultEndpoint,
    VaultError,
};

use crate::vault_client::{LazyVault, describe};

/// The vault as the order engine uses it. Clones share the connections.
#[derive(Debug, Clone)]
pub struct VaultSecrets {
    /// Role `facade`: tokenize, list, grant.
    facade: Arc<LazyVault>,
    /// Role `authorizer`: detokenize with a grant, record a payment.
    authorizer: Arc<LazyVault>,
}

/// Where one of the two clients connects and how it logs in (over TLS the certificate in the
/// endpoint is the login, so each role has an endpoint of its own).
#[derive(Debug, Clone)]
pub struct VaultLogin {
    /// The vault's socket or TLS address.
    pub endpoint: VaultEndpoint,
    /// The client's secret, or its certificate.
    pub credentials: Credentials,
}

impl VaultSecrets {
    /// Over two connected clients, with the `facade` and the `authorizer` role.
    pub fn new(facade: VaultClient, authorizer: VaultClient) -> VaultSecrets {
        VaultSecrets {
            facade: Arc::new(LazyVault::connected(facade)),
            authorizer: Arc::new(LazyVault::connected(authorizer)),
        }
    }

    /// Over the process's shared connections, one per role (the facade's and the link's).
    pub fn shared(facade: Arc<LazyVault>, authorizer: Arc<LazyVault>) -> VaultSecrets {
        VaultSecrets { facade, authorizer }
    }

    /// Connects each client on first use, and again on each call until it succeeds.
    pub fn connecting(
        facade: VaultLogin,
        authorizer: VaultLogin,
        options: ClientOptions,
    ) -> VaultSecrets {
        VaultSecrets {
            facade: Arc::new(LazyVault::connecting(
                facade.endpoint,
                facade.credentials,
                options,
            )),
            authorizer: Arc::new(LazyVault::connecting(
                authorizer.endpoint,
                authorizer.credentials,
                options,
            )),
        }
    }

    /// Connects both clients and checks the vault gave each its role, so that a
    /// misconfiguration shows at start rather than at the first payment.
    pub async fn ready(&self) -> Result<(), SecretsUnavailable> {
        self.facade
            .expect_role(Role::Facade, "save cards or grant a detokenize")
            .await
            .map_err(SecretsUnavailable)?;
        self.authorizer
            .expect_role(Role::Authorizer, "detokenize")
            .await
            .map_err(SecretsUnavailable)
    }

    async fn facade(&self) -> Result<&VaultClient, SecretsUnavailable> {
        self.facade
            .client()
            .await
            .map_err(|e| SecretsUnavailable(describe(&e)))
    }

    async fn authorizer(&self) -> Result<&VaultClient, SecretsUnavailable> {
        self.authorizer
            .client()
            .await
            .map_err(|e| SecretsUnavailable(describe(&e)))
    }

    /// Tokenizes `card` for `customer`, then binds it to `payment`.
    async fn keep(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        card: NewCard<'_>,
        payment: OperationRef,
    ) -> Result<Token, SecretsUnavailable> {
        let req = TokenizeRequest {
            merchant: merchant.clone(),
            customer: customer.clone(),
            pan: card.pan.clone(),
            expiry: card.expiry,
            // The name is not needed to pay: one the vault would refuse is not kept.
            holder: card.holder.and_then(|h| CardholderName::parse(h).ok()),
        };
        let saved = self
            .facade()
            .await?
            .tokenize(req)
            .await
            .map_err(|e| SecretsUnavailable(describe(&e)))?;
        // The card came from the page, not from the vault, so the vault has not yet seen it
        // serve this payment; without that a reversal could not find it again. The PAN that
        // comes back is dropped (and zeroized) at once.
        let bound = self
            .detokenize(
                merchant,
                customer,
                saved.token,
                &payment.payment_ref(),
                CardUse::OnFile,
            )
            .await?;
        match bound {
            Some(_) => Ok(saved.token),
            None => Err(SecretsUnavailable(
                "the vault lost the card it had just saved".into(),
            )),
        }
    }

    /// A grant (facade) and the detokenize it allows (authorizer), for `payment`; `None` when
    /// there is no such card for this customer, or not one `card_use` allows.
    async fn detokenize(
        &self,
        merchant: &MerchantId,
        customer: &CustomerNumber,
        token: Token,
        payment: &PaymentRef,
        card_use: CardUse,
    ) -> Result<Option<CardSecret>, SecretsUnavailable> {
        let granted = self
            .facade()
            .await?
            .grant_detokenize(merchant, customer, token, payment, card_use)
            .await;
        let Some(grant) = found(granted)? else {
            return Ok(None);
        };
        let secret = self
            .authorizer()
            .await?
            .detokenize(merchant, customer, token, payment, grant)
            .await;
        found(secret)
    }

    async fn lookup(
        &self,
        card: &CardRef,
        payment: OperationRef,
        card_use: CardUse,
    ) -> Result<Option<ResolvedCard>, SecretsUnavailable> {
        // A held card serves its own order only, whoever claims its owner's name.
        if BillNumber::of_held_card_owner(&card.customer).is_some_and(|b| b != payment.bill) {
            return Ok(None);
        }
        let secret = self
            .detokenize(
                &card.merchant,
                &card.customer,
                card.token,
                &payment.payment_ref(),
                card_use,
            )
            .await?;
        let (year, month) = Timestamp::now().year_month();
        Ok(secret
            .filter(|s| !s.expiry.is_expired_at(year, month))
            .map(|s| ResolvedCard {
                expiry: s.expiry,
                pan: s.pan,
            }))
    }

    async fn record(&self, card: &CardRef, at: OffsetDateTime) -> Result<(), SecretsUnavailable> {
        let payment = card.payment.as_ref().ok_or_else(|| {
            SecretsUnavailable("a card reference without its payment cannot be recorded".into())
        })?;
        // The vault keeps its own clock's time; ours only has to be within its allowed skew.
        let at = Timestamp(u64::try_from(at.unix_timestamp()).unwrap_or(0));
        self.authorizer()
            .await?
            .record_payment(&card.merchant, &card.customer, card.token, payment, at)
            .await
            .map_err(|e| SecretsUnavailable(describe(&e)))
    }
}

impl CardSecrets for VaultSecrets {
    fn save<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>> {
        Box::pin(self.keep(merchant, customer, card, payment))
    }

    fn hold<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        card: NewCard<'a>,
        payment: OperationRef,
    ) -> BoxFuture<'a, Result<Token, SecretsUnavailable>> {
        // The engine names the owner `h<billnumber>`: the vault keeps the card like a saved one,
        // under a "customer" nobody pays as, never recorded as paid, so never listed.
        Box::pin(self.keep(merchant, customer, card, payment))
    }

    fn resolve<'a>(
        &'a self,
        card: &'a CardRef,
        payment: OperationRef,
        card_use: CardUse,
    ) -> BoxFuture<'a, Result<Option<ResolvedCard>, SecretsUnavailable>> {
        Box::pin(self.lookup(card, payment, card_use))
    }

    fn record_payment<'a>(
        &'a self,
        card: &'a CardRef,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), SecretsUnavailable>> {
        Box::pin(self.record(card, at))
    }
}

/// What a grant or detokenize answer means for a payment.
fn found<T>(answer: Result<T, ClientError>) -> Result<Option<T>, SecretsUnavailable> {
    match answer {
        Ok(v) => Ok(Some(v)),
        // No such card for this customer (never saved, removed, erased, or another customer's
        // token), a customer the merchant denied, a merchant the vault does not know: asking
        // again will not find it.
        Err(ClientError::Refused(
            VaultError::NotFound | VaultError::CustomerDenied | VaultError::UnknownMerchant,
        )) => Ok(None),
        // Down, slow, over our rate, refusing our credentials, out of grants, or a grant lost to
        // a vault restart between issue and use (our requests are typed, so a bad request is the
        // vault's state, not ours): each passes, or an operator can fix it.
        Err(
            e @ (ClientError::Refused(
                VaultError::BadRequest(_)
                | VaultError::GrantRefused
                | VaultError::Unauthenticated
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
        ) => Err(SecretsUnavailable(describe(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_vault_is_unavailable_never_a_missing_card() {
        let dir = tempfile::tempdir().unwrap();
        let login = |client: &str| VaultLogin {
            endpoint: VaultEndpoint::Unix(dir.path().join("no-vault.sock")),
            credentials: Credentials::Secret {
                client: client.into(),
                secret: vault::ClientSecret::new(b"s".to_vec()),
            },
        };
        let secrets = VaultSecrets::connecting(
            login("facade"),
            login("authorizer"),
            ClientOptions::default(),
        );
        assert!(secrets.ready().await.is_err());
        let bill = BillNumber::new(1_234_567_890_123_456).unwrap();
        let card = CardRef {
            merchant: MerchantId::parse("452739").unwrap(),
            customer: CustomerNumber::parse("c1").unwrap(),
            token: Token::random(),
            payment: None,
        };
        let found = secrets
            .resolve(&card, OperationRef { bill, number: 1 }, CardUse::OnFile)
            .await;
        assert!(
            found.is_err(),
            "the engine must not decline for a vault that is away"
        );
    }
}
