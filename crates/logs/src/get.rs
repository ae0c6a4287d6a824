//! GetLogEvents' pages and tokens. A token names a place in one file of the stream: the file's
//! identity ([`FileId`]: device, inode, birth time) and the byte offset of a line's start in
//! it, never a line number of whatever file has the stream's name now. An environment's stream
//! rotates (its full file becomes `<name>-earlier`, a new file takes the name): a forward
//! token taken before the rotation names the file now called `<name>-earlier`, so the next
//! page goes on there and then reads the new file from its start — every line once, in order.
//! A backward token goes on in the file it names, wherever it is now. Both files are the one
//! stream `<name>` (`crate::streams`): a page from its start begins in `<name>-earlier`, and
//! the newest page reaches back into it.
//!
//! Tokens are opaque to clients: `f/` or `b/`, then digits (a format version, the place, and a
//! check of them). A token of another format (an older Kindling's line numbers, anything
//! made up) is refused (`InvalidParameterException`); a token whose file is gone (two
//! rotations since) goes on from the oldest file the stream still has.

use std::collections::VecDeque;

use kindling_scheduler::layout::fnv64;

use crate::error::LogsError;
use crate::stream::{Event, FileId, OpenFile, Place};
use crate::streams::StreamFiles;

/// The token format written now (the first digit after `f/` or `b/`).
const VERSION: char = '2';
/// Digits of a token after the direction: the version, four 20-digit numbers, the check.
const TOKEN_DIGITS: usize = 1 + 4 * 20 + CHECK_DIGITS;
const CHECK_DIGITS: usize = 6;

fn check(body: &str) -> u64 {
    fnv64(body.as_bytes()) % 10u64.pow(CHECK_DIGITS as u32)
}

/// The token of `place` (`f/…` to read on forward from it, `b/…` backward).
pub(crate) fn token(forward: bool, place: Place) -> String {
    let body = format!(
        "{VERSION}{:020}{:020}{:020}{:020}",
        place.file.dev, place.file.ino, place.file.born, place.offset
    );
    let check = check(&body);
    format!("{}/{body}{check:06}", if forward { 'f' } else { 'b' })
}

/// A token [`token`] wrote → (forward, place); `None` for anything else.
pub(crate) fn parse_token(t: &str) -> Option<(bool, Place)> {
    let (dir, digits) = t.split_once('/')?;
    let forward = match dir {
        "f" => true,
        "b" => false,
        _ => return None,
    };
    if digits.len() != TOKEN_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !digits.starts_with(VERSION)
    {
        return None;
    }
    let (body, sum) = digits.split_at(TOKEN_DIGITS - CHECK_DIGITS);
    if sum.parse::<u64>().ok()? != check(body) {
        return None;
    }
    let number = |i: usize| body.get(1 + 20 * i..1 + 20 * (i + 1))?.parse::<u64>().ok();
    Some((
        forward,
        Place {
            file: FileId {
                dev: number(0)?,
                ino: number(1)?,
                born: number(2)?,
            },
            offset: number(3)?,
        },
    ))
}

/// What a page is asked for.
pub(crate) struct Request {
    pub limit: usize,
    pub max_bytes: usize,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Used without a token (a token says its direction).
    pub start_from_head: bool,
    pub token: Option<(bool, Place)>,
}

/// A page and the tokens that go on from it.
pub(crate) struct Page {
    pub events: Vec<Event>,
    pub forward: Place,
    pub backward: Place,
}

/// One event of a page with where it is.
struct Found {
    event: Event,
    file: FileId,
    start: u64,
    end: u64,
}

fn size(e: &Event) -> usize {
    e.message.len() + 26
}

/// The file a token's place is in: the stream's own, or the one a rotation set aside (`None`:
/// neither). A place that is not a line's start is no token of ours.
fn named<'a>(
    live: &'a OpenFile,
    earlier: Option<&'a OpenFile>,
    place: &Place,
) -> Result<Option<&'a OpenFile>, LogsError> {
    let file = if place.file == live.id {
        live
    } else {
        match earlier {
            Some(e) if e.id == place.file => e,
            _ => return Ok(None),
        }
    };
    if file.at_line_start(place.offset)? {
        Ok(Some(file))
    } else {
        Err(crate::ops::bad_token())
    }
}

/// Reads one page of the stream `stream` (`None` if it has no file). Without a token a
/// forward page starts at the stream's first line (its earlier file's, if it has one), a
/// backward page ends at its last; a backward page reaches back from the stream's own file
/// into its earlier one.
pub(crate) fn page(stream: &StreamFiles, req: &Request) -> Result<Option<Page>, LogsError> {
    let mut files = stream.open()?;
    let Some(live) = files.pop() else {
        return Ok(None);
    };
    let earlier = files.pop();
    let in_range = |e: &Event| {
        req.start_time.is_none_or(|s| e.timestamp >= s)
            && req.end_time.is_none_or(|t| e.timestamp < t)
    };
    let named = |place: &Place| named(&live, earlier.as_ref(), place);
    let forward = req.token.map_or(req.start_from_head, |(f, _)| f);
    if forward {
        let from_start = || earlier.iter().map(|e| (e, 0)).chain([(&live, 0)]).collect();
        let segments: Vec<(&OpenFile, u64)> = match &req.token {
            None => from_start(),
            Some((_, place)) => match named(place)? {
                Some(file) if file.id == live.id => vec![(&live, place.offset)],
                Some(file) => vec![(file, place.offset), (&live, 0)],
                // Gone (rotated out since): from the oldest file left.
                None => from_start(),
            },
        };
        let start = Place {
            file: segments[0].0.id,
            offset: segments[0].1,
        };
        let mut page: Vec<Found> = Vec::new();
        let mut bytes = 0;
        let mut next = start;
        for (file, from) in segments {
            let mut full = false;
            let end = file.each_event_at(from, |e, start, end| {
                if !in_range(&e) {
                    return true;
                }
                if page.len() == req.limit || bytes + size(&e) > req.max_bytes {
                    full = true;
                    return false;
                }
                bytes += size(&e);
                page.push(Found {
                    event: e,
                    file: file.id,
                    start,
                    end,
                });
                true
            })?;
            next = Place {
                file: file.id,
                offset: end,
            };
            if full {
                break;
            }
        }
        let backward = page.first().map_or(start, |f| Place {
            file: f.file,
            offset: f.start,
        });
        return Ok(Some(Page {
            events: page.into_iter().map(|f| f.event).collect(),
            forward: next,
            backward,
        }));
    }
    // Backward: the last events before the token (or the stream's end) that fit, the longest
    // suffix; before a place in the stream's own file come its earlier file's lines.
    let segments: Vec<(&OpenFile, Option<u64>)> = match &req.token {
        None => earlier
            .iter()
            .map(|e| (e, None))
            .chain([(&live, None)])
            .collect(),
        Some((_, place)) => match named(place)? {
            Some(file) if file.id == live.id => earlier
                .iter()
                .map(|e| (e, None))
                .chain([(&live, Some(place.offset))])
                .collect(),
            Some(file) => vec![(file, Some(place.offset))],
            // The lines before it are gone with its file: the stream's start.
            None => {
                return Ok(Some(Page {
                    events: Vec::new(),
                    forward: *place,
                    backward: *place,
                }));
            }
        },
    };
    // The newest file first; an older one only while the page has room (a stream's earlier
    // file is read only when its own file's lines do not fill the page).
    let mut page: VecDeque<Found> = VecDeque::new();
    let mut bytes = 0;
    let mut end = None;
    for (file, before) in segments.into_iter().rev() {
        let (room, room_bytes) = (req.limit - page.len(), req.max_bytes.saturating_sub(bytes));
        let mut part: VecDeque<Found> = VecDeque::new();
        let mut part_bytes = 0;
        let mut full = false;
        let stop = file.each_event_at(0, |e, start, end| {
            if before.is_some_and(|b| start >= b) {
                return false;
            }
            if in_range(&e) {
                part_bytes += size(&e);
                part.push_back(Found {
                    event: e,
                    file: file.id,
                    start,
                    end,
                });
                while part.len() > room || part_bytes > room_bytes {
                    if let Some(old) = part.pop_front() {
                        part_bytes -= size(&old.event);
                        full = true;
                    }
                }
            }
            true
        })?;
        end.get_or_insert(Place {
            file: file.id,
            offset: before.unwrap_or(stop),
        });
        bytes += part_bytes;
        for f in part.into_iter().rev() {
            page.push_front(f);
        }
        if full || page.len() == req.limit {
            break;
        }
    }
    let end = end.unwrap_or(Place {
        file: live.id,
        offset: 0,
    });
    let forward = match (&req.token, page.back()) {
        (None, _) | (Some(_), None) => end,
        (Some(_), Some(last)) => Place {
            file: last.file,
            offset: last.end,
        },
    };
    let backward = page.front().map_or(end, |f| Place {
        file: f.file,
        offset: f.start,
    });
    Ok(Some(Page {
        events: page.into_iter().map(|f| f.event).collect(),
        forward,
        backward,
    }))
}

#[cfg(test)]
mod tests;
