//! The link's [`CardResolver`] on the vault: a [`CardRef`] names a saved card by merchant,
//! CustomerNumber and token, and resolving it is a detokenize by the `authorizer` client.
//!
//! Owns the `CardRef` format. Must never put a PAN into a `CardRef`, a log or an error: a card
//! that cannot be found resolves to `None` and the link reverses without DE 2.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use authorizer::link::{CardRef, CardResolver};
use futures::future::BoxFuture;
use vault::{CustomerNumber, MerchantId, Token, VaultClient};

/// Resolves the link's card references through the vault. Clones share their counts.
#[derive(Debug, Clone)]
pub struct VaultCards {
    client: VaultClient,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    resolved: AtomicU64,
    unresolved: AtomicU64,
}

impl VaultCards {
    /// `client` must have the `authorizer` role: only it may detokenize.
    pub fn new(client: VaultClient) -> VaultCards {
        VaultCards {
            client,
            counts: Arc::default(),
        }
    }

    /// How many references the vault turned back into a PAN, and how many it could not (the
    /// link then reverses without DE 2, which the network accepts: only this count shows it).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.resolved.load(Relaxed),
            self.counts.unresolved.load(Relaxed),
        )
    }

    /// The reference the link keeps for a saved card. Neither a merchant id nor a CustomerNumber
    /// may contain a space, so a space separates the parts unambiguously.
    pub fn card_ref(merchant: &MerchantId, customer: &CustomerNumber, token: Token) -> CardRef {
        CardRef(format!(
            "{} {} {token}",
            merchant.as_str(),
            customer.as_str()
        ))
    }

    fn parse(card: &CardRef) -> Option<(MerchantId, CustomerNumber, Token)> {
        let mut parts = card.0.split(' ');
        let merchant = MerchantId::parse(parts.next()?).ok()?;
        let customer = CustomerNumber::parse(parts.next()?).ok()?;
        let token = Token::parse(parts.next()?).ok()?;
        parts
            .next()
            .is_none()
            .then_some((merchant, customer, token))
    }
}

impl CardResolver for VaultCards {
    fn resolve<'a>(&'a self, card: &'a CardRef) -> BoxFuture<'a, Option<card::Pan>> {
        Box::pin(async move {
            let pan = match VaultCards::parse(card) {
                Some((merchant, customer, token)) => self
                    .client
                    .detokenize(&merchant, &customer, token)
                    .await
                    .ok()
                    .map(|secret| secret.pan),
                None => None,
            };
            let count = if pan.is_some() {
                &self.counts.resolved
            } else {
                &self.counts.unresolved
            };
            count.fetch_add(1, Relaxed);
            pan
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_ref_names_the_card_and_parses_back() {
        let merchant = MerchantId::parse("452739").unwrap();
        let customer = CustomerNumber::parse("cust-42@example.com").unwrap();
        let token = Token::random();
        let r = VaultCards::card_ref(&merchant, &customer, token);
        assert_eq!(
            VaultCards::parse(&r),
            Some((merchant, customer, token)),
            "{r:?}"
        );
        assert_eq!(VaultCards::parse(&CardRef("452739 cust-42".into())), None);
        assert_eq!(
            VaultCards::parse(&CardRef(format!("{} extra", r.0))),
            None,
            "trailing parts are refused"
        );
    }
}
