//! Listing a bucket: keys in UTF-8 byte order under a prefix, rolled up into common prefixes
//! at a delimiter, a page at a time.

use kindling_model::objects::ObjectRecord;
use kindling_store::objects::{KeyRange, KeyStart, prefix_end};

use crate::error::{ObjectError, Result};
use crate::{Inner, Objects};

/// Most entries (keys and common prefixes) one page holds.
pub const MAX_KEYS: usize = 1000;

/// Where a listing starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ListStart {
    #[default]
    First,
    /// After this key (`marker`, `start-after`). With a delimiter, a key inside a common
    /// prefix skips the whole prefix (it was reported as one entry).
    After(String),
    /// At this position (a continuation token's).
    At(Vec<u8>),
}

/// A ListObjects request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start: ListStart,
    /// Capped at [`MAX_KEYS`].
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectRecord>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// Where the next page starts (for a continuation token), when truncated.
    pub next: Option<Vec<u8>>,
    /// The last key or common prefix of this page (ListObjects v1's `NextMarker`).
    pub last: Option<String>,
}

/// The common prefix `key` rolls up into, if any.
fn rollup<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    Some(&key[..prefix.len() + at + delimiter.len()])
}

/// The first position of a listing.
fn start_position(query: &ListQuery) -> Option<Vec<u8>> {
    match &query.start {
        ListStart::First => Some(query.prefix.as_bytes().to_vec()),
        ListStart::At(pos) => Some(pos.clone()),
        ListStart::After(marker) => {
            match rollup(marker, &query.prefix, query.delimiter.as_deref()) {
                Some(cp) => prefix_end(cp.as_bytes()),
                None => {
                    let mut pos = marker.as_bytes().to_vec();
                    pos.push(0);
                    Some(pos)
                }
            }
        }
    }
}

fn list(inner: &Inner, bucket: &str, query: &ListQuery) -> Result<ListPage> {
    if inner.store.bucket(bucket)?.is_none() {
        return Err(ObjectError::NoSuchBucket {
            bucket: bucket.to_string(),
        });
    }
    let max = query.max_keys.min(MAX_KEYS);
    let mut page = ListPage::default();
    let Some(mut pos) = start_position(query) else {
        return Ok(page);
    };
    if max == 0 {
        return Ok(page);
    }
    let prefix = query.prefix.as_bytes();
    let mut entries = 0usize;
    'scan: loop {
        let want = max - entries + 1;
        let batch = inner.store.list_objects(
            bucket,
            KeyRange {
                prefix,
                start: KeyStart::At(&pos),
            },
            want,
        )?;
        let exhausted = batch.len() < want;
        for obj in batch {
            if entries == max {
                page.truncated = true;
                page.next = Some(pos);
                break 'scan;
            }
            entries += 1;
            if let Some(cp) = rollup(&obj.key, &query.prefix, query.delimiter.as_deref()) {
                let cp = cp.to_string();
                page.last = Some(cp.clone());
                let next = prefix_end(cp.as_bytes());
                page.common_prefixes.push(cp);
                match next {
                    Some(next) => {
                        pos = next;
                        continue 'scan;
                    }
                    None => break 'scan,
                }
            }
            pos = obj.key.as_bytes().to_vec();
            pos.push(0);
            page.last = Some(obj.key.clone());
            page.objects.push(obj);
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}

impl Objects {
    /// One page of a bucket's keys.
    pub async fn list_objects(&self, bucket: &str, query: ListQuery) -> Result<ListPage> {
        let bucket = bucket.to_string();
        self.blocking(move |inner| list(inner, &bucket, &query))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollups_end_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(rollup("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(rollup("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(rollup("a/b", "a/", Some("/")), None);
        assert_eq!(rollup("x--y--z", "", Some("--")), Some("x--"));
        assert_eq!(rollup("a/b", "", None), None);
        assert_eq!(rollup("a/b", "", Some("")), None);
        assert_eq!(rollup("b/x", "a", Some("/")), None);
    }
}
