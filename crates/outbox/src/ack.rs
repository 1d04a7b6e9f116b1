//! The merchant's answer to a notification: HTTP 200 with
//! `<pushpaymentresult firstcode="0" secondcode="0">…</pushpaymentresult>` acknowledges it,
//! non-zero codes refuse it, anything else asks for another try ([`Verdict::of`]).
//!
//! Owns what counts as acknowledged. Must never trust the body's size (it is bounded before and
//! here), follow a DTD, or copy the body into an error.

use quick_xml::events::Event;

/// The most of an answer that is read; a longer one is not an acknowledgement.
pub const MAX_ANSWER: usize = 64 * 1024;

/// What the merchant's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `firstcode="0" secondcode="0"`.
    Acknowledged,
    /// Non-zero codes: the merchant will not take it.
    Refused {
        /// `firstcode`.
        firstcode: String,
        /// `secondcode`.
        secondcode: String,
    },
    /// Not an answer that settles it: try again later.
    Retry(String),
}

/// The codes of a `pushpaymentresult` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    /// `firstcode`.
    pub firstcode: String,
    /// `secondcode`.
    pub secondcode: String,
}

/// Why a body is not a `pushpaymentresult` document; never quotes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Longer than [`MAX_ANSWER`].
    #[error("the answer is longer than {MAX_ANSWER} bytes")]
    TooLong,
    /// Not well-formed XML, or with a DTD.
    #[error("the answer is not well-formed XML")]
    Malformed,
    /// Another root element.
    #[error("the answer is not a pushpaymentresult")]
    OtherDocument,
    /// `firstcode` or `secondcode` missing or not a number.
    #[error("the pushpaymentresult has no numeric firstcode and secondcode")]
    Codes,
}

/// Reads the root `pushpaymentresult` element's codes.
pub fn parse(body: &[u8]) -> Result<Codes, AckError> {
    if body.len() > MAX_ANSWER {
        return Err(AckError::TooLong);
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    loop {
        match reader.read_event().map_err(|_| AckError::Malformed)? {
            Event::Start(e) | Event::Empty(e) => {
                if !e
                    .local_name()
                    .as_ref()
                    .eq_ignore_ascii_case(b"pushpaymentresult")
                {
                    return Err(AckError::OtherDocument);
                }
                let (mut first, mut second) = (None, None);
                for attr in e.attributes() {
                    let attr = attr.map_err(|_| AckError::Malformed)?;
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::default())
                        .map_err(|_| AckError::Malformed)?;
                    let code = Some(value.trim().to_owned())
                        .filter(|c| (1..=10).contains(&c.len()))
                        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
                    let key = attr.key.local_name();
                    if key.as_ref().eq_ignore_ascii_case(b"firstcode") {
                        first = code;
                    } else if key.as_ref().eq_ignore_ascii_case(b"secondcode") {
                        second = code;
                    }
                }
                return match (first, second) {
                    (Some(firstcode), Some(secondcode)) => Ok(Codes {
                        firstcode,
                        secondcode,
                    }),
                    _ => Err(AckError::Codes),
                };
            }
            Event::DocType(_) => return Err(AckError::Malformed),
            Event::Eof => return Err(AckError::OtherDocument),
            // The declaration, comments, processing instructions, whitespace.
            _ => {}
        }
    }
}

fn zero(code: &str) -> bool {
    code.bytes().all(|b| b == b'0')
}

impl Verdict {
    /// What an HTTP answer with `status` and `body` means.
    pub fn of(status: u16, body: &[u8]) -> Verdict {
        if status != 200 {
            return Verdict::Retry(format!("HTTP status {status}"));
        }
        match parse(body) {
            Ok(c) if zero(&c.firstcode) && zero(&c.secondcode) => Verdict::Acknowledged,
            Ok(c) => Verdict::Refused {
                firstcode: c.firstcode,
                secondcode: c.secondcode,
            },
            Err(e) => Verdict::Retry(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<pushpaymentresult firstcode="0" secondcode="0">
  <order><billnumber>5678901234567890</billnumber><packetdate>01.12.2026 10:00:00</packetdate></order>
</pushpaymentresult>"#;

    #[test]
    fn zero_codes_acknowledge() {
        assert_eq!(Verdict::of(200, ACK.as_bytes()), Verdict::Acknowledged);
    }

    #[test]
    fn non_zero_codes_refuse() {
        let body = br#"<pushpaymentresult firstcode="5" secondcode="143"/>"#;
        assert_eq!(
            Verdict::of(200, body),
            Verdict::Refused {
                firstcode: "5".into(),
                secondcode: "143".into()
            }
        );
    }

    #[test]
    fn another_status_is_retried_even_with_an_acknowledgement() {
        assert_eq!(
            Verdict::of(500, ACK.as_bytes()),
            Verdict::Retry("HTTP status 500".into())
        );
    }

    #[test]
    fn malformed_and_foreign_bodies_are_retried() {
        for (body, why) in [
            (&b"OK"[..], AckError::OtherDocument),
            (b"<pushpaymentresult firstcode=\"0\"", AckError::Malformed),
            (b"<result firstcode=\"0\" secondcode=\"0\"/>", AckError::OtherDocument),
            (b"<pushpaymentresult firstcode=\"0\"/>", AckError::Codes),
            (b"<pushpaymentresult firstcode=\"x\" secondcode=\"0\"/>", AckError::Codes),
            (
                b"<!DOCTYPE a [<!ENTITY e \"0\">]><pushpaymentresult firstcode=\"&e;\" secondcode=\"0\"/>",
                AckError::Malformed,
            ),
            (b"", AckError::OtherDocument),
        ] {
            assert_eq!(parse(body), Err(why), "{}", String::from_utf8_lossy(body));
            assert!(matches!(Verdict::of(200, body), Verdict::Retry(_)));
        }
    }

    #[test]
    fn an_answer_beyond_the_bound_is_not_read() {
        let mut body = ACK.as_bytes().to_vec();
        body.resize(MAX_ANSWER + 1, b' ');
        assert_eq!(parse(&body), Err(AckError::TooLong));
    }
}
