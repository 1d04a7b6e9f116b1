//! The shopper's forms: a bounded `application/x-www-form-urlencoded` body decoded into
//! zeroizing buffers, and the checks of the new-card and CVC-only forms (Luhn, brand by BIN,
//! dates, lengths), each failure named by its field so the page shows it there.
//!
//! Owns the field names the pages and `pay.js` share and the server's checks. Must never copy a
//! card number or a CVC out of a zeroizing buffer except into [`Pan`] and [`Cvc`], and never put
//! either into an error.

use std::collections::HashMap;

use card::{Brand, CardError, Cvc, Expiry, Pan};
use orders::PayerDetails;
use zeroize::Zeroizing;

use super::i18n::Msg;

/// Largest form body read: the card form is a few hundred bytes.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// Field names, shared with the renderer and `pay.js`.
pub(crate) mod field {
    pub(crate) const CSRF: &str = "csrf";
    pub(crate) const PAN: &str = "pan";
    pub(crate) const MONTH: &str = "exp_month";
    pub(crate) const YEAR: &str = "exp_year";
    pub(crate) const CVC: &str = "cvc";
    pub(crate) const HOLDER: &str = "holder";
    pub(crate) const REMEMBER: &str = "remember";
    pub(crate) const FIRSTNAME: &str = "firstname";
    pub(crate) const LASTNAME: &str = "lastname";
    pub(crate) const EMAIL: &str = "email";
    pub(crate) const CARD: &str = "card";
}

/// A decoded form; every value is wiped when the form is dropped.
#[derive(Default)]
pub(crate) struct Fields(HashMap<String, Zeroizing<String>>);

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Fields {
    /// Decodes a urlencoded body. A name that repeats keeps its first value; bytes that are not
    /// UTF-8 make the value empty, which the checks then refuse.
    pub(crate) fn decode(body: &[u8]) -> Fields {
        let mut out = HashMap::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = String::from_utf8(unescape(name).to_vec()).unwrap_or_default();
            let value = unescape(value);
            let value = Zeroizing::new(std::str::from_utf8(&value).unwrap_or_default().to_owned());
            out.entry(name).or_insert(value);
        }
        Fields(out)
    }

    /// A field's value, trimmed; empty when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }

    /// Whether a checkbox was sent checked.
    pub(crate) fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// `+` as space, then percent-decoding, into a buffer wiped on drop.
fn unescape(raw: &[u8]) -> Zeroizing<Vec<u8>> {
    let spaced = Zeroizing::new(
        raw.iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect::<Vec<u8>>(),
    );
    Zeroizing::new(percent_encoding::percent_decode(&spaced).collect())
}

/// Which customer fields the page asks for (those the merchant did not send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ask {
    pub(crate) firstname: bool,
    pub(crate) lastname: bool,
    pub(crate) email: bool,
}

/// A field and what is wrong with it.
pub(crate) type FieldErrors = Vec<(&'static str, Msg)>;

/// A typed card that passed the checks.
#[derive(Debug)]
pub(crate) struct CardInput {
    pub(crate) pan: Pan,
    pub(crate) expiry: Expiry,
    pub(crate) cvc: Cvc,
    pub(crate) holder: Option<String>,
    pub(crate) remember: bool,
    pub(crate) payer: PayerDetails,
}

/// Checks the new-card form; `today` is (year, month) for the expiry check.
pub(crate) fn new_card(f: &Fields, ask: Ask, today: (u16, u8)) -> Result<CardInput, FieldErrors> {
    let mut errors = FieldErrors::new();
    let digits = Zeroizing::new(
        f.get(field::PAN)
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect::<String>(),
    );
    let pan = match Pan::parse_checked(&digits) {
        Ok(p) if p.brand() == Brand::Unknown => {
            errors.push((field::PAN, Msg::ErrPanBrand));
            None
        }
        Ok(p) => Some(p),
        Err(CardError::PanLuhn) => {
            errors.push((field::PAN, Msg::ErrPanLuhn));
            None
        }
        Err(_) if digits.is_empty() => {
            errors.push((field::PAN, Msg::ErrRequired));
            None
        }
        Err(_) => {
            errors.push((field::PAN, Msg::ErrPanLength));
            None
        }
    };
    let expiry = expiry(f.get(field::MONTH), f.get(field::YEAR));
    let expiry = match expiry {
        Some(e) if e.is_expired_at(today.0, today.1) => {
            errors.push((field::MONTH, Msg::ErrCardExpired));
            None
        }
        Some(e) => Some(e),
        None => {
            errors.push((field::MONTH, Msg::ErrExpiry));
            None
        }
    };
    let cvc = cvc(f, &mut errors);
    let holder = f.get(field::HOLDER);
    let holder_ok = holder.len() <= 26
        && holder
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, ' ' | '-' | '.' | '\''));
    if !holder_ok {
        errors.push((field::HOLDER, Msg::ErrHolder));
    }
    let mut payer = PayerDetails::default();
    for (asked, name, slot) in [
        (ask.firstname, field::FIRSTNAME, &mut payer.firstname),
        (ask.lastname, field::LASTNAME, &mut payer.lastname),
        (ask.email, field::EMAIL, &mut payer.email),
    ] {
        if !asked {
            continue;
        }
        let value = f.get(name);
        if value.is_empty() {
            errors.push((name, Msg::ErrRequired));
        } else if value.chars().count() > 70 || value.chars().any(char::is_control) {
            errors.push((name, Msg::ErrHolder));
        } else if name == field::EMAIL && !looks_like_email(value) {
            errors.push((name, Msg::ErrEmail));
        } else {
            *slot = Some(value.to_owned());
        }
    }
    match (pan, expiry, cvc) {
        (Some(pan), Some(expiry), Some(cvc)) if errors.is_empty() => Ok(CardInput {
            pan,
            expiry,
            cvc,
            holder: (!holder.is_empty()).then(|| holder.to_ascii_uppercase()),
            remember: f.checked(field::REMEMBER),
            payer,
        }),
        _ => Err(errors),
    }
}

/// Checks the CVC of the CVC-only form.
pub(crate) fn cvc_only(f: &Fields) -> Result<Cvc, FieldErrors> {
    let mut errors = FieldErrors::new();
    cvc(f, &mut errors).ok_or(errors)
}

fn cvc(f: &Fields, errors: &mut FieldErrors) -> Option<Cvc> {
    match Cvc::parse(f.get(field::CVC)) {
        Ok(c) => Some(c),
        Err(_) => {
            errors.push((field::CVC, Msg::ErrCvc));
            None
        }
    }
}

/// `MM` and `YY` or `YYYY` as typed.
fn expiry(month: &str, year: &str) -> Option<Expiry> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(month) || !digits(year) || month.len() > 2 {
        return None;
    }
    let month: u8 = month.parse().ok()?;
    let year: u16 = match year.len() {
        2 => 2000 + year.parse::<u16>().ok()?,
        4 => year.parse().ok()?,
        _ => return None,
    };
    Expiry::new(month, year).ok()
}

/// Something, `@`, something with a dot: the shop's own mail decides the rest.
fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: (u16, u8) = (2026, 12);

    fn form(body: &str) -> Fields {
        Fields::decode(body.as_bytes())
    }

    fn errors(body: &str, ask: Ask) -> FieldErrors {
        new_card(&form(body), ask, TODAY).unwrap_err()
    }

    #[test]
    fn a_good_card_passes_with_spaces_and_a_two_digit_year() {
        let card = new_card(
            &form("pan=4111+1111+1111+1111&exp_month=03&exp_year=29&cvc=123&holder=test+card&remember=on"),
            Ask::default(),
            TODAY,
        )
        .unwrap();
        assert_eq!(card.pan.expose(), b"4111111111111111");
        assert_eq!((card.expiry.month(), card.expiry.year()), (3, 2029));
        assert_eq!(card.holder.as_deref(), Some("TEST CARD"));
        assert!(card.remember);
    }

    #[test]
    fn each_bad_field_is_named() {
        let e = errors(
            "pan=4111111111111112&exp_month=13&exp_year=29&cvc=12&holder=%D0%98",
            Ask::default(),
        );
        assert_eq!(
            e,
            vec![
                (field::PAN, Msg::ErrPanLuhn),
                (field::MONTH, Msg::ErrExpiry),
                (field::CVC, Msg::ErrCvc),
                (field::HOLDER, Msg::ErrHolder),
            ]
        );
    }

    #[test]
    fn an_expired_card_and_an_unknown_scheme_are_refused() {
        let e = errors(
            "pan=6011111111111117&exp_month=11&exp_year=2026&cvc=123",
            Ask::default(),
        );
        assert_eq!(
            e,
            vec![
                (field::PAN, Msg::ErrPanBrand),
                (field::MONTH, Msg::ErrCardExpired)
            ]
        );
    }

    #[test]
    fn asked_customer_fields_are_required() {
        let ask = Ask {
            firstname: true,
            lastname: true,
            email: true,
        };
        let e = errors(
            "pan=4111111111111111&exp_month=03&exp_year=29&cvc=123&firstname=Ann&email=nope",
            ask,
        );
        assert_eq!(
            e,
            vec![
                (field::LASTNAME, Msg::ErrRequired),
                (field::EMAIL, Msg::ErrEmail)
            ]
        );
    }

    #[test]
    fn the_cvc_form_takes_three_or_four_digits() {
        assert!(cvc_only(&form("cvc=1234")).is_ok());
        assert_eq!(
            cvc_only(&form("cvc=12a")).unwrap_err(),
            vec![(field::CVC, Msg::ErrCvc)]
        );
    }

    #[test]
    fn debug_shows_names_only() {
        let f = form("pan=4111111111111111&cvc=123");
        let shown = format!("{f:?}");
        assert!(!shown.contains("4111") && !shown.contains("123"), "{shown}");
    }
}
