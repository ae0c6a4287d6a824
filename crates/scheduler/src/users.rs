//! A user (and group) id of its own for every execution environment, from a configured range.
//!
//! Environments share the host's network in the default isolation, so the owner of a socket
//! is what tells them apart: the Runtime API serves only its environment's uid. An id goes back
//! to the pool when its environment is gone, to the end of the line: the oldest free id is
//! handed out next, so an id is reused as late as possible.
//!
//! Several Kindling processes on one host may use the same range: with a lock directory,
//! an id is also held as an exclusive `flock` on `<lock_dir>/<id>` for as long as it is in
//! use, and ids locked by another process are skipped. The kernel drops the locks of a process
//! that dies, and Kindling's environments die with it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The ids environments may run as: `first .. first + count`, each used as both uid and gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRange {
    pub first: u32,
    pub count: u32,
    /// Directory of the per-id lock files shared by every Kindling process of the host
    /// (created if missing); `None`: ids are only unique within this process.
    pub lock_dir: Option<PathBuf>,
}

impl UserRange {
    /// Checks that the range holds only unprivileged ids: not 0 (root), not 65534
    /// (`nobody`, the overflow id), and below `u32::MAX` (-1, "unchanged" to `setresuid`).
    pub fn validate(&self) -> Result<(), String> {
        let last = self
            .first
            .checked_add(self.count.saturating_sub(1))
            .filter(|last| *last < u32::MAX);
        match last {
            _ if self.count == 0 => Err("the range of environment user ids is empty".into()),
            None => Err(format!(
                "environment user ids {}+{} go past {}",
                self.first,
                self.count,
                u32::MAX - 1
            )),
            Some(last) if self.first == 0 || (self.first..=last).contains(&65_534) => Err(format!(
                "environment user ids {}..={last} must not include 0 or 65534 (nobody)",
                self.first
            )),
            Some(_) => Ok(()),
        }
    }
}

/// Why no id could be leased.
#[derive(Debug, thiserror::Error)]
pub enum UserPoolError {
    /// The range is not usable (see [`UserRange::validate`]).
    #[error("{0}")]
    InvalidRange(String),
    /// Every id of the range is in use, here or by another Kindling process.
    #[error("all {count} environment user ids from {first} are in use")]
    Exhausted { first: u32, count: u32 },
    /// The lock directory or an id's lock file could not be used.
    #[error("{what} {}: {source}", path.display())]
    Lock {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Hands out ids of a [`UserRange`]. Cheap to clone (clones share the ids).
#[derive(Debug, Clone)]
pub(crate) struct UserPool {
    range: UserRange,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Ids below `first + fresh` have been handed out at least once.
    fresh: u32,
    /// Given back, oldest first.
    free: VecDeque<u32>,
}

impl State {
    fn next_candidate(&mut self, range: &UserRange) -> Option<u32> {
        if self.fresh < range.count {
            self.fresh += 1;
            return Some(range.first + self.fresh - 1);
        }
        self.free.pop_front()
    }
}

/// An id in use by one environment; dropping it gives the id back.
#[derive(Debug)]
pub(crate) struct UserLease {
    id: u32,
    /// Holds the host-wide lock, if the range has a lock directory.
    _lock: Option<File>,
    state: Arc<Mutex<State>>,
}

impl UserLease {
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Drop for UserLease {
    fn drop(&mut self) {
        lock(&self.state).free.push_back(self.id);
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UserPool {
    pub fn new(range: UserRange) -> Result<Self, UserPoolError> {
        range.validate().map_err(UserPoolError::InvalidRange)?;
        if let Some(dir) = &range.lock_dir {
            std::fs::create_dir_all(dir).map_err(|source| UserPoolError::Lock {
                what: "creating the user id lock directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Self {
            range,
            state: Arc::default(),
        })
    }

    /// A free id, or an error when every id of the range is in use (here or, with a lock
    /// directory, by another process). Blocking (it opens and locks files): call it on the
    /// blocking pool.
    pub fn lease(&self) -> Result<UserLease, UserPoolError> {
        let mut state = lock(&self.state);
        // Ids another process holds go to the back of the line and are tried again later.
        let mut busy = Vec::new();
        let mut result = Err(UserPoolError::Exhausted {
            first: self.range.first,
            count: self.range.count,
        });
        for _ in 0..self.range.count {
            let Some(id) = state.next_candidate(&self.range) else {
                break;
            };
            match self.range.lock_dir.as_deref().map(|dir| try_lock(dir, id)) {
                None => {
                    result = Ok((id, None));
                    break;
                }
                Some(Ok(Some(file))) => {
                    result = Ok((id, Some(file)));
                    break;
                }
                Some(Ok(None)) => busy.push(id),
                Some(Err(e)) => {
                    busy.push(id);
                    result = Err(e);
                    break;
                }
            }
        }
        state.free.extend(busy);
        drop(state);
        result.map(|(id, lock)| UserLease {
            id,
            _lock: lock,
            state: Arc::clone(&self.state),
        })
    }
}

/// The lock file of `id`, locked; `None` when another process holds it.
fn try_lock(dir: &Path, id: u32) -> Result<Option<File>, UserPoolError> {
    let path = dir.join(id.to_string());
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(source) => {
            return Err(UserPoolError::Lock {
                what: "opening",
                path,
                source,
            });
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(UserPoolError::Lock {
            what: "locking",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u32, count: u32) -> UserRange {
        UserRange {
            first,
            count,
            lock_dir: None,
        }
    }

    #[test]
    fn ranges_hold_only_unprivileged_ids() {
        range(100_000, 65_536).validate().unwrap();
        range(1000, 1).validate().unwrap();
        range(65_535, 10).validate().unwrap();
        range(u32::MAX - 1, 1).validate().unwrap();
        for bad in [
            range(0, 10),
            range(100_000, 0),
            range(60_000, 10_000),
            range(u32::MAX, 1),
            range(u32::MAX - 1, 2),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_unique_and_reused_oldest_first() {
        let pool = UserPool::new(range(100_000, 3)).unwrap();
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_eq!((a.id(), b.id()), (100_000, 100_001));
        drop(b);
        drop(a);
        // A fresh id first, then the oldest returned one.
        assert_eq!(pool.lease().unwrap().id(), 100_002);
        let held: Vec<_> = (0..3).map(|_| pool.lease().unwrap()).collect();
        let ids: Vec<u32> = held.iter().map(UserLease::id).collect();
        assert_eq!(ids, [100_001, 100_000, 100_002]);
        assert!(pool.lease().is_err(), "all in use");
        drop(held);
        assert!(pool.lease().is_ok());
    }

    #[test]
    fn processes_sharing_a_lock_directory_never_share_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let shared = UserRange {
            lock_dir: Some(dir.path().join("locks")),
            ..range(200_000, 3)
        };
        // Two pools stand for two Kindling processes (flock locks belong to open files).
        let one = UserPool::new(shared.clone()).unwrap();
        let two = UserPool::new(shared).unwrap();
        let a = one.lease().unwrap();
        let b = two.lease().unwrap();
        let c = two.lease().unwrap();
        assert_eq!((a.id(), b.id(), c.id()), (200_000, 200_001, 200_002));
        assert!(
            one.lease().is_err(),
            "the others are held by the other pool"
        );
        drop(b);
        assert_eq!(one.lease().unwrap().id(), 200_001);
        // An id skipped while busy is tried again once free.
        drop(c);
        assert_eq!(one.lease().unwrap().id(), 200_002);
    }
}
