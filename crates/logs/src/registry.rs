//! What CloudWatch Logs knows of groups beyond their streams: groups made with
//! `CreateLogGroup` (which exist before any stream) and retention policies. Kept in memory and
//! in one JSON file (`<log root>/.registry.json`), replaced atomically on every change (write,
//! fsync, rename, fsync of the directory). Every method that touches the file blocks: call it
//! off the async runtime.
//!
//! Readers (every lookup of a group's record or retention) never wait for the disk: a change
//! is made on a copy and written to the file under a writer lock of its own, and the new
//! records are published to readers (a short swap under the read-write lock) only once the
//! file holds them. So writers reach the file in the order their changes are published, and a
//! write that fails before its rename changes nothing. Once the rename succeeded the file holds
//! the change (it is there after a restart), so it is published even if the directory's fsync
//! then fails: that failure is logged as the change's durability unknown (a crash before the
//! directory reaches the disk could still lose it), not returned as a failed change.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use kindling_scheduler::RetentionOverrides;
use serde::{Deserialize, Serialize};

/// One group's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRecord {
    /// Milliseconds since the epoch.
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<u32>,
}

/// Groups' records by name.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    /// Held by a change from its copy of the records until they are published: one change at
    /// a time, each on top of the one before, written in that order.
    writer: Mutex<()>,
    /// What readers see: the records the file holds.
    groups: RwLock<BTreeMap<String, GroupRecord>>,
    /// Tests: runs after the new file is synced, before it replaces the old one.
    #[cfg(test)]
    before_rename: Option<TestHook>,
    /// Tests: runs after the rename, in place of the directory's fsync.
    #[cfg(test)]
    dir_sync: Option<TestHook>,
}

#[cfg(test)]
struct TestHook(Box<dyn Fn() -> io::Result<()> + Send + Sync>);

#[cfg(test)]
impl std::fmt::Debug for TestHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestHook")
    }
}

impl Registry {
    /// Reads the file (a missing file is an empty registry).
    pub fn open(path: PathBuf) -> io::Result<Self> {
        let groups = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            path,
            writer: Mutex::new(()),
            groups: RwLock::new(groups),
            #[cfg(test)]
            before_rename: None,
            #[cfg(test)]
            dir_sync: None,
        })
    }

    pub fn get(&self, group: &str) -> Option<GroupRecord> {
        self.read().get(group).copied()
    }

    pub fn all(&self) -> BTreeMap<String, GroupRecord> {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, GroupRecord>> {
        self.groups.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the records with `f` and writes the file; `f`'s answer is returned. Readers
    /// see the change once the file holds it (renamed into place); on a write that fails
    /// before that nothing changes. A failed fsync of the directory after the rename is
    /// logged, the change published all the same (the file holds it).
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, GroupRecord>) -> T,
    ) -> io::Result<T> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        // Only a holder of the writer lock changes the records: this copy is the latest.
        let mut next = self.all();
        let out = f(&mut next);
        if *self.read() != next {
            self.write(&next)?;
            let old = std::mem::replace(
                &mut *self.groups.write().unwrap_or_else(PoisonError::into_inner),
                next,
            );
            drop(old);
        }
        Ok(out)
    }

    /// Replaces the file with `groups`. `Err` when the file still holds the old records;
    /// once the new one is renamed into place, a failure to make the rename durable is
    /// logged, not returned.
    fn write(&self, groups: &BTreeMap<String, GroupRecord>) -> io::Result<()> {
        let dir = self.path.parent();
        if let Some(dir) = dir {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(groups).map_err(io::Error::other)?)?;
        file.sync_all()?;
        #[cfg(test)]
        if let Some(hook) = &self.before_rename {
            (hook.0)()?;
        }
        fs::rename(&tmp, &self.path)?;
        // The rename itself is durable once the directory is.
        if let Err(error) = self.sync_dir(dir) {
            tracing::warn!(file = %self.path.display(), %error, "log group registry changed, but syncing its directory failed: the change may not survive a crash");
        }
        Ok(())
    }

    fn sync_dir(&self, dir: Option<&std::path::Path>) -> io::Result<()> {
        #[cfg(test)]
        if let Some(hook) = &self.dir_sync {
            return (hook.0)();
        }
        match dir {
            Some(dir) => fs::File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }
}

/// Retention policies are the groups' age limits.
impl RetentionOverrides for Registry {
    fn max_age(&self, group: &str) -> Option<Duration> {
        self.get(group)
            .and_then(|g| g.retention_in_days)
            .map(|d| Duration::from_secs(u64::from(d) * 86_400))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier};

    fn record(creation_time: i64) -> GroupRecord {
        GroupRecord {
            creation_time,
            retention_in_days: None,
        }
    }

    #[test]
    fn readers_do_not_wait_for_a_write_and_see_it_once_it_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".registry.json");
        let mut r = Registry::open(path.clone()).unwrap();
        r.update(|g| g.insert("/old".into(), record(1))).unwrap();
        // The first write that reaches its rename stops there until the test lets it go.
        let (in_write_tx, in_write) = mpsc::channel::<()>();
        let go = Arc::new(Barrier::new(2));
        let once = std::sync::atomic::AtomicBool::new(true);
        let hook_go = Arc::clone(&go);
        let in_write_tx = Mutex::new(in_write_tx);
        r.before_rename = Some(TestHook(Box::new(move || {
            if once.swap(false, std::sync::atomic::Ordering::SeqCst) {
                in_write_tx.lock().unwrap().send(()).unwrap();
                hook_go.wait();
            }
            Ok(())
        })));
        let r = Arc::new(r);
        let first = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || r.update(|g| g.insert("/a".into(), record(2))).unwrap())
        };
        in_write
            .recv_timeout(Duration::from_secs(10))
            .expect("the write reached its rename");
        // A second writer waits for the first, and applies its change on top of it.
        let second = {
            let r = Arc::clone(&r);
            std::thread::spawn(move || r.update(|g| g.insert("/b".into(), record(3))).unwrap())
        };
        // Readers answer while the write is under way, from what the file holds.
        let (seen_tx, seen) = mpsc::channel();
        {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                let _ = seen_tx.send((r.get("/a"), r.all().len(), r.max_age("/old")));
            });
        }
        let (a, n, _) = seen
            .recv_timeout(Duration::from_secs(10))
            .expect("a reader waited for the write");
        assert_eq!((a, n), (None, 1), "not published before it is durable");
        go.wait();
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(r.all().len(), 3);
        let again = Registry::open(path).unwrap();
        assert_eq!(again.all(), r.all(), "the file holds both changes");
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".registry.json");
        let mut r = Registry::open(path.clone()).unwrap();
        r.update(|g| g.insert("/kept".into(), record(1))).unwrap();
        r.before_rename = Some(TestHook(Box::new(|| Err(io::Error::other("disk full")))));
        let failed = r.update(|g| g.insert("/lost".into(), record(2)));
        assert!(failed.is_err());
        assert_eq!(r.get("/lost"), None, "not published");
        assert!(r.get("/kept").is_some());
        let again = Registry::open(path).unwrap();
        assert_eq!(again.all(), r.all(), "the file is the one before");
    }

    #[test]
    fn a_change_renamed_into_place_is_published_even_if_the_directory_sync_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".registry.json");
        let mut r = Registry::open(path.clone()).unwrap();
        r.dir_sync = Some(TestHook(Box::new(|| Err(io::Error::other("EIO")))));
        let n = r.update(|g| {
            g.insert("/new".into(), record(1));
            g.len()
        });
        assert_eq!(n.unwrap(), 1);
        assert!(r.get("/new").is_some(), "published: the file holds it");
        let again = Registry::open(path).unwrap();
        assert_eq!(again.all(), r.all(), "readers and the file agree");
    }

    #[test]
    fn survives_a_reopen_and_gives_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".registry.json");
        let r = Registry::open(path.clone()).unwrap();
        r.update(|g| {
            g.insert(
                "/aws/lambda/f".into(),
                GroupRecord {
                    creation_time: 5,
                    retention_in_days: Some(3),
                },
            )
        })
        .unwrap();
        let again = Registry::open(path).unwrap();
        assert_eq!(again.get("/aws/lambda/f").unwrap().creation_time, 5);
        assert_eq!(
            again.max_age("/aws/lambda/f"),
            Some(Duration::from_secs(3 * 86_400))
        );
        assert_eq!(again.max_age("/other"), None);
    }
}
