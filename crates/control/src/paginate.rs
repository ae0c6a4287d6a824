//! Marker/MaxItems pagination over lists kept in key order.

use crate::error::{ControlError, Result};

/// One page and the marker of the next, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// Validates `MaxItems` against `1..=max` and returns the page size (`default` when absent).
pub fn page_size(max_items: Option<i64>, default: usize, max: usize) -> Result<usize> {
    match max_items {
        None => Ok(default),
        Some(n) if n < 1 => Err(ControlError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) if n as u64 > max as u64 => Err(ControlError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
        Some(n) => Ok(n as usize),
    }
}

/// Pages `items`, which must be sorted by `key` ascending: the page starts at the first item
/// whose key is greater than `marker` (so a deleted marker item is harmless). The next marker is
/// the key of the page's last item, when more items follow.
pub fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    marker: Option<&str>,
    size: usize,
) -> Page<T> {
    let total = items.len();
    let start = marker.map_or(0, |m| {
        items
            .iter()
            .position(|i| key(i).as_str() > m)
            .unwrap_or(total)
    });
    let items: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next_marker = (start + items.len() < total)
        .then(|| items.last().map(&key))
        .flatten();
    Page { items, next_marker }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_by_key() {
        let items = vec!["a", "b", "c"];
        let p1 = paginate(items.clone(), |s| s.to_string(), None, 2);
        assert_eq!(p1.items, vec!["a", "b"]);
        assert_eq!(p1.next_marker.as_deref(), Some("b"));
        let p2 = paginate(items, |s| s.to_string(), Some("b"), 2);
        assert_eq!(p2.items, vec!["c"]);
        assert_eq!(p2.next_marker, None);
        assert!(page_size(Some(0), 50, 10_000).is_err());
        assert_eq!(page_size(None, 50, 10_000).unwrap(), 50);
    }
}
