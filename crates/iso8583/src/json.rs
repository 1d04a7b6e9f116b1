//! The JSON form that people use to read and write messages while debugging a link:
//! `{"mti":"0100","fields":{"2":"4111…","48":{"01":"I","10":"123"}}}`, all values strings,
//! structured fields as an object of tag to value. Masked by default: DE 2 shows its first six and
//! last four digits and hidden subelements (CVC2) are left out.

use serde_json::{Map, Value};

use crate::spec::Exposure;
use crate::{EncodeError, Message, MessageBuilder, Mti};

/// Whether card data is shown as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// PAN masked, hidden subelements left out: safe for logs and tickets.
    Masked,
    /// Everything as on the wire: for test data only.
    Unmasked,
}

/// Why a JSON text is not a message. Names the field or tag at fault, never a value.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON at all.
    #[error("not JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// The top level is not an object with `mti` and `fields`.
    #[error("expected an object with \"mti\" and \"fields\"")]
    Shape,
    /// `mti` is missing or not four digits.
    #[error("\"mti\" must be a string of four digits")]
    Mti,
    /// A key of `fields` that is not a field number from 2 to 128 (DE 1 is the bitmap's own bit).
    #[error("field key {0:?} is not a field number from 2 to 128")]
    FieldKey(String),
    /// A field's value is neither a string nor, for a structured field, an object of strings.
    #[error("DE {0}: value must be a string (or, for a structured field, an object of strings)")]
    FieldValue(u8),
    /// A key inside a structured field that is not a two-digit tag.
    #[error("DE {0}: subelement key {1:?} is not a two-digit tag")]
    Tag(u8, String),
    /// The fields parsed, but the builder refused a value (wrong format, too long, unknown field).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// The JSON form of `msg`. With [`Reveal::Masked`] the PAN is masked and hidden subelements
/// (CVC2) are left out, so the output is safe for a log or a ticket.
pub fn to_json(msg: &Message, reveal: Reveal) -> Value {
    let mut fields = Map::new();
    for n in msg.fields() {
        let value = msg.field(n).unwrap_or_default();
        let exposure = match reveal {
            Reveal::Unmasked => Exposure::Clear,
            Reveal::Masked => msg.spec().field(n).map_or(Exposure::Hidden, |s| s.exposure),
        };
        let shown = match (msg.de48().filter(|_| n == 48), exposure) {
            (Some(de48), _) => {
                let mut subs = Map::new();
                for (tag, v) in de48.iter() {
                    if reveal == Reveal::Unmasked || de48.exposure(tag) != Exposure::Hidden {
                        subs.insert(format!("{tag:02}"), text(v));
                    }
                }
                Value::Object(subs)
            }
            (None, Exposure::Clear) => text(value),
            (None, Exposure::MaskPan) => Value::String(card::mask_digits(value)),
            (None, Exposure::Hidden) => continue,
        };
        fields.insert(n.to_string(), shown);
    }
    let mut out = Map::new();
    out.insert("mti".into(), Value::String(msg.mti().to_string()));
    out.insert("fields".into(), Value::Object(fields));
    Value::Object(out)
}

/// Builds a message from its JSON form, with the same checks as [`MessageBuilder`]. Takes the
/// unmasked form: a masked PAN is refused, since `*` is not a digit.
pub fn from_json(json: &str) -> Result<Message, JsonError> {
    let value: Value = serde_json::from_str(json)?;
    let obj = value.as_object().ok_or(JsonError::Shape)?;
    let mti = obj
        .get("mti")
        .and_then(Value::as_str)
        .and_then(|s| Mti::from_ascii(s.as_bytes()))
        .ok_or(JsonError::Mti)?;
    let fields = obj
        .get("fields")
        .and_then(Value::as_object)
        .ok_or(JsonError::Shape)?;
    let mut builder = MessageBuilder::new(mti);
    for (key, value) in fields {
        let n: u8 = key
            .parse()
            .ok()
            .filter(|n| (2..=128).contains(n))
            .ok_or_else(|| JsonError::FieldKey(key.chars().take(8).collect()))?;
        match value {
            Value::String(s) => {
                builder.field(n, s.as_bytes());
            }
            Value::Object(subs) => {
                let mut pairs = Vec::with_capacity(subs.len());
                for (tag, v) in subs {
                    let t: u8 = tag
                        .parse()
                        .ok()
                        .filter(|t| *t < 100 && tag.len() == 2)
                        .ok_or_else(|| JsonError::Tag(n, tag.chars().take(8).collect()))?;
                    pairs.push((t, v.as_str().ok_or(JsonError::FieldValue(n))?.as_bytes()));
                }
                pairs.sort_by_key(|(t, _)| *t);
                builder.structured(n, &pairs);
            }
            _ => return Err(JsonError::FieldValue(n)),
        }
    }
    Ok(builder.build()?)
}
