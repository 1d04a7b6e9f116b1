//! The vault protocol: what a request and a response look like inside one length-delimited frame.
//!
//! Frame: 4-byte big-endian length, then the message. Request: kind `0x51`, id (u64), op code
//! (u8), op fields. Response: kind `0x52`, id (u64), status (0 = ok, else an error code), then the
//! reply or the error text. Strings and byte strings carry a u16 length. Decoding validates every
//! field into its domain type, so the rest of the vault never sees an unchecked value; encoding is
//! canonical, so decode → encode gives back the input. Must never put card data in an error.

use bytes::{Bytes, BytesMut};
use card::{Bin, Brand, Expiry, Last4, Pan};
use tokio_util::codec::LengthDelimitedCodec;
use zeroize::Zeroizing;

use crate::model::*;
use crate::wire::{DecodeError, Reader, Writer};

/// Largest frame either side accepts; a tokenize request is under 300 bytes, a listing of 100
/// cards under 10 KiB.
pub const MAX_FRAME: usize = 64 * 1024;

/// Most cards one customer may hold in one scope, so a listing always fits in a frame.
pub const MAX_CARDS: usize = 100;

pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

const REQUEST: u8 = 0x51;
const RESPONSE: u8 = 0x52;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// First request on a Unix-socket connection: who the client is.
    Hello {
        client: String,
        secret: ClientSecret,
    },
    Tokenize(TokenizeRequest),
    Detokenize {
        merchant: MerchantId,
        customer: CustomerNumber,
        token: Token,
    },
    List {
        merchant: MerchantId,
        customer: CustomerNumber,
    },
    Remove {
        merchant: MerchantId,
        customer: CustomerNumber,
        token: Token,
    },
    SetStatus {
        merchant: MerchantId,
        customer: CustomerNumber,
        status: CustomerStatus,
    },
    RecordPayment {
        merchant: MerchantId,
        customer: CustomerNumber,
        token: Token,
        at: Timestamp,
    },
    /// Erase every card past its retention period.
    Purge,
    /// Start a new key version and re-seal records under it in the background.
    RotateKeys,
}

impl Op {
    pub fn code(&self) -> u8 {
        match self {
            Op::Hello { .. } => 1,
            Op::Tokenize(_) => 2,
            Op::Detokenize { .. } => 3,
            Op::List { .. } => 4,
            Op::Remove { .. } => 5,
            Op::SetStatus { .. } => 6,
            Op::RecordPayment { .. } => 7,
            Op::Purge => 8,
            Op::RotateKeys => 9,
        }
    }

    pub fn name(&self) -> &'static str {
        op_name(self.code())
    }
}

pub fn op_name(code: u8) -> &'static str {
    match code {
        1 => "hello",
        2 => "tokenize",
        3 => "detokenize",
        4 => "list",
        5 => "remove",
        6 => "set-status",
        7 => "record-payment",
        8 => "purge",
        9 => "rotate-keys",
        _ => "unknown",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Welcome(Role),
    Saved(SavedCard),
    Secret(CardSecret),
    Cards(CustomerCards),
    Done,
    Purged(u64),
    Rotated(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u64,
    pub result: Result<Reply, VaultError>,
}

impl Request {
    pub fn encode(&self) -> Bytes {
        let mut w = BytesMut::with_capacity(96);
        w.put_u8(REQUEST);
        w.put_u64(self.id);
        w.put_u8(self.op.code());
        match &self.op {
            Op::Hello { client, secret } => {
                w.put_str(client);
                w.put_bytes(secret.expose());
            }
            Op::Tokenize(t) => {
                put_owner(&mut w, &t.merchant, &t.customer);
                w.put_bytes(t.pan.expose());
                put_expiry(&mut w, t.expiry);
                w.put_bool(t.holder.is_some());
                if let Some(h) = &t.holder {
                    w.put_str(h.expose());
                }
            }
            Op::Detokenize {
                merchant,
                customer,
                token,
            }
            | Op::Remove {
                merchant,
                customer,
                token,
            } => {
                put_owner(&mut w, merchant, customer);
                w.put_slice(token.as_bytes());
            }
            Op::List { merchant, customer } => put_owner(&mut w, merchant, customer),
            Op::SetStatus {
                merchant,
                customer,
                status,
            } => {
                put_owner(&mut w, merchant, customer);
                w.put_u8(status_code(*status));
            }
            Op::RecordPayment {
                merchant,
                customer,
                token,
                at,
            } => {
                put_owner(&mut w, merchant, customer);
                w.put_slice(token.as_bytes());
                w.put_u64(at.0);
            }
            Op::Purge | Op::RotateKeys => {}
        }
        w.freeze()
    }

    pub fn decode(buf: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8()? != REQUEST {
            return Err(r.invalid("kind"));
        }
        let id = r.u64()?;
        let op = match r.u8()? {
            1 => Op::Hello {
                client: r.str("client")?.to_string(),
                secret: ClientSecret::new(r.bytes()?.to_vec()),
            },
            2 => {
                let (merchant, customer) = owner(&mut r)?;
                let pan = Pan::from_ascii(r.bytes()?).map_err(|_| r.invalid("pan"))?;
                let expiry = expiry(&mut r)?;
                let holder = if r.present("holder")? {
                    Some(CardholderName::parse(r.str("holder")?).map_err(|_| r.invalid("holder"))?)
                } else {
                    None
                };
                Op::Tokenize(TokenizeRequest {
                    merchant,
                    customer,
                    pan,
                    expiry,
                    holder,
                })
            }
            code @ (3 | 5) => {
                let (merchant, customer) = owner(&mut r)?;
                let token = Token::from_bytes(r.array()?);
                if code == 3 {
                    Op::Detokenize {
                        merchant,
                        customer,
                        token,
                    }
                } else {
                    Op::Remove {
                        merchant,
                        customer,
                        token,
                    }
                }
            }
            4 => {
                let (merchant, customer) = owner(&mut r)?;
                Op::List { merchant, customer }
            }
            6 => {
                let (merchant, customer) = owner(&mut r)?;
                let status = status(&mut r)?;
                Op::SetStatus {
                    merchant,
                    customer,
                    status,
                }
            }
            7 => {
                let (merchant, customer) = owner(&mut r)?;
                let token = Token::from_bytes(r.array()?);
                Op::RecordPayment {
                    merchant,
                    customer,
                    token,
                    at: Timestamp(r.u64()?),
                }
            }
            8 => Op::Purge,
            9 => Op::RotateKeys,
            _ => return Err(r.invalid("op")),
        };
        r.finish()?;
        Ok(Request { id, op })
    }
}

impl Response {
    pub fn encode(&self) -> Bytes {
        let mut w = BytesMut::with_capacity(128);
        w.put_u8(RESPONSE);
        w.put_u64(self.id);
        match &self.result {
            Ok(reply) => {
                w.put_u8(0);
                put_reply(&mut w, reply);
            }
            Err(e) => {
                let (code, text) = error_parts(e);
                w.put_u8(code);
                w.put_str(text);
            }
        }
        w.freeze()
    }

    pub fn decode(buf: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8()? != RESPONSE {
            return Err(r.invalid("kind"));
        }
        let id = r.u64()?;
        let status = r.u8()?;
        let result = if status == 0 {
            Ok(reply(&mut r)?)
        } else {
            Err(error(&mut r, status)?)
        };
        r.finish()?;
        Ok(Response { id, result })
    }
}

fn put_owner(w: &mut BytesMut, merchant: &MerchantId, customer: &CustomerNumber) {
    w.put_str(merchant.as_str());
    w.put_str(customer.as_str());
}

fn owner(r: &mut Reader<'_>) -> Result<(MerchantId, CustomerNumber), DecodeError> {
    let merchant = MerchantId::parse(r.str("merchant")?).map_err(|_| r.invalid("merchant"))?;
    let customer = CustomerNumber::parse(r.str("customer")?).map_err(|_| r.invalid("customer"))?;
    Ok((merchant, customer))
}

fn put_expiry(w: &mut BytesMut, e: Expiry) {
    w.put_u8(e.month());
    w.put_u16(e.year());
}

fn expiry(r: &mut Reader<'_>) -> Result<Expiry, DecodeError> {
    let month = r.u8()?;
    let year = r.u16()?;
    Expiry::new(month, year).map_err(|_| r.invalid("expiry"))
}

fn status_code(s: CustomerStatus) -> u8 {
    match s {
        CustomerStatus::New => 0,
        CustomerStatus::Member => 1,
        CustomerStatus::Deny => 2,
    }
}

fn status(r: &mut Reader<'_>) -> Result<CustomerStatus, DecodeError> {
    match r.u8()? {
        0 => Ok(CustomerStatus::New),
        1 => Ok(CustomerStatus::Member),
        2 => Ok(CustomerStatus::Deny),
        _ => Err(r.invalid("status")),
    }
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::Facade => 1,
        Role::Authorizer => 2,
        Role::Admin => 3,
    }
}

fn role(r: &mut Reader<'_>) -> Result<Role, DecodeError> {
    match r.u8()? {
        1 => Ok(Role::Facade),
        2 => Ok(Role::Authorizer),
        3 => Ok(Role::Admin),
        _ => Err(r.invalid("role")),
    }
}

fn brand_code(b: Brand) -> u8 {
    match b {
        Brand::Unknown => 0,
        Brand::Visa => 1,
        Brand::Mastercard => 2,
        Brand::Mir => 3,
    }
}

fn brand(r: &mut Reader<'_>) -> Result<Brand, DecodeError> {
    match r.u8()? {
        0 => Ok(Brand::Unknown),
        1 => Ok(Brand::Visa),
        2 => Ok(Brand::Mastercard),
        3 => Ok(Brand::Mir),
        _ => Err(r.invalid("brand")),
    }
}

fn put_masked(w: &mut BytesMut, c: &MaskedCard) {
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

fn put_reply(w: &mut BytesMut, reply: &Reply) {
    match reply {
        Reply::Welcome(role) => {
            w.put_u8(1);
            w.put_u8(role_code(*role));
        }
        Reply::Saved(s) => {
            w.put_u8(2);
            w.put_slice(s.token.as_bytes());
            put_masked(w, &s.card);
            w.put_bool(s.created);
        }
        Reply::Secret(s) => {
            w.put_u8(3);
            w.put_bytes(s.pan.expose());
            put_expiry(w, s.expiry);
            w.put_bool(s.holder.is_some());
            if let Some(h) = &s.holder {
                w.put_str(h.expose());
            }
        }
        Reply::Cards(c) => {
            w.put_u8(4);
            w.put_u8(status_code(c.status));
            w.put_u16(u16::try_from(c.cards.len().min(MAX_CARDS)).unwrap_or(0));
            for card in c.cards.iter().take(MAX_CARDS) {
                w.put_slice(card.token.as_bytes());
                put_masked(w, &card.card);
                w.put_bool(card.active);
                w.put_bool(card.need_cvc);
            }
        }
        Reply::Done => w.put_u8(5),
        Reply::Purged(n) => {
            w.put_u8(6);
            w.put_u64(*n);
        }
        Reply::Rotated(v) => {
            w.put_u8(7);
            w.put_u32(*v);
        }
    }
}

fn reply(r: &mut Reader<'_>) -> Result<Reply, DecodeError> {
    Ok(match r.u8()? {
        1 => Reply::Welcome(role(r)?),
        2 => Reply::Saved(SavedCard {
            token: Token::from_bytes(r.array()?),
            card: masked(r)?,
            created: r.bool("created")?,
        }),
        3 => {
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
        4 => {
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
                });
            }
            Reply::Cards(CustomerCards { status, cards })
        }
        5 => Reply::Done,
        6 => Reply::Purged(r.u64()?),
        7 => Reply::Rotated(r.u32()?),
        _ => return Err(r.invalid("reply")),
    })
}

fn error_parts(e: &VaultError) -> (u8, &str) {
    match e {
        VaultError::BadRequest(m) => (1, m),
        VaultError::Unauthenticated => (2, ""),
        VaultError::Forbidden(role) => (3, role),
        VaultError::NotFound => (4, ""),
        VaultError::CustomerDenied => (5, ""),
        VaultError::UnknownMerchant => (6, ""),
        VaultError::Internal(m) => (7, m),
        VaultError::Transport(m) => (8, m),
        VaultError::Timeout => (9, ""),
    }
}

fn error(r: &mut Reader<'_>, code: u8) -> Result<VaultError, DecodeError> {
    let text = r.str("error")?;
    let empty = |e: VaultError| {
        if text.is_empty() {
            Ok(e)
        } else {
            Err(r.invalid("error"))
        }
    };
    match code {
        1 => Ok(VaultError::BadRequest(text.to_string())),
        2 => empty(VaultError::Unauthenticated),
        3 => match Role::parse(text) {
            Some(role) => Ok(VaultError::Forbidden(role.name())),
            None => Err(r.invalid("role")),
        },
        4 => empty(VaultError::NotFound),
        5 => empty(VaultError::CustomerDenied),
        6 => empty(VaultError::UnknownMerchant),
        7 => Ok(VaultError::Internal(text.to_string())),
        8 => Ok(VaultError::Transport(text.to_string())),
        9 => empty(VaultError::Timeout),
        _ => Err(r.invalid("status")),
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
        let ops = vec![
            Op::Hello {
                client: "facade".into(),
                secret: ClientSecret::new(b"s".to_vec()),
            },
            Op::Tokenize(TokenizeRequest {
                merchant: merchant.clone(),
                customer: customer.clone(),
                pan: pan.clone(),
                expiry,
                holder: holder.clone(),
            }),
            Op::Detokenize {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
            },
            Op::List {
                merchant: merchant.clone(),
                customer: customer.clone(),
            },
            Op::Remove {
                merchant: merchant.clone(),
                customer: customer.clone(),
                token,
            },
            Op::SetStatus {
                merchant: merchant.clone(),
                customer: customer.clone(),
                status: CustomerStatus::Deny,
            },
            Op::RecordPayment {
                merchant,
                customer,
                token,
                at: Timestamp(1_700_000_000),
            },
            Op::Purge,
            Op::RotateKeys,
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
                }],
            })),
            Ok(Reply::Done),
            Ok(Reply::Purged(3)),
            Ok(Reply::Rotated(2)),
            Err(VaultError::Forbidden("facade")),
            Err(VaultError::BadRequest("bad".into())),
            Err(VaultError::NotFound),
        ];
        for result in replies {
            let resp = Response { id: 7, result };
            let bytes = resp.encode();
            assert_eq!(Response::decode(&bytes).unwrap(), resp);
            fuzz_decode(&bytes);
        }
    }

    #[test]
    fn invalid_fields_are_named_not_echoed() {
        let (merchant, _) = owner();
        let mut w = BytesMut::new();
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
            op: Op::Tokenize(TokenizeRequest {
                merchant,
                customer: CustomerNumber::parse("c").unwrap(),
                pan: Pan::parse("4111111111111111").unwrap(),
                expiry: Expiry::new(1, 2030).unwrap(),
                holder: None,
            }),
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
