//! Spelling an [`Answer`] in Format 1 (CSV), 3 (XML), 4 (SOAP) or 5 (JSON).
//!
//! Owns syntax only: escaping, roots, the SOAP envelope, the CSV line shape, the HTTP status of a
//! JSON fault. Must never decide content: which fields, their order and their values come from
//! [`crate::answer`], and every Format spells the same [`Field`] list.

use serde::ser::{Serialize, SerializeMap as _, Serializer};

use crate::answer::{Answer, Body, Field, Value};
use crate::codes::Fault;
use crate::values::Format;

/// The namespace of Assist's SOAP answers.
pub const SOAP_NS: &str = "http://www.paysecure.ru/ws/";

const XML_DECL: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// An answer ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// HTTP status (a JSON fault's 400/401/403/404, else 200).
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// Renders an answer in a Format. The One Click services always answer JSON (seed 001).
pub fn render(answer: &Answer, format: Format) -> Rendered {
    let format = if answer.service.takes_json() {
        Format::Json
    } else {
        format
    };
    let name = answer.service.answer_name();
    let (status, body) = match (&answer.result, format) {
        (Err(f), Format::Json) => (f.http_status(), json_fault(f)),
        (Err(f), Format::Csv) => (
            200,
            format!("error;{};{};\n", f.first.code(), f.second.code()),
        ),
        (Err(f), Format::Xml) => (200, xml_result(f.first.code(), f.second.code(), 0, "")),
        (Err(f), Format::Soap) => (200, soap(&soap_fault(f))),
        (Ok(b), Format::Json) => (200, json_body(name, b)),
        (Ok(b), Format::Csv) => (200, csv_body(&b.fields())),
        (Ok(b), Format::Xml) => (200, xml_result(0, 0, b.count(), &xml_fields(&b.fields()))),
        (Ok(b), Format::Soap) => {
            let inner = xml_fields(&b.fields());
            (
                200,
                soap(&format!(
                    r#"<{name}Response xmlns="{SOAP_NS}">{inner}</{name}Response>"#
                )),
            )
        }
    };
    Rendered {
        status,
        content_type: content_type(format),
        body,
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Csv => "text/plain; charset=utf-8",
        Format::Xml => "application/xml; charset=utf-8",
        Format::Soap => "text/xml; charset=utf-8",
        Format::Json => "application/json; charset=utf-8",
    }
}

/// Seed 001's fault object; the SOAP Fault mirrors it (faultcode = firstcode, faultstring =
/// secondcode), which is where Assist's JSON shape comes from.
fn json_fault(f: &Fault) -> String {
    serde_json::json!({"fault": {
        "detail": f.detail,
        "faultcode": f.first.code(),
        "faultstring": f.second.code(),
    }})
    .to_string()
}

fn soap_fault(f: &Fault) -> String {
    format!(
        "<soap:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring><detail>{}</detail></soap:Fault>",
        f.first.code(),
        f.second.code(),
        escape(&f.detail)
    )
}

fn soap(body: &str) -> String {
    format!(
        r#"{XML_DECL}<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

fn xml_result(first: u16, second: u16, count: usize, inner: &str) -> String {
    format!(
        r#"{XML_DECL}<result firstcode="{first}" secondcode="{second}" count="{count}">{inner}</result>"#
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters even escaped; values are validated
            // on input, so this only guards text the engine made.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

fn xml_fields(fields: &[Field]) -> String {
    let mut out = String::new();
    for f in fields {
        match f {
            Field::Value(name, v) => {
                out.push_str(&format!("<{name}>{}</{name}>", escape(&value_text(v))));
            }
            Field::JsonObject(..) => {}
            Field::List {
                xml_wrapper,
                xml_item,
                items,
                ..
            } => {
                let inner: String = items
                    .iter()
                    .map(|i| format!("<{xml_item}>{}</{xml_item}>", xml_fields(i)))
                    .collect();
                match xml_wrapper {
                    Some(w) => out.push_str(&format!("<{w}>{inner}</{w}>")),
                    None => out.push_str(&inner),
                }
            }
        }
    }
    out
}

/// A record's fields as a JSON object, written straight out: no tree of cloned values in between
/// (an answer is rendered for every payment, and the tree cost more than the payment's JSON).
struct JsonObject<'a>(&'a [Field]);

impl Serialize for JsonObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for f in self.0 {
            match f {
                Field::Value(name, Value::Text(t)) => map.serialize_entry(name, t)?,
                Field::Value(name, Value::Number(n)) => map.serialize_entry(name, n)?,
                Field::Value(name, Value::Bool(b)) => map.serialize_entry(name, b)?,
                Field::JsonObject(name, inner) => map.serialize_entry(name, &JsonObject(inner))?,
                Field::List { json, items, .. } => map.serialize_entry(json, &JsonList(items))?,
            }
        }
        map.end()
    }
}

/// Records as a JSON array of objects.
struct JsonList<'a>(&'a [Vec<Field>]);

impl Serialize for JsonList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|item| JsonObject(item)))
    }
}

/// Services with a root name (`{"charge":{…}}`); payrequest and the One Click answers are bare,
/// as the spec and seed 001 show them.
fn json_body(name: &str, body: &Body) -> String {
    let fields = body.fields();
    let json = match (body, fields.as_slice()) {
        (Body::Tokens(_), [Field::List { items, .. }]) => serde_json::to_string(&JsonList(items)),
        (Body::PayRequest(_) | Body::TokenRemoved(_), _) => {
            serde_json::to_string(&JsonObject(&fields))
        }
        _ => serde_json::to_string(&std::collections::BTreeMap::from([(
            name,
            JsonObject(&fields),
        )])),
    };
    // Strings, numbers and booleans under string keys: nothing here can fail to serialize.
    json.unwrap_or_default()
}

/// One `name:value;` line per record: a record's own values, then the lines of its lists (an
/// order's operations follow it). A field holding `;`, `"` or a line break is quoted the CSV
/// way, so a real CSV reader with `;` as delimiter reads every line back.
fn csv_body(fields: &[Field]) -> String {
    let mut out = String::new();
    csv_record(fields, &mut out);
    out
}

fn csv_record(fields: &[Field], out: &mut String) {
    let mut line = String::new();
    for f in fields {
        if let Field::Value(name, v) = f {
            let cell = format!("{name}:{}", value_text(v));
            if cell.contains([';', '"', '\r', '\n']) {
                line.push('"');
                line.push_str(&cell.replace('"', "\"\""));
                line.push('"');
            } else {
                line.push_str(&cell);
            }
            line.push(';');
        }
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    for f in fields {
        if let Field::List { items, .. } = f {
            for item in items {
                csv_record(item, out);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
