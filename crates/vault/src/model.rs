//! The vault's domain types, shared by the server and the client library: who a card belongs to
//! ([`Scope`], [`CustomerNumber`]), how it is named ([`Token`]), and what callers get back.
//!
//! Must never hold a PAN except inside [`card::Pan`], and never derive `Debug` for anything that
//! carries a cardholder name in clear.

use std::fmt;

use card::{Expiry, Pan};
use zeroize::Zeroizing;

pub use card::{CardUse, CustomerNumber, MerchantId, PaymentRef, Token};

/// A value that breaks a domain type's rules while decoding or configuring; names the rule,
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A merchant id, customer number or token (their rules live with the types, in `card`).
    #[error(transparent)]
    Name(#[from] card::NameError),
    /// A union name is empty, longer than 64 characters or has a character outside the set.
    #[error("scope name must be 1 to 64 characters from A-Z a-z 0-9 . _ - :")]
    Scope,
    /// A cardholder name is empty, longer than 64 characters or holds a control character.
    #[error("cardholder name must be 1 to 64 printable characters")]
    CardholderName,
}

fn valid(s: &str, max: usize, extra: &[u8]) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Where customer numbers are unique and cards are shared: one merchant, or a configured union
/// (one legal entity, a group of legal entities, a group of merchants).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A merchant on its own: its customer numbers and cards are its alone.
    Merchant(MerchantId),
    /// A configured union of merchants sharing customer numbers and cards (`union = "..."`).
    Union(String),
}

impl Scope {
    /// A union scope, after checking its name (1..64 of `A-Z a-z 0-9 . _ - :`).
    pub fn union(name: &str) -> Result<Scope, ModelError> {
        if valid(name, 64, b"._-:") {
            Ok(Scope::Union(name.to_string()))
        } else {
            Err(ModelError::Scope)
        }
    }
    /// The name under which the scope's records are stored; the prefixes keep a merchant and a
    /// union of the same name apart.
    pub fn key(&self) -> String {
        match self {
            Scope::Merchant(m) => format!("m:{}", m.as_str()),
            Scope::Union(u) => format!("u:{u}"),
        }
    }
}

/// The name embossed on the card; sealed with the PAN, wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct CardholderName(Zeroizing<String>);

impl CardholderName {
    /// Checks the name (1..64 characters, no control character) and takes it into wiped memory.
    pub fn parse(s: &str) -> Result<CardholderName, ModelError> {
        let ok = (1..=64).contains(&s.chars().count()) && !s.chars().any(char::is_control);
        if ok {
            Ok(CardholderName(Zeroizing::new(s.to_string())))
        } else {
            Err(ModelError::CardholderName)
        }
    }
    /// The name in clear, for sealing or for the authorizer; never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardholderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardholderName(***)")
    }
}

/// A customer's One Click standing within a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerStatus {
    /// No saved card: the next payment asks for the full card and offers to save it.
    New,
    /// Has saved at least one card.
    Member,
    /// Refused One Click: the merchant set it, and no card may be saved or offered.
    Deny,
}

/// What a client is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The merchant-facing API and payment pages: save, list, remove cards, set a status.
    Facade,
    /// The payment engine: the only role that may see a PAN again.
    Authorizer,
    /// Operators' tools: purge, key rotation.
    Admin,
}

impl Role {
    /// The role named in the config (`facade`, `authorizer`, `admin`); `None` for any other.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "facade" => Some(Role::Facade),
            "authorizer" => Some(Role::Authorizer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    /// The role's config name, as in errors and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Role::Facade => "facade",
            Role::Authorizer => "authorizer",
            Role::Admin => "admin",
        }
    }
}

/// Seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The vault's clock now; what the vault stores, never the client's time.
    pub fn now() -> Timestamp {
        Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }
    /// (year, month) in UTC, for expiry checks.
    pub fn year_month(self) -> (u16, u8) {
        let dt =
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(self.0).unwrap_or(i64::MAX))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        (u16::try_from(dt.year()).unwrap_or(0), u8::from(dt.month()))
    }
    /// The same instant `years` calendar years later (29 February falls back to the 28th).
    pub fn plus_years(self, years: u16) -> Timestamp {
        let dt =
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(self.0).unwrap_or(i64::MAX))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let y = dt.year() + i32::from(years);
        let later = dt
            .replace_year(y)
            .or_else(|_| dt.replace_day(28).and_then(|d| d.replace_year(y)));
        later.map_or(Timestamp(u64::MAX), |d| {
            Timestamp(u64::try_from(d.unix_timestamp()).unwrap_or(0))
        })
    }
}

/// A card's displayable facts (PCI DSS allows BIN and last four).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedCard {
    /// The first digits of the PAN (issuer identification).
    pub bin: card::Bin,
    /// The last four digits of the PAN.
    pub last4: card::Last4,
    /// The card's payment system, from its BIN.
    pub brand: card::Brand,
    /// Issuing bank from the vault's BIN table; empty when unknown.
    pub bank: String,
    /// The card's expiry month and year; the listing derives `active` from it.
    pub expiry: Expiry,
}

impl MaskedCard {
    /// The displayable facts of `pan`; the PAN itself is not kept.
    pub fn of(pan: &Pan, expiry: Expiry, bank: String) -> MaskedCard {
        MaskedCard {
            bin: pan.bin(),
            last4: pan.last4(),
            brand: pan.brand(),
            bank,
            expiry,
        }
    }
}

/// The answer to tokenize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    /// The card's token, what the merchant stores instead of the PAN.
    pub token: Token,
    /// What may be shown of the saved card.
    pub card: MaskedCard,
    /// False when the same card was already saved for this customer and its token was updated.
    pub created: bool,
}

/// One card of a One Click listing, with Assist's fields (`token`, `bin`, `post`, `brand`,
/// `bank`, `expire`, `active`, `needCVC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCard {
    /// The token the payment page sends back to pay with this card.
    pub token: Token,
    /// What the shopper is shown to pick the card.
    pub card: MaskedCard,
    /// False once the card has expired.
    pub active: bool,
    /// One Click is a customer-initiated payment: the shopper always types the CVC.
    pub need_cvc: bool,
    /// Successful payments recorded with it (the merchant's cabinet shows them).
    pub successes: u32,
}

/// The answer to list: the customer's status and the cards that reached the listing threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerCards {
    /// Whether the customer is new, a member or denied One Click.
    pub status: CustomerStatus,
    /// Cards at or past the listing threshold, at most [`crate::protocol::MAX_CARDS`].
    pub cards: Vec<ListedCard>,
}

/// The answer to detokenize; only the authorizer role ever receives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSecret {
    /// The full card number, for the authorizer's authorization or reversal only.
    pub pan: Pan,
    /// The card's expiry, sent with the PAN to the network.
    pub expiry: Expiry,
    /// The name embossed on the card, if it was saved.
    pub holder: Option<CardholderName>,
}

/// What to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizeRequest {
    /// The merchant saving the card; its scope decides where the card lives.
    pub merchant: MerchantId,
    /// The merchant's number for the customer the card is saved for.
    pub customer: CustomerNumber,
    /// The full card number; sealed at once, kept only as BIN and last four besides.
    pub pan: Pan,
    /// The card's expiry month and year.
    pub expiry: Expiry,
    /// The name embossed on the card, if the shopper gave one.
    pub holder: Option<CardholderName>,
}

/// What the vault answered when it refused or failed a call: exactly what a server sends (the
/// protocol's status codes), nothing the client made up. The client library's own failures
/// (transport, time-out) are [`crate::client::ClientError`]. Never carries card data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The request does not decode or a field breaks its rules: the client's fault. The text names
    /// the field, never its value.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The `hello` named no configured client, or the wrong secret; answered after the login
    /// throttle's wait.
    #[error("client is not authenticated")]
    Unauthenticated,
    /// The caller's role may not make this call (the text is the role); audited.
    #[error("role {0} may not do this")]
    Forbidden(&'static str),
    /// No such card (token) for this customer in this scope.
    #[error("no such card for this customer")]
    NotFound,
    /// Tokenize for a customer the merchant set to `Deny`.
    #[error("the customer refused One Click (status Deny)")]
    CustomerDenied,
    /// The request names a merchant the vault is not configured for.
    #[error("unknown merchant")]
    UnknownMerchant,
    /// The vault failed (its store, its HSM, its audit log); the text names what, never a value.
    #[error("vault internal error: {0}")]
    Internal(String),
    /// A detokenize without a valid grant (missing, used, expired, or issued for another card or
    /// payment), or a reversal of a payment the vault did not detokenize within the reversal
    /// window.
    #[error("no valid grant binds this detokenize to a payment")]
    GrantRefused,
    /// The client is over its detokenize rate; try again later.
    #[error("detokenize rate limit reached for this client")]
    RateLimited,
}

/// A client's shared secret for the Unix socket; wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(Zeroizing<Vec<u8>>);

impl ClientSecret {
    /// Takes the secret into memory wiped on drop.
    pub fn new(secret: Vec<u8>) -> ClientSecret {
        ClientSecret(Zeroizing::new(secret))
    }
    /// The secret's bytes, to send in `hello` or compare; never to log.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

/// A single-use permission to detokenize one card for one payment, issued by the vault to the
/// facade and presented by the authorizer: 128 random bits, so it cannot be guessed. Not a
/// secret for long (it dies when used or after a few minutes), yet never printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrantId(pub [u8; 16]);

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GrantId(***)")
    }
}

/// What a verification of the audit log found intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSummary {
    /// Entries in the chain.
    pub entries: u64,
    /// Checkpoints in the checkpoint file, each with a valid HSM MAC and matching the chain.
    pub checkpoints: u64,
    /// The sequence number of the last checkpoint: entries up to it cannot be altered, removed
    /// or cut without verification failing; entries after it are covered by the chain only.
    pub sealed_through: u64,
    /// The chain's last hash.
    pub head: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_arithmetic_uses_calendar_years() {
        // 2020-02-29 12:00 UTC + 6 years: no 29 February in 2026, so the 28th.
        let leap = Timestamp(1_582_977_600);
        assert_eq!(leap.year_month(), (2020, 2));
        assert_eq!(leap.plus_years(6), Timestamp(1_772_280_000));
        // 2021-03-01 00:00 UTC + 6 years = 2027-03-01 00:00 UTC.
        assert_eq!(
            Timestamp(1_614_556_800).plus_years(6),
            Timestamp(1_803_859_200)
        );
    }

    #[test]
    fn tokens_print_as_assist_does_and_secrets_never_print() {
        let t = Token::parse("b092e5a1-57bd-46e6-a380-7d5ec7730578").unwrap();
        assert_eq!(t.to_string(), "B092E5A1-57BD-46E6-A380-7D5EC7730578");
        assert!(Token::parse("not-a-token").is_err());
        assert_eq!(
            format!("{:?}", CardholderName::parse("IVAN PETROV").unwrap()),
            "CardholderName(***)"
        );
        assert_eq!(
            format!("{:?}", ClientSecret::new(b"s3cret".to_vec())),
            "ClientSecret(***)"
        );
        assert!(CardholderName::parse("a\nb").is_err());
        assert!(Scope::union("group 1").is_err());
        assert_ne!(
            Scope::Merchant(MerchantId::parse("x").unwrap()).key(),
            Scope::union("x").unwrap().key()
        );
    }
}
