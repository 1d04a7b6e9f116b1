//! Key-range arithmetic shared by the engines and the overlay: where a prefix's keys end. Owns no
//! data.

use std::ops::Bound;

/// The least key greater than every key that starts with `prefix`, or `None` when there is none
/// (the prefix is empty or all `0xFF`, so its keys run to the end of the key space).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The bounds of every key starting with `prefix`, given `prefix_end(prefix)`.
pub(crate) fn prefix_bounds<'a>(
    prefix: &'a [u8],
    end: Option<&'a [u8]>,
) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (
        Bound::Included(prefix),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
    }

    #[test]
    fn has_no_end_for_empty_or_all_ff() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
