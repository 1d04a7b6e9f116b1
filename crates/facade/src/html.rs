//! What the facade's two sets of HTML screens — the shopper's payment pages and the merchant's
//! cabinet — share: the one escaping function, the page language, and amounts as a person reads
//! them.
//!
//! Owns those three and nothing else: each set keeps its own words, layout and headers. Must
//! never let a value reach markup unescaped.

/// `s` safe inside element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// Russian.
    Ru,
    /// English.
    En,
}

impl Lang {
    /// The `lang` attribute.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The decimal separator of amounts.
    pub(crate) fn decimal(self) -> char {
        match self {
            Lang::Ru => ',',
            Lang::En => '.',
        }
    }
}

/// `minor` units as a number with two decimals in the language's way (what an amount field
/// shows and takes back).
pub(crate) fn decimal(lang: Lang, minor: u64) -> String {
    format!("{}{}{:02}", minor / 100, lang.decimal(), minor % 100)
}

/// `minor` units as a person reads them, with the currency's sign where it has one.
pub(crate) fn amount(lang: Lang, minor: u64, currency: u16) -> String {
    let sign = match currency {
        643 => "₽",
        840 => "$",
        978 => "€",
        826 => "£",
        _ => assist::values::Currency::from_numeric(currency).map_or("", |c| c.alpha()),
    };
    format!("{} {sign}", decimal(lang, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn amounts_read_as_the_language_writes_them() {
        assert_eq!(amount(Lang::Ru, 12_005, 643), "120,05 ₽");
        assert_eq!(amount(Lang::En, 100, 933), "1.00 BYN");
        assert_eq!(decimal(Lang::Ru, 123_405), "1234,05");
        assert_eq!(decimal(Lang::En, 7), "0.07");
    }
}
