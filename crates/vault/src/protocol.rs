//! The vault protocol: what a request and a response look like inside one length-delimited frame.
//!
//! Frame: 4-byte big-endian length, then the message. Request: kind `0x51`, id (u64), op code
//! (u8), op fields. Response: kind `0x52`, id (u64), status (0 = ok, else an error code), then the
//! reply or the error text. Strings and byte strings carry a u16 length. Decoding validates every
//! field into its domain type, so the rest of the vault never sees an unchecked value; encoding is
//! canonical, so decode → encode gives back the input. Every byte that names something (op,
//! status, reply, role, customer status, brand) comes from one [`code_table!`] each. Must never put
//! card data in an error.

use bytes::Bytes;
use card::{Bin, Brand, CardUse, Expiry, Last4, Pan};
use tokio_util::codec::LengthDelimitedCodec;
use zeroize::Zeroizing;

use crate::model::*;
use crate::wipe::WipingBuf;
pub use crate::wipe::wipe_sent;
use crate::wire::{DecodeError, Reader, Writer, code_table};

/// Largest frame either side accepts; a tokenize request is under 300 bytes, a listing of 100
/// cards under 10 KiB.
pub const MAX_FRAME: usize = 64 * 1024;

/// Most cards one customer may hold in one scope, so a listing always fits in a frame.
pub const MAX_CARDS: usize = 100;

/// The frame codec both sides use: a 4-byte big-endian length, at most [`MAX_FRAME`] bytes.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

const REQUEST: u8 = 0x51;
const RESPONSE: u8 = 0x52;

/// A request's operation, sorted by the path it takes through the vault, so that a handler for
/// reads cannot be given a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// First request on a connection: who the client is (over the Unix socket, with its secret).
    Hello {
        /// The configured client id over the Unix socket; empty over TLS, where the certificate
        /// names the client.
        client: String,
        /// The client's secret over the Unix socket; empty over TLS. Wiped on drop, never printed.
        secret: ClientSecret,
    },
    /// Changes no card record: answered from the records (a detokenize notes which payment it
    /// served, in the same commit as its audit entry).
    Read(ReadOp),
    /// Changes one customer's records.
    Write(WriteOp),
    /// Operator work over the whole vault.
    Admin(AdminOp),
}

/// An op that changes no card record (facade: list, issue a grant; authorizer: the two
/// detokenizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// The card's PAN for `payment`, on presenting the single-use grant the facade obtained for
    /// exactly this merchant, customer, token and payment.
    Detokenize {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
        /// The card to detokenize.
        token: Token,
        /// The payment the PAN is for; the vault notes it, for a later reversal.
        payment: PaymentRef,
        /// The grant the facade obtained for these same four values; used up whatever the outcome.
        grant: GrantId,
    },
    /// (Facade role.) The customer's status and the cards that reached the merchant's listing
    /// threshold, masked. The authorizer may not list.
    List {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
    },
    /// A single-use grant to detokenize `token` for `payment` (the facade asks, serving the
    /// shopper's or merchant's request for that payment).
    IssueGrant {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
        /// The card the grant is for; it must exist.
        token: Token,
        /// The payment the grant is for.
        payment: PaymentRef,
        /// Which cards may be granted: [`CardUse::Offered`] refuses a card below the merchant's
        /// listing threshold or expired, as if it did not exist.
        card_use: CardUse,
    },
    /// The PAN again to reverse `payment` (store-and-forward): only for a payment the vault
    /// detokenized with a grant, within the reversal window.
    DetokenizeForReversal {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
        /// The card to detokenize again.
        token: Token,
        /// The payment to reverse; the vault must have detokenized it with a grant.
        payment: PaymentRef,
    },
}

/// An op that changes one customer's records, under that customer's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// (Facade role.) Saves a card, or finds the same card saved before for this customer and
    /// updates it; refused for a customer set to `Deny`.
    Tokenize(TokenizeRequest),
    /// (Facade role.) Erases one of the customer's cards and its fingerprint entry.
    Remove {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
        /// The card to erase.
        token: Token,
    },
    /// (Facade role.) Sets the customer's One Click status (`Deny` refuses saving and offering).
    SetStatus {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
        /// The new status.
        status: CustomerStatus,
    },
    /// A successful payment: counted once per `payment`, timed by the vault's clock (`at`, the
    /// client's time, is only checked to be within the allowed skew).
    RecordPayment {
        /// The merchant making the call; its scope decides whose cards are meant.
        merchant: MerchantId,
        /// The merchant's number for the customer.
        customer: CustomerNumber,
        /// The card the payment was made with.
        token: Token,
        /// The payment, so that a retry is not counted twice.
        payment: PaymentRef,
        /// The client's time of the payment, only checked against the vault's clock.
        at: Timestamp,
    },
}

/// An operator's op over the whole vault (admin role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOp {
    /// Erase every card past its retention period.
    Purge,
    /// Start a new key version and re-seal records under it in the background.
    RotateKeys,
    /// Start a new fingerprint key version and re-fingerprint records in the background.
    RotateFingerprintKey,
    /// Verify the audit log (chain and HSM-sealed checkpoints) in the running vault.
    VerifyAudit,
}

/// Which operation a request asks for, without its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Authentication, the first request of a connection.
    Hello,
    /// Save a card.
    Tokenize,
    /// A card's PAN for a payment, with a grant.
    Detokenize,
    /// A customer's status and listed cards.
    List,
    /// Erase a card.
    Remove,
    /// Set a customer's status.
    SetStatus,
    /// Count a successful payment.
    RecordPayment,
    /// Erase cards past retention.
    Purge,
    /// Start a new DEK (and KEK) version.
    RotateKeys,
    /// Start a new fingerprint key version.
    RotateFingerprintKey,
    /// A single-use detokenize grant.
    IssueGrant,
    /// A card's PAN again, to reverse a payment.
    DetokenizeForReversal,
    /// Verify the audit log and its checkpoints.
    VerifyAudit,
}

code_table! {
    /// The op byte of a request (also the `op` of an audit entry).
    pub op_code / op_kind: OpKind {
        OpKind::Hello = 1,
        OpKind::Tokenize = 2,
        OpKind::Detokenize = 3,
        OpKind::List = 4,
        OpKind::Remove = 5,
        OpKind::SetStatus = 6,
        OpKind::RecordPayment = 7,
        OpKind::Purge = 8,
        OpKind::RotateKeys = 9,
        // Far from the codes in use, so ops added on other branches meanwhile do not collide.
        OpKind::RotateFingerprintKey = 16,
        OpKind::IssueGrant = 10,
        OpKind::DetokenizeForReversal = 11,
        OpKind::VerifyAudit = 12,
    }
}

impl Op {
    /// Which op this is, without its fields (for the op byte, the role table and the audit entry).
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Hello { .. } => OpKind::Hello,
            Op::Read(ReadOp::Detokenize { .. }) => OpKind::Detokenize,
            Op::Read(ReadOp::List { .. }) => OpKind::List,
            Op::Read(ReadOp::IssueGrant { .. }) => OpKind::IssueGrant,
            Op::Read(ReadOp::DetokenizeForReversal { .. }) => OpKind::DetokenizeForReversal,
            Op::Write(WriteOp::Tokenize(_)) => OpKind::Tokenize,
            Op::Write(WriteOp::Remove { .. }) => OpKind::Remove,
            Op::Write(WriteOp::SetStatus { .. }) => OpKind::SetStatus,
            Op::Write(WriteOp::RecordPayment { .. }) => OpKind::RecordPayment,
            Op::Admin(AdminOp::Purge) => OpKind::Purge,
            Op::Admin(AdminOp::RotateKeys) => OpKind::RotateKeys,
            Op::Admin(AdminOp::RotateFingerprintKey) => OpKind::RotateFingerprintKey,
            Op::Admin(AdminOp::VerifyAudit) => OpKind::VerifyAudit,
        }
    }

    /// The token the op names, if any (for the audit entry).
    pub fn token(&self) -> Option<Token> {
        match self {
            Op::Read(
                ReadOp::Detokenize { token, .. }
                | ReadOp::IssueGrant { token, .. }
                | ReadOp::DetokenizeForReversal { token, .. },
            )
            | Op::Write(WriteOp::Remove { token, .. } | WriteOp::RecordPayment { token, .. }) => {
                Some(*token)
            }
            Op::Read(ReadOp::List { .. })
            | Op::Write(WriteOp::Tokenize(_) | WriteOp::SetStatus { .. })
            | Op::Hello { .. }
            | Op::Admin(_) => None,
        }
    }

    /// The customer the op is about, if any (for the audit entry).
    pub fn customer(&self) -> Option<&CustomerNumber> {
        match self {
            Op::Write(WriteOp::Tokenize(t)) => Some(&t.customer),
            Op::Read(
                ReadOp::Detokenize { customer, .. }
                | ReadOp::List { customer, .. }
                | ReadOp::IssueGrant { customer, .. }
                | ReadOp::DetokenizeForReversal { customer, .. },
            )
            | Op::Write(
                WriteOp::Remove { customer, .. }
                | WriteOp::SetStatus { customer, .. }
                | WriteOp::RecordPayment { customer, .. },
            ) => Some(customer),
            Op::Hello { .. } | Op::Admin(_) => None,
        }
    }
}

/// The status byte of a response: success, or which [`VaultError`] the vault answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The call succeeded; a reply follows.
    Ok,
    /// [`VaultError::BadRequest`]: the request does not decode or breaks a field's rules.
    BadRequest,
    /// [`VaultError::Unauthenticated`]: the login was refused.
    Unauthenticated,
    /// [`VaultError::Forbidden`]: the caller's role may not make this call.
    Forbidden,
    /// [`VaultError::NotFound`]: no such card for this customer.
    NotFound,
    /// [`VaultError::CustomerDenied`]: the customer is set to `Deny`.
    CustomerDenied,
    /// [`VaultError::UnknownMerchant`]: the merchant is not configured.
    UnknownMerchant,
    /// [`VaultError::Internal`]: the vault's own parts failed.
    Internal,
    /// [`VaultError::GrantRefused`]: no valid grant binds the detokenize to the payment.
    GrantRefused,
    /// [`VaultError::RateLimited`]: the client is over its detokenize rate.
    RateLimited,
}

code_table! {
    /// The status byte of a response (also the `outcome` of an audit entry).
    pub status_code / status_of: Status {
        Status::Ok = 0,
        Status::BadRequest = 1,
        Status::Unauthenticated = 2,
        Status::Forbidden = 3,
        Status::NotFound = 4,
        Status::CustomerDenied = 5,
        Status::UnknownMerchant = 6,
        Status::Internal = 7,
        Status::GrantRefused = 8,
        Status::RateLimited = 9,
    }
}

impl VaultError {
    /// The status byte this error is answered with.
    pub fn status(&self) -> Status {
        match self {
            VaultError::BadRequest(_) => Status::BadRequest,
            VaultError::Unauthenticated => Status::Unauthenticated,
            VaultError::Forbidden(_) => Status::Forbidden,
            VaultError::NotFound => Status::NotFound,
            VaultError::CustomerDenied => Status::CustomerDenied,
            VaultError::UnknownMerchant => Status::UnknownMerchant,
            VaultError::Internal(_) => Status::Internal,
            VaultError::GrantRefused => Status::GrantRefused,
            VaultError::RateLimited => Status::RateLimited,
        }
    }

    /// The text after the status byte: empty unless the variant carries one.
    fn text(&self) -> &str {
        match self {
            VaultError::BadRequest(m) | VaultError::Internal(m) => m,
            VaultError::Forbidden(role) => role,
            VaultError::Unauthenticated
            | VaultError::NotFound
            | VaultError::CustomerDenied
            | VaultError::UnknownMerchant
            | VaultError::GrantRefused
            | VaultError::RateLimited => "",
        }
    }
}

/// Which answer a successful response carries, without its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// [`Reply::Welcome`].
    Welcome,
    /// [`Reply::Saved`].
    Saved,
    /// [`Reply::Secret`].
    Secret,
    /// [`Reply::Cards`].
    Cards,
    /// [`Reply::Done`].
    Done,
    /// [`Reply::Purged`].
    Purged,
    /// [`Reply::Rotated`].
    Rotated,
    /// [`Reply::Granted`].
    Granted,
    /// [`Reply::AuditVerified`].
    AuditVerified,
}

code_table! {
    reply_code / reply_kind: ReplyKind {
        ReplyKind::Welcome = 1,
        ReplyKind::Saved = 2,
        ReplyKind::Secret = 3,
        ReplyKind::Cards = 4,
        ReplyKind::Done = 5,
        ReplyKind::Purged = 6,
        ReplyKind::Rotated = 7,
        ReplyKind::Granted = 8,
        ReplyKind::AuditVerified = 9,
    }
}

code_table! {
    customer_status_code / customer_status_of: CustomerStatus {
        CustomerStatus::New = 0,
        CustomerStatus::Member = 1,
        CustomerStatus::Deny = 2,
    }
}

code_table! {
    card_use_code / card_use_of: CardUse {
        CardUse::OnFile = 1,
        CardUse::Offered = 2,
    }
}

code_table! {
    role_code / role_of: Role {
        Role::Facade = 1,
        Role::Authorizer = 2,
        Role::Admin = 3,
    }
}

code_table! {
    brand_code / brand_of: Brand {
        Brand::Unknown = 0,
        Brand::Visa = 1,
        Brand::Mastercard = 2,
        Brand::Mir = 3,
    }
}

/// One request: an op, numbered so that its answer can be matched on a pipelined connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Chosen by the client, unique among its requests in flight; the response carries it back.
    pub id: u64,
    /// What the client asks for.
    pub op: Op,
}

/// What a successful call answers, one variant per kind of op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To `hello`: the role the vault gives the client.
    Welcome(Role),
    /// To tokenize: the token and the masked card.
    Saved(SavedCard),
    /// To detokenize: the PAN, expiry and holder; only ever sent to the authorizer role.
    Secret(CardSecret),
    /// To list: the customer's status and listed cards.
    Cards(CustomerCards),
    /// To remove, set-status and record-payment: the change is durable.
    Done,
    /// To purge: how many cards were erased.
    Purged(u64),
    /// To a key rotation: the new key version.
    Rotated(u32),
    /// To issue-grant: the single-use grant.
    Granted(GrantId),
    /// To verify-audit: what the check covered.
    AuditVerified(AuditSummary),
}

/// One answer, to the request with the same id; answers come back as calls finish, in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The id of the request answered.
    pub id: u64,
    /// The reply, or the error the vault answered with (never card data in its text).
    pub result: Result<Reply, VaultError>,
}

impl Request {
    /// The request's bytes, in a buffer wiped once sent (a tokenize carries a PAN, a hello a
    /// secret).
    pub fn encode(&self) -> Bytes {
        // A tokenize carries a PAN and a hello a secret: the buffer is wiped once sent.
        let mut w = WipingBuf::with_capacity(96);
        w.put_u8(REQUEST);
        w.put_u64(self.id);
        w.put_u8(op_code(self.op.kind()));
        match &self.op {
            Op::Hello { client, secret } => {
                w.put_str(client);
                w.put_bytes(secret.expose());
            }
            Op::Write(WriteOp::Tokenize(t)) => {
                put_owner(&mut w, &t.merchant, &t.customer);
                w.put_bytes(t.pan.expose());
                put_expiry(&mut w, t.expiry);
                w.put_bool(t.holder.is_some());
                if let Some(h) = &t.holder {
                    w.put_str(h.expose());
                }
            }
            Op::Write(WriteOp::Remove {
                merchant,
                customer,
                token,
            }) => {
                put_owner(&mut w, merchant, customer);
                w.put_slice(token.as_bytes());
            }
            Op::Read(ReadOp::IssueGrant {
                merchant,
                customer,
                token,
                payment,
                card_use,
            }) => {
                put_payment(&mut w, merchant, customer, token, payment);
                w.put_u8(card_use_code(*card_use));
            }
            Op::Read(ReadOp::DetokenizeForReversal {
                merchant,
                customer,
                token,
                payment,
            }) => put_payment(&mut w, merchant, customer, token, payment),
            Op::Read(ReadOp::Detokenize {
                merchant,
                customer,
                token,
                payment,
                grant,
            }) => {
                put_payment(&mut w, merchant, customer, token, payment);
                w.put_slice(&grant.0);
            }
            Op::Read(ReadOp::List { merchant, customer }) => put_owner(&mut w, merchant, customer),
            Op::Write(WriteOp::SetStatus {
                merchant,
                customer,
                status,
            }) => {
                put_owner(&mut w, merchant, customer);
                w.put_u8(customer_status_code(*status));
            }
            Op::Write(WriteOp::RecordPayment {
                merchant,
                customer,
                token,
                payment,
                at,
            }) => {
                put_payment(&mut w, merchant, customer, token, payment);
                w.put_u64(at.0);
            }
            Op::Admin(_) => {}
        }
        w.into_bytes()
    }

    /// Reads and validates a request; an error names a field and an offset, never a value.
    pub fn decode(buf: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8()? != REQUEST {
            return Err(r.invalid("kind"));
        }
        let id = r.u64()?;
        let kind = op_kind(r.u8()?).ok_or_else(|| r.invalid("op"))?;
        let op = match kind {
            OpKind::Hello => Op::Hello {
                client: r.str("client")?.to_string(),
                secret: ClientSecret::new(r.bytes()?.to_vec()),
            },
            OpKind::Tokenize => {
                let (merchant, customer) = owner(&mut r)?;
                let pan = Pan::from_ascii(r.bytes()?).map_err(|_| r.invalid("pan"))?;
                let expiry = expiry(&mut r)?;
                let holder = if r.present("holder")? {
                    Some(CardholderName::parse(r.str("holder")?).map_err(|_| r.invalid("holder"))?)
                } else {
                    None
                };
                Op::Write(WriteOp::Tokenize(TokenizeRequest {
                    merchant,
                    customer,
                    pan,
                    expiry,
                    holder,
                }))
            }
            OpKind::Remove => {
                let (merchant, customer) = owner(&mut r)?;
                Op::Write(WriteOp::Remove {
                    merchant,
                    customer,
                    token: Token::from_bytes(r.array()?),
                })
            }
            OpKind::Detokenize => {
                let (merchant, customer, token, payment) = payment_of(&mut r)?;
                Op::Read(ReadOp::Detokenize {
                    merchant,
                    customer,
                    token,
                    payment,
                    grant: GrantId(r.array()?),
                })
            }
            OpKind::IssueGrant => {
                let (merchant, customer, token, payment) = payment_of(&mut r)?;
                Op::Read(ReadOp::IssueGrant {
                    merchant,
                    customer,
                    token,
                    payment,
                    card_use: card_use_of(r.u8()?).ok_or_else(|| r.invalid("card use"))?,
                })
            }
            OpKind::DetokenizeForReversal => {
                let (merchant, customer, token, payment) = payment_of(&mut r)?;
                Op::Read(ReadOp::DetokenizeForReversal {
                    merchant,
                    customer,
                    token,
                    payment,
                })
            }
            OpKind::List => {
                let (merchant, customer) = owner(&mut r)?;
                Op::Read(ReadOp::List { merchant, customer })
            }
            OpKind::SetStatus => {
                let (merchant, customer) = owner(&mut r)?;
                let status = status(&mut r)?;
                Op::Write(WriteOp::SetStatus {
                    merchant,
                    customer,
                    status,
                })
            }
            OpKind::RecordPayment => {
                let (merchant, customer, token, payment) = payment_of(&mut r)?;
                Op::Write(WriteOp::RecordPayment {
                    merchant,
                    customer,
                    token,
                    payment,
                    at: Timestamp(r.u64()?),
                })
            }
            OpKind::Purge => Op::Admin(AdminOp::Purge),
            OpKind::RotateKeys => Op::Admin(AdminOp::RotateKeys),
            OpKind::RotateFingerprintKey => Op::Admin(AdminOp::RotateFingerprintKey),
            OpKind::VerifyAudit => Op::Admin(AdminOp::VerifyAudit),
        };
        r.finish()?;
        Ok(Request { id, op })
    }
}

impl Response {
    /// The response's bytes, in a buffer wiped once sent (a detokenize answer carries a PAN).
    pub fn encode(&self) -> Bytes {
        // A detokenize answer carries a PAN: the buffer is wiped once sent.
        let mut w = WipingBuf::with_capacity(128);
        w.put_u8(RESPONSE);
        w.put_u64(self.id);
        match &self.result {
            Ok(reply) => {
                w.put_u8(status_code(Status::Ok));
                put_reply(&mut w, reply);
            }
            Err(e) => {
                w.put_u8(status_code(e.status()));
                w.put_str(e.text());
            }
        }
        w.into_bytes()
    }

    /// Reads and validates a response; an error names a field and an offset, never a value.
    pub fn decode(buf: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8()? != RESPONSE {
            return Err(r.invalid("kind"));
        }
        let id = r.u64()?;
        let status = status_of(r.u8()?).ok_or_else(|| r.invalid("status"))?;
        let result = match status {
            Status::Ok => Ok(reply(&mut r)?),
            Status::BadRequest => Err(VaultError::BadRequest(r.str("error")?.to_string())),
            Status::Unauthenticated => Err(no_text(&mut r, VaultError::Unauthenticated)?),
            Status::Forbidden => {
                let role = Role::parse(r.str("error")?).ok_or_else(|| r.invalid("role"))?;
                Err(VaultError::Forbidden(role.name()))
            }
            Status::NotFound => Err(no_text(&mut r, VaultError::NotFound)?),
            Status::CustomerDenied => Err(no_text(&mut r, VaultError::CustomerDenied)?),
            Status::UnknownMerchant => Err(no_text(&mut r, VaultError::UnknownMerchant)?),
            Status::Internal => Err(VaultError::Internal(r.str("error")?.to_string())),
            Status::GrantRefused => Err(no_text(&mut r, VaultError::GrantRefused)?),
            Status::RateLimited => Err(no_text(&mut r, VaultError::RateLimited)?),
        };
        r.finish()?;
        Ok(Response { id, result })
    }
}

fn put_owner(w: &mut WipingBuf, merchant: &MerchantId, customer: &CustomerNumber) {
    w.put_str(merchant.as_str());
    w.put_str(customer.as_str());
}

fn owner(r: &mut Reader<'_>) -> Result<(MerchantId, CustomerNumber), DecodeError> {
    let merchant = MerchantId::parse(r.str("merchant")?).map_err(|_| r.invalid("merchant"))?;
    let customer = CustomerNumber::parse(r.str("customer")?).map_err(|_| r.invalid("customer"))?;
    Ok((merchant, customer))
}

/// A card and the payment it is used for: owner, token, payment reference.
fn put_payment(
    w: &mut WipingBuf,
    merchant: &MerchantId,
    customer: &CustomerNumber,
    token: &Token,
    payment: &PaymentRef,
) {
    put_owner(w, merchant, customer);
    w.put_slice(token.as_bytes());
    w.put_str(payment.as_str());
}

fn payment_of(
    r: &mut Reader<'_>,
) -> Result<(MerchantId, CustomerNumber, Token, PaymentRef), DecodeError> {
    let (merchant, customer) = owner(r)?;
    let token = Token::from_bytes(r.array()?);
    let payment = PaymentRef::parse(r.str("payment")?).map_err(|_| r.invalid("payment"))?;
    Ok((merchant, customer, token, payment))
}

fn put_expiry(w: &mut WipingBuf, e: Expiry) {
    w.put_u8(e.month());
    w.put_u16(e.year());
}

fn expiry(r: &mut Reader<'_>) -> Result<Expiry, DecodeError> {
    let month = r.u8()?;
    let year = r.u16()?;
    Expiry::new(month, year).map_err(|_| r.invalid("expiry"))
}

fn status(r: &mut Reader<'_>) -> Result<CustomerStatus, DecodeError> {
    customer_status_of(r.u8()?).ok_or_else(|| r.invalid("status"))
}

fn role(r: &mut Reader<'_>) -> Result<Role, DecodeError> {
    role_of(r.u8()?).ok_or_else(|| r.invalid("role"))
}

fn brand(r: &mut Reader<'_>) -> Result<Brand, DecodeError> {
    brand_of(r.u8()?).ok_or_else(|| r.invalid("brand"))
}

fn put_masked(w: &mut WipingBuf, c: &MaskedCard) {
    w.put_str(c.bin.as_str());
    w.put_str(c.last4.as_str());
    w.put_u8(brand_code(c.brand));
    w.put_str(&c.bank);
    put_expiry(w, c.expiry);
}

fn masked(r: &mut Reader<'_>) -> Result<MaskedCard, DecodeError> {
    let bin = Bin::parse(r.str("bin")?).ok_or_else(|| r.invalid("bin"))?;
    let last4 = Last4::parse(r.str("last4")?).ok_or_else(|| r.invalid("last4"))?;
    let brand = brand(r)?;
    let bank = r.str("bank")?;
    if bank.len() > 128 {
        return Err(r.invalid("bank"));
    }
    Ok(MaskedCard {
        bin,
        last4,
        brand,
        bank: bank.to_string(),
        expiry: expiry(r)?,
    })
}

impl Reply {
    /// Which kind of reply this is, without its fields.
    pub fn kind(&self) -> ReplyKind {
        match self {
            Reply::Welcome(_) => ReplyKind::Welcome,
            Reply::Saved(_) => ReplyKind::Saved,
            Reply::Secret(_) => ReplyKind::Secret,
            Reply::Cards(_) => ReplyKind::Cards,
            Reply::Done => ReplyKind::Done,
            Reply::Purged(_) => ReplyKind::Purged,
            Reply::Rotated(_) => ReplyKind::Rotated,
            Reply::Granted(_) => ReplyKind::Granted,
            Reply::AuditVerified(_) => ReplyKind::AuditVerified,
        }
    }
}

fn put_reply(w: &mut WipingBuf, reply: &Reply) {
    w.put_u8(reply_code(reply.kind()));
    match reply {
        Reply::Welcome(role) => w.put_u8(role_code(*role)),
        Reply::Saved(s) => {
            w.put_slice(s.token.as_bytes());
            put_masked(w, &s.card);
            w.put_bool(s.created);
        }
        Reply::Secret(s) => {
            w.put_bytes(s.pan.expose());
            put_expiry(w, s.expiry);
            w.put_bool(s.holder.is_some());
            if let Some(h) = &s.holder {
                w.put_str(h.expose());
            }
        }
        Reply::Cards(c) => {
            w.put_u8(customer_status_code(c.status));
            w.put_u16(u16::try_from(c.cards.len().min(MAX_CARDS)).unwrap_or(0));
            for card in c.cards.iter().take(MAX_CARDS) {
                w.put_slice(card.token.as_bytes());
                put_masked(w, &card.card);
                w.put_bool(card.active);
                w.put_bool(card.need_cvc);
                w.put_u32(card.successes);
            }
        }
        Reply::Done => {}
        Reply::Purged(n) => w.put_u64(*n),
        Reply::Rotated(v) => w.put_u32(*v),
        Reply::Granted(g) => w.put_slice(&g.0),
        Reply::AuditVerified(a) => {
            w.put_u64(a.entries);
            w.put_u64(a.checkpoints);
            w.put_u64(a.sealed_through);
            w.put_slice(&a.head);
        }
    }
}

fn reply(r: &mut Reader<'_>) -> Result<Reply, DecodeError> {
    let kind = reply_kind(r.u8()?).ok_or_else(|| r.invalid("reply"))?;
    Ok(match kind {
        ReplyKind::Welcome => Reply::Welcome(role(r)?),
        ReplyKind::Saved => Reply::Saved(SavedCard {
            token: Token::from_bytes(r.array()?),
            card: masked(r)?,
            created: r.bool("created")?,
        }),
        ReplyKind::Secret => {
            // The PAN bytes are copied into the zeroizing Pan only; the frame buffer is the
            // caller's to wipe.
            let pan = Pan::from_ascii(&Zeroizing::new(r.bytes()?.to_vec()))
                .map_err(|_| r.invalid("pan"))?;
            let expiry = expiry(r)?;
            let holder = if r.present("holder")? {
                Some(CardholderName::parse(r.str("holder")?).map_err(|_| r.invalid("holder"))?)
            } else {
                None
            };
            Reply::Secret(CardSecret {
                pan,
                expiry,
                holder,
            })
        }
        ReplyKind::Cards => {
            let status = status(r)?;
            let n = usize::from(r.u16()?);
            if n > MAX_CARDS {
                return Err(r.invalid("cards"));
            }
            let mut cards = Vec::with_capacity(n);
            for _ in 0..n {
                cards.push(ListedCard {
                    token: Token::from_bytes(r.array()?),
                    card: masked(r)?,
                    active: r.bool("active")?,
                    need_cvc: r.bool("need_cvc")?,
                    successes: r.u32()?,
                });
            }
            Reply::Cards(CustomerCards { status, cards })
        }
        ReplyKind::Done => Reply::Done,
        ReplyKind::Purged => Reply::Purged(r.u64()?),
        ReplyKind::Rotated => Reply::Rotated(r.u32()?),
        ReplyKind::Granted => Reply::Granted(GrantId(r.array()?)),
        ReplyKind::AuditVerified => Reply::AuditVerified(AuditSummary {
            entries: r.u64()?,
            checkpoints: r.u64()?,
            sealed_through: r.u64()?,
            head: r.array()?,
        }),
    })
}

/// An error that carries no text: its text must be empty (canonical encoding).
fn no_text(r: &mut Reader<'_>, error: VaultError) -> Result<VaultError, DecodeError> {
    if r.str("error")?.is_empty() {
        Ok(error)
    } else {
        Err(r.invalid("error"))
    }
}

/// Fuzz entry point: whatever decodes must encode back to the same bytes.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(req) = Request::decode(data) {
        assert_eq!(&req.encode()[..], data, "request did not round-trip");
    }
    if let Ok(resp) = Response::decode(data) {
        assert_eq!(&resp.encode()[..], data, "response did not round-trip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> (MerchantId, CustomerNumber) {
        (
            MerchantId::parse("452739").unwrap(),
            CustomerNumber::parse("c-1").unwrap(),
        )
    }

    #[test]
    fn every_message_round_trips_and_rejects_damage() {
        let (merchant, customer) = owner();
        let token = Token::random();
        let pan = Pan::parse("4111111111111111").unwrap();
        let expiry = Expiry::new(12, 2030).unwrap();
        let holder = Some(CardholderName::parse("IVAN PETROV").unwrap());
        let payment = PaymentRef::parse("1234567890123456.1").unwrap();
        let ops = vec![
            Op::Hello {
                client: "facade".into(),
                secret: ClientSecret::new(b"s".to_vec()),
            },
            Op::Write(WriteOp::Tokenize(TokenizeRequest {
                merchant: merchant.clone(),
                customer: customer.clone(),
                pan: pan.clone(),
                expiry,
                holder: holder.clone(),
            })),
            Op::Read(ReadOp::Detokenize {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
                payment: payment.clone(),
                grant: GrantId([7; 16]),
            }),
            Op::Read(ReadOp::IssueGrant {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
                payment: payment.clone(),
                card_use: CardUse::Offered,
            }),
            Op::Read(ReadOp::DetokenizeForReversal {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
                payment: payment.clone(),
            }),
            Op::Read(ReadOp::List {
                merchant: merchant.clone(),
                customer: customer.clone(),
            }),
            Op::Write(WriteOp::Remove {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
            }),
            Op::Write(WriteOp::SetStatus {
                merchant: merchant.clone(),
                customer: customer.clone(),
                status: CustomerStatus::Deny,
            }),
            Op::Write(WriteOp::RecordPayment {
                merchant,
                customer,
                token,
                payment,
                at: Timestamp(1_700_000_000),
            }),
            Op::Admin(AdminOp::Purge),
            Op::Admin(AdminOp::RotateKeys),
            Op::Admin(AdminOp::VerifyAudit),
        ];
        for (id, op) in ops.into_iter().enumerate() {
            let req = Request { id: id as u64, op };
            let bytes = req.encode();
            assert_eq!(Request::decode(&bytes).unwrap(), req);
            fuzz_decode(&bytes);
            for cut in 0..bytes.len() {
                assert!(Request::decode(&bytes[..cut]).is_err());
            }
            let mut long = bytes.to_vec();
            long.push(0);
            assert_eq!(Request::decode(&long), Err(DecodeError::Trailing(1)));
        }
        let card = MaskedCard::of(&pan, expiry, "TEST BANK".into());
        let replies = vec![
            Ok(Reply::Welcome(Role::Authorizer)),
            Ok(Reply::Saved(SavedCard {
                token,
                card: card.clone(),
                created: true,
            })),
            Ok(Reply::Secret(CardSecret {
                pan,
                expiry,
                holder,
            })),
            Ok(Reply::Cards(CustomerCards {
                status: CustomerStatus::Member,
                cards: vec![ListedCard {
                    token,
                    card,
                    active: false,
                    need_cvc: true,
                    successes: 7,
                }],
            })),
            Ok(Reply::Done),
            Ok(Reply::Purged(3)),
            Ok(Reply::Rotated(2)),
            Ok(Reply::Granted(GrantId([9; 16]))),
            Ok(Reply::AuditVerified(AuditSummary {
                entries: 10,
                checkpoints: 2,
                sealed_through: 8,
                head: [3; 32],
            })),
            Err(VaultError::Forbidden("facade")),
            Err(VaultError::BadRequest("bad".into())),
            Err(VaultError::NotFound),
            Err(VaultError::GrantRefused),
            Err(VaultError::RateLimited),
        ];
        for result in replies {
            let resp = Response { id: 7, result };
            let bytes = resp.encode();
            assert_eq!(Response::decode(&bytes).unwrap(), resp);
            fuzz_decode(&bytes);
        }
    }

    #[test]
    fn every_code_table_maps_each_byte_back_to_itself() {
        for code in 0..=u8::MAX {
            let back = [
                op_kind(code).map(op_code),
                status_of(code).map(status_code),
                reply_kind(code).map(reply_code),
                customer_status_of(code).map(customer_status_code),
                role_of(code).map(role_code),
                brand_of(code).map(brand_code),
            ];
            for b in back.into_iter().flatten() {
                assert_eq!(b, code);
            }
        }
        assert_eq!(status_of(0), Some(Status::Ok), "0 is success on the wire");
        assert_eq!(op_kind(0), None);
    }

    #[test]
    fn invalid_fields_are_named_not_echoed() {
        let (merchant, _) = owner();
        let mut w = bytes::BytesMut::new();
        w.put_u8(REQUEST);
        w.put_u64(1);
        w.put_u8(4);
        w.put_str(merchant.as_str());
        w.put_str("bad customer");
        let err = Request::decode(&w).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Invalid {
                    field: "customer",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("bad customer"));
        // A PAN with a letter in it is refused without the digits in the message.
        let ok = Request {
            id: 1,
            op: Op::Write(WriteOp::Tokenize(TokenizeRequest {
                merchant,
                customer: CustomerNumber::parse("c").unwrap(),
                pan: Pan::parse("4111111111111111").unwrap(),
                expiry: Expiry::new(1, 2030).unwrap(),
                holder: None,
            })),
        }
        .encode()
        .to_vec();
        let at = ok.windows(4).position(|w| w == b"4111").unwrap();
        let mut bad = ok.clone();
        bad[at + 5] = b'x';
        let err = Request::decode(&bad).unwrap_err().to_string();
        assert!(err.contains("pan") && !err.contains("4111"), "{err}");
    }
}
