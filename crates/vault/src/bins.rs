//! The issuing-bank table the vault ships (`bins.txt`: a BIN prefix, a tab, the bank's name), for
//! the `bank` field of a listing. Unknown BINs give an empty name. Owns only this lookup.

use std::sync::OnceLock;

static TABLE: &str = include_str!("bins.txt");

/// (prefix, bank), longest prefixes first so the most specific entry wins.
fn table() -> &'static [(&'static str, &'static str)] {
    static PARSED: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut rows: Vec<_> = TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_once('\t'))
            .map(|(p, b)| (p.trim(), b.trim()))
            .collect();
        rows.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        rows
    })
}

/// The issuing bank of a card by its BIN; empty when the table does not know it.
pub fn bank_of(bin: card::Bin) -> &'static str {
    table()
        .iter()
        .find(|(p, _)| bin.as_str().starts_with(p))
        .map_or("", |(_, b)| b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown() {
        assert_eq!(
            super::bank_of(card::Bin::parse("462710").unwrap()),
            "CJSC ALFA-BANK"
        );
        assert_eq!(super::bank_of(card::Bin::parse("999999").unwrap()), "");
    }
}
