//! FilterLogEvents' search, within a work budget. A page is the first matches (by time, stream,
//! line) after a position; finding them means reading every stream of the group. One request
//! reads at most [`SCAN_BUDGET`] bytes of stream lines: a search that needs more is paused
//! (where it stopped, with what it matched so far, kept in memory) and the request answers an
//! empty page whose `nextToken` resumes it, as CloudWatch answers a long search with partial
//! pages. The page is complete once every stream was read, so no event is lost or repeated.
//! A token whose paused search is gone (too many paused at once, another node, a repeated
//! request) restarts that page from its position: more work, the same answer. The token counts
//! the budgets the page has taken so far (`rounds`): a restart reads one budget more than that,
//! so it gets further than the search had got, and pagination ends even when every paused
//! search is pushed out before its next request. The restart's budget is capped at
//! [`MAX_RESTART_ROUNDS`] budgets (a forged count buys no more): a page that needs more than
//! that while its paused search is pushed out every time still never completes.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::pattern::Pattern;
use crate::stream::{self, FileId, Place, Position};
use crate::streams::StreamFiles;

/// An event's place in a search's order: time, stream, and the line's place in the stream
/// (its file's identity and offset: the same key before and after a rotation renames the
/// file, and a stream's earlier file's lines before its own file's).
pub(crate) type Key = (i64, String, Place);

/// Bytes of stream lines one request reads before it answers with a partial page.
pub const SCAN_BUDGET: u64 = 64 * 1024 * 1024;
/// Searches paused at once; beyond, the oldest is dropped (its token restarts its page).
const MAX_PAUSED: usize = 16;
/// Most budgets a restarted page reads in one request.
pub const MAX_RESTART_ROUNDS: u64 = 16;

/// The searches paused between requests.
pub struct Searches {
    budget: u64,
    /// Searches paused at once ([`MAX_PAUSED`]; tests lower it).
    capacity: usize,
    next_id: AtomicU64,
    paused: Mutex<VecDeque<(u64, Progress)>>,
}

impl Default for Searches {
    fn default() -> Self {
        Self::with_budget(SCAN_BUDGET)
    }
}

impl Searches {
    /// Searches that read at most `budget` bytes per request.
    pub fn with_budget(budget: u64) -> Self {
        Self {
            budget: budget.max(1),
            capacity: MAX_PAUSED,
            next_id: AtomicU64::new(1),
            paused: Mutex::new(VecDeque::new()),
        }
    }

    /// The same, keeping at most `capacity` searches paused.
    #[cfg(test)]
    pub(crate) fn with_capacity(budget: u64, capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::with_budget(budget)
        }
    }

    /// The ids of the searches paused, oldest first.
    #[cfg(test)]
    pub(crate) fn paused_ids(&self) -> Vec<u64> {
        self.paused().iter().map(|(id, _)| *id).collect()
    }

    pub(crate) fn budget(&self) -> u64 {
        self.budget
    }

    /// The budget of a page that restarts after `rounds` budgets (a token's count: 0 for a
    /// new search) and how many budgets it will have taken once it has read it.
    pub(crate) fn restart_budget(&self, rounds: u64) -> (u64, u64) {
        let rounds = rounds.saturating_add(1).min(MAX_RESTART_ROUNDS);
        (self.budget.saturating_mul(rounds), rounds)
    }

    fn paused(&self) -> MutexGuard<'_, VecDeque<(u64, Progress)>> {
        match self.paused.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Takes the paused search `id` if it is the same query (compared whole) from the same
    /// position after the same number of rounds.
    pub(crate) fn resume(
        &self,
        id: u64,
        query: &QueryId,
        after: &Option<Key>,
        rounds: u64,
    ) -> Option<Progress> {
        let mut paused = self.paused();
        let i = paused.iter().position(|(pid, p)| {
            *pid == id && p.query == *query && p.after == *after && p.rounds == rounds
        })?;
        paused.remove(i).map(|(_, p)| p)
    }

    /// Keeps a search for a later request; its id.
    pub(crate) fn pause(&self, progress: Progress) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut paused = self.paused();
        while paused.len() >= self.capacity {
            paused.pop_front();
        }
        paused.push_back((id, progress));
        id
    }
}

/// What a request searches for.
pub(crate) struct Query<'a> {
    pub names: Option<&'a [String]>,
    pub prefix: Option<&'a str>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub pattern: &'a Pattern,
    /// Most events on a page.
    pub limit: usize,
    /// Most bytes of events on a page (as the answer counts them).
    pub max_bytes: usize,
}

/// A request's identity: the group and every parameter but the token. A token resumes only a
/// search of an equal query (the whole query is kept and compared, not a hash of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueryId {
    pub group: String,
    pub names: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub pattern: Option<String>,
    pub limit: usize,
}

/// A page being gathered: the matches kept so far, the stream being read and where.
pub(crate) struct Progress {
    /// The request's identity: a token resumes only its own search.
    query: QueryId,
    /// The page starts after this event.
    pub after: Option<Key>,
    /// Budgets this page has taken so far (at least this many bytes were read from its
    /// start): the count its token carries.
    pub rounds: u64,
    /// The stream being read, the file it was in (a position is only good in its own file,
    /// whatever its name is now) and where in it.
    at: Option<(String, FileId, Position)>,
    /// The first matches, their bytes as the answer counts them, the smallest key dropped
    /// (later matches past it cannot be on this page), whether any was.
    pub matched: BTreeMap<Key, String>,
    bytes: usize,
    beyond: Option<Key>,
    pub more: bool,
}

impl Progress {
    pub(crate) fn new(query: QueryId, after: Option<Key>) -> Self {
        Self {
            query,
            after,
            rounds: 0,
            at: None,
            matched: BTreeMap::new(),
            bytes: 0,
            beyond: None,
            more: false,
        }
    }

    /// Counts in one event of `stream`.
    fn consider(&mut self, q: &Query<'_>, stream: &str, place: Place, e: stream::Event) {
        if q.start.is_some_and(|s| e.timestamp < s) || q.end.is_some_and(|t| e.timestamp > t) {
            return;
        }
        if let Some((ts, s, p)) = &self.after
            && (e.timestamp, stream, place) <= (*ts, s.as_str(), *p)
        {
            return;
        }
        if !q.pattern.matches(&e.message) {
            return;
        }
        let key = (e.timestamp, stream.to_string(), place);
        if self.beyond.as_ref().is_some_and(|b| key > *b) {
            return;
        }
        self.bytes += e.message.len() + 26;
        self.matched.insert(key, e.message);
        // Only the first events (by time, stream, position) that fit the answer are kept: a
        // page, not the whole group.
        while self.matched.len() > q.limit || self.bytes > q.max_bytes {
            let Some((k, m)) = self.matched.pop_last() else {
                break;
            };
            self.bytes -= m.len() + 26;
            self.beyond = Some(k);
            self.more = true;
        }
    }
}

/// Continues the search over `streams` (every stream of the group, sorted by name) until every
/// one was read (true) or `budget` bytes were (false: paused where it stopped). `stale` says
/// which open stream files cannot hold a match (a stream all of whose existing files are is
/// skipped unread). Returns also the streams read to their end by this call.
pub(crate) fn run(
    q: &Query<'_>,
    p: &mut Progress,
    streams: &[StreamFiles],
    budget: u64,
    stale: impl Fn(&File) -> bool,
) -> io::Result<(bool, Vec<String>)> {
    let (first, mut from) = match p.at.take() {
        None => (0, None),
        Some((name, id, pos)) => {
            let i = streams.partition_point(|s| s.name < name);
            let same = streams.get(i).is_some_and(|s| s.name == name);
            (i, same.then_some((id, pos)))
        }
    };
    let mut read = 0u64;
    let mut searched = Vec::new();
    for s in streams.get(first..).unwrap_or_default() {
        let name = &s.name;
        let resumed = from.take();
        if q.names.is_some_and(|n| !n.contains(name))
            || q.prefix.is_some_and(|pre| !name.starts_with(pre))
        {
            continue;
        }
        // Oldest first: the stream's earlier file (if any), then its own. Only the files
        // that exist count: an environment's stream has an earlier file's name whether or
        // not it has rotated.
        let files = s.open()?;
        if resumed.is_none() && files.iter().all(|f| stale(&f.file)) {
            continue;
        }
        // A paused position goes on in the file it was taken in, wherever a rotation has
        // renamed it, then in the files after it. A file that is gone (rotated out) was older
        // than every file left: they are read from their start.
        let (skip, pos) = match resumed {
            Some((id, pos)) => files
                .iter()
                .position(|f| f.id == id)
                .map_or((0, Position::default()), |k| (k, pos)),
            None => (0, Position::default()),
        };
        for (k, file) in files.iter().enumerate().skip(skip) {
            let start = if k == skip { pos } else { Position::default() };
            let mut offset = start.offset;
            let mut stopped = false;
            let end = stream::each_event_in(&file.file, start, |e, size| {
                let place = Place {
                    file: file.id,
                    offset,
                };
                offset += size;
                read += size;
                p.consider(q, name, place, e);
                stopped = read >= budget;
                !stopped
            })?;
            if stopped {
                p.at = Some((name.clone(), file.id, end));
                return Ok((false, searched));
            }
        }
        searched.push(name.clone());
    }
    Ok((true, searched))
}
