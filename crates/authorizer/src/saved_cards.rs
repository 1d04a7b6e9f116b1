//! The facade's One Click calls ([`facade::SavedCards`]) over the vault's `facade` role.
//!
//! Owns nothing but the forwarding; must never be given the `authorizer` role's connection,
//! which may detokenize.

use facade::SavedCards;
use std::sync::Arc;

use futures::future::BoxFuture;
use vault::{ClientError, CustomerCards, CustomerNumber, CustomerStatus, MerchantId, Token};

use crate::vault_client::LazyVault;

/// The vault as the facade sees it.
#[derive(Debug)]
pub struct FacadeVault(pub Arc<LazyVault>);

impl SavedCards for FacadeVault {
    fn list<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
    ) -> BoxFuture<'a, Result<CustomerCards, ClientError>> {
        Box::pin(async move { self.0.client().await?.list(merchant, customer).await })
    }

    fn remove<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        token: Token,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            self.0
                .client()
                .await?
                .remove(merchant, customer, token)
                .await
        })
    }

    fn set_status<'a>(
        &'a self,
        merchant: &'a MerchantId,
        customer: &'a CustomerNumber,
        status: CustomerStatus,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            self.0
                .client()
                .await?
                .set_customer_status(merchant, customer, status)
                .await
        })
    }
}
