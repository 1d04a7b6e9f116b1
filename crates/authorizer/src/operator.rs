//! The cabinet's customer actions for operators, from the command line (`authorizer customer
//! show|deny|allow|remove-card`): the same vault calls in the same `facade` role, with the
//! authorizer's own `[vault]` settings, for when a merchant asks support instead of using its
//! cabinet.
//!
//! Owns the actions and the text they print. Each change is an audit event (who, which action,
//! never a card). Must never ask the vault for more than the cabinet does: list, remove, status.

use std::fmt::Write as _;

use vault::{ClientError, CustomerCards, CustomerNumber, CustomerStatus, MerchantId, Role, Token};

use crate::config::VaultAccess;
use crate::vault_client::{LazyVault, describe};

/// What to do with a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAction {
    /// Print its status and saved cards (masked).
    Show,
    /// Set Deny: no card is saved or offered any more.
    Deny,
    /// Lift Deny.
    Allow,
    /// Erase one saved card.
    RemoveCard(Token),
}

impl CustomerAction {
    fn name(self) -> &'static str {
        match self {
            CustomerAction::Show => "show",
            CustomerAction::Deny => "deny",
            CustomerAction::Allow => "allow",
            CustomerAction::RemoveCard(_) => "remove-card",
        }
    }
}

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// A merchant id or customer number the vault's rules refuse: the operator's typing.
    #[error("{0}")]
    Input(String),
    /// The vault answered with a refusal or could not be reached.
    #[error("vault: {0}")]
    Vault(String),
}

/// Runs `action` for `customer` of `merchant` through the vault as the `facade` client; answers
/// what to print.
pub async fn customer(
    access: VaultAccess,
    merchant: &str,
    customer: &str,
    action: CustomerAction,
) -> Result<String, OperatorError> {
    let merchant = MerchantId::parse(merchant)
        .map_err(|e| OperatorError::Input(format!("--merchant: {e}")))?;
    let customer = CustomerNumber::parse(customer)
        .map_err(|e| OperatorError::Input(format!("--customer: {e}")))?;
    let vault = LazyVault::connecting(access.endpoint, access.credentials, access.options);
    vault
        .expect_role(Role::Facade, "list or change customers")
        .await
        .map_err(OperatorError::Vault)?;
    let client = vault.client().await.map_err(failed)?;
    let done = match action {
        CustomerAction::Show => {
            return client
                .list(&merchant, &customer)
                .await
                .map(|cards| shown(&merchant, &customer, &cards))
                .map_err(failed);
        }
        CustomerAction::Deny => client
            .set_customer_status(&merchant, &customer, CustomerStatus::Deny)
            .await
            .map(|()| "set to Deny"),
        CustomerAction::Allow => client
            .set_customer_status(&merchant, &customer, CustomerStatus::Member)
            .await
            .map(|()| "Deny lifted"),
        CustomerAction::RemoveCard(token) => client
            .remove(&merchant, &customer, token)
            .await
            .map(|()| "card removed"),
    };
    tracing::info!(
        target: "audit",
        merchant = merchant.as_str(),
        customer = customer.as_str(),
        action = action.name(),
        ok = done.is_ok(),
        "operator customer action"
    );
    done.map(|what| {
        format!(
            "customer {} of merchant {}: {what}",
            customer.as_str(),
            merchant.as_str()
        )
    })
    .map_err(failed)
}

fn failed(e: ClientError) -> OperatorError {
    OperatorError::Vault(describe(&e))
}

fn shown(merchant: &MerchantId, customer: &CustomerNumber, cards: &CustomerCards) -> String {
    let status = match cards.status {
        CustomerStatus::New => "none (new)",
        CustomerStatus::Member => "Member",
        CustomerStatus::Deny => "Deny",
    };
    let mut s = format!(
        "customer {} of merchant {}: {status}, {} saved card(s)",
        customer.as_str(),
        merchant.as_str(),
        cards.cards.len()
    );
    for c in &cards.cards {
        let _ = write!(
            s,
            "\n{}******{}  {}  {:02}/{}  {}  payments {}  token {}",
            c.card.bin,
            c.card.last4,
            c.card.brand.assist_name(),
            c.card.expiry.month(),
            c.card.expiry.year(),
            if c.active { "active" } else { "expired" },
            c.successes,
            c.token
        );
    }
    s
}
