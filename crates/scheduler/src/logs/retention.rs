//! Log retention: whole streams are deleted once their last line is older than the age limit,
//! and the oldest streams go first while all streams together exceed the size limit.
//!
//! A stream open for writing (its environment is alive) is never deleted: it only counts
//! toward the total. Sweeps run on a thread of their own ([`LogStore::spawn_retention`]), never
//! on the async runtime. Per-group age limits ([`RetentionOverrides`], keyed by log group name)
//! are where CloudWatch Logs' `PutRetentionPolicy` plugs in; the size limit protects the disk
//! and applies to every group.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::LogStore;

/// How much log the server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogRetention {
    /// Streams whose last line is older than this are deleted (`None`: no age limit).
    pub max_age: Option<Duration>,
    /// While all streams together take more bytes than this, the oldest are deleted (`None`:
    /// no size limit).
    pub max_total_bytes: Option<u64>,
}

/// Age limits of single log groups' streams, overriding [`LogRetention::max_age`].
pub trait RetentionOverrides: Send + Sync {
    /// The age limit for the streams of `group` (`/aws/lambda/<function>` for a function's
    /// default group), or `None` to use the server's. (`Duration::MAX` keeps them until the
    /// size limit needs the space.)
    fn max_age(&self, group: &str) -> Option<Duration>;
}

/// No group has a retention of its own.
impl RetentionOverrides for () {
    fn max_age(&self, _group: &str) -> Option<Duration> {
        None
    }
}

impl<F: Fn(&str) -> Option<Duration> + Send + Sync> RetentionOverrides for F {
    fn max_age(&self, group: &str) -> Option<Duration> {
        self(group)
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    pub deleted: usize,
    pub freed_bytes: u64,
    /// Bytes of the streams kept (open ones included).
    pub kept_bytes: u64,
    /// Streams that were due for deletion but open for writing.
    pub skipped_open: usize,
}

/// One stream file found by a sweep.
struct Stream {
    path: PathBuf,
    group: String,
    bytes: u64,
    modified: SystemTime,
    /// The file the sweep saw: a rotation may put another at the same path before it is
    /// deleted (see [`LogStore::delete`]).
    inode: u64,
}

impl LogStore {
    /// Deletes the streams `policy` (with `overrides`) no longer keeps, as of `now`.
    pub fn sweep(
        &self,
        policy: &LogRetention,
        overrides: &dyn RetentionOverrides,
        now: SystemTime,
    ) -> io::Result<SweepReport> {
        let mut streams = self.stream_files()?;
        // Oldest first: the size limit deletes from the front.
        streams.sort_by_key(|s| s.modified);
        let mut report = SweepReport::default();
        // Streams kept by the age limit, with whether they were due but open.
        let mut kept = Vec::with_capacity(streams.len());
        for s in streams {
            let age = now.duration_since(s.modified).unwrap_or_default();
            let limit = overrides.max_age(&s.group).or(policy.max_age);
            let due = limit.is_some_and(|l| age > l);
            match due.then(|| self.delete(&s, &mut report)) {
                Some(Deleted::Yes) => {}
                Some(Deleted::Open) => kept.push((s, true)),
                Some(Deleted::Failed) | None => kept.push((s, false)),
            }
        }
        let mut total: u64 = kept.iter().map(|(s, _)| s.bytes).sum();
        if let Some(max) = policy.max_total_bytes {
            for (s, skipped) in &mut kept {
                if total <= max {
                    break;
                }
                if *skipped {
                    continue;
                }
                match self.delete(s, &mut report) {
                    Deleted::Yes => total -= s.bytes,
                    Deleted::Open => *skipped = true,
                    Deleted::Failed => {}
                }
            }
        }
        report.kept_bytes = total;
        report.skipped_open = kept.iter().filter(|(_, skipped)| *skipped).count();
        Ok(report)
    }

    /// Sweeps now and then every `interval` on a thread of its own, until the returned task is
    /// dropped or stopped.
    pub fn spawn_retention(
        &self,
        policy: LogRetention,
        overrides: Arc<dyn RetentionOverrides>,
        interval: Duration,
    ) -> io::Result<RetentionTask> {
        let store = self.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kindling-log-retention".into())
            .spawn(move || {
                loop {
                    match store.sweep(&policy, &*overrides, SystemTime::now()) {
                        Ok(r) if r.deleted > 0 => tracing::info!(
                            deleted = r.deleted,
                            freed_bytes = r.freed_bytes,
                            kept_bytes = r.kept_bytes,
                            skipped_open = r.skipped_open,
                            "log retention sweep"
                        ),
                        Ok(r) => tracing::debug!(
                            kept_bytes = r.kept_bytes,
                            skipped_open = r.skipped_open,
                            "log retention sweep"
                        ),
                        Err(e) => tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "log retention sweep failed"
                        ),
                    }
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(RetentionTask { stop, thread })
    }

    /// Every stream file with its group, size and last write.
    fn stream_files(&self) -> io::Result<Vec<Stream>> {
        let mut paths = Vec::new();
        super::collect(&self.root, &mut paths)?;
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let Some(group) = super::layout::group_of(&self.root, &path) else {
                continue;
            };
            match fs::symlink_metadata(&path).and_then(|m| Ok((m.len(), m.modified()?, m.ino()))) {
                Ok((bytes, modified, inode)) => out.push(Stream {
                    path,
                    group,
                    bytes,
                    modified,
                    inode,
                }),
                // Gone meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes one stream unless it is open for writing, then the directories it emptied.
    fn delete(&self, s: &Stream, report: &mut SweepReport) -> Deleted {
        let open = self.open_streams();
        if open.contains(&s.path) {
            return Deleted::Open;
        }
        // Under the same lock as a stream's rotation, which replaces `<name>-earlier` with
        // the newest lines: a file that is not the one listed is judged at the next sweep.
        match fs::symlink_metadata(&s.path) {
            Ok(m) if m.ino() != s.inode => return Deleted::Open,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Deleted::Yes,
            Err(_) => {}
        }
        match fs::remove_file(&s.path) {
            Ok(()) => {
                report.deleted += 1;
                report.freed_bytes += s.bytes;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(
                    path = %s.path.display(),
                    error = &e as &dyn std::error::Error,
                    "could not delete an expired log stream"
                );
                return Deleted::Failed;
            }
        }
        // Still under the lock: a stream being created cannot lose its fresh directory.
        remove_empty_parents(&self.root, &s.path);
        Deleted::Yes
    }
}

/// The fate of one stream a sweep meant to delete.
enum Deleted {
    /// Gone (also when something else removed it first).
    Yes,
    /// Open for writing, or replaced since it was listed: kept.
    Open,
    /// Removing it failed (logged): kept.
    Failed,
}

/// Removes the now-empty directories between `file` and `root` (exclusive), innermost first.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

/// The background sweeper; dropping it stops the thread at its next wake-up.
pub struct RetentionTask {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl RetentionTask {
    /// Stops the sweeper and waits for a sweep in progress to end (blocking).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A fixed "now" for the sweeps, so that ages do not depend on the wall clock.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn a_file_replaced_since_the_listing_is_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(dir.path().to_path_buf());
        let path = stream(&store, "f", "a-earlier", 100, 10 * DAY);
        let listed = store.stream_files().unwrap().remove(0);
        assert_eq!(listed.path, path);
        // A rotation sets the newest lines aside under the same name meanwhile.
        let newer = path.with_extension("log.next");
        fs::write(&newer, b"newest lines").unwrap();
        fs::rename(&newer, &path).unwrap();
        let mut report = SweepReport::default();
        assert!(matches!(store.delete(&listed, &mut report), Deleted::Open));
        assert_eq!(fs::read(&path).unwrap(), b"newest lines");
        assert_eq!(report.deleted, 0);
        // The file the listing saw is deleted as before.
        let listed = store.stream_files().unwrap().remove(0);
        assert!(matches!(store.delete(&listed, &mut report), Deleted::Yes));
        assert!(!path.exists());
    }

    /// A closed stream of `bytes` bytes whose last write was `age` before [`now`].
    fn stream(
        store: &LogStore,
        function: &str,
        name: &str,
        bytes: usize,
        age: Duration,
    ) -> PathBuf {
        let path = store
            .function_dir(function)
            .join(format!("2023/11/14/[$LATEST]{name}.log"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, vec![b'x'; bytes]).unwrap();
        set_age(&path, age);
        path
    }

    fn set_age(path: &Path, age: Duration) {
        File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(now() - age)
            .unwrap();
    }

    fn store() -> (LogStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (LogStore::new(dir.path().join("logs")), dir)
    }

    #[test]
    fn deletes_streams_older_than_the_age_limit() {
        let (store, _d) = store();
        let old = stream(&store, "f", "old", 10, 8 * DAY);
        let young = stream(&store, "f", "young", 10, 6 * DAY);
        let policy = LogRetention {
            max_age: Some(7 * DAY),
            max_total_bytes: None,
        };
        let r = store.sweep(&policy, &(), now()).unwrap();
        assert_eq!((r.deleted, r.freed_bytes, r.kept_bytes), (1, 10, 10));
        assert!(!old.exists() && young.exists());
        assert_eq!(store.streams("f").unwrap(), vec![young]);
    }

    #[test]
    fn deletes_the_oldest_streams_while_over_the_size_limit() {
        let (store, _d) = store();
        let a = stream(&store, "a", "1", 400, 3 * DAY);
        let b = stream(&store, "b", "2", 400, 2 * DAY);
        let c = stream(&store, "a", "3", 400, DAY);
        let policy = LogRetention {
            max_age: None,
            max_total_bytes: Some(900),
        };
        let r = store.sweep(&policy, &(), now()).unwrap();
        assert_eq!((r.deleted, r.kept_bytes), (1, 800));
        assert!(!a.exists() && b.exists() && c.exists());
        // Within the limit: nothing more goes.
        assert_eq!(store.sweep(&policy, &(), now()).unwrap().deleted, 0);
    }

    #[test]
    fn never_deletes_a_stream_open_for_writing() {
        let (store, _d) = store();
        let open = store
            .open_stream("/aws/lambda/f", "2023/11/14/[$LATEST]open")
            .unwrap();
        open.line("still running");
        open.flush();
        let path = store.streams("f").unwrap().remove(0);
        set_age(&path, 30 * DAY);
        let policy = LogRetention {
            max_age: Some(DAY),
            max_total_bytes: Some(0),
        };
        let r = store.sweep(&policy, &(), now()).unwrap();
        assert_eq!((r.deleted, r.skipped_open), (0, 1));
        open.line("more");
        open.flush();
        assert!(fs::read_to_string(&path).unwrap().contains("more"));
        drop(open);
        set_age(&path, 30 * DAY);
        let r = store.sweep(&policy, &(), now()).unwrap();
        assert_eq!(r.deleted, 1);
        assert!(!path.exists());
        // The emptied directories went with it; a new stream of the function still opens.
        assert!(!store.function_dir("f").exists());
        store
            .open_stream("/aws/lambda/f", "2023/11/15/[$LATEST]next")
            .unwrap();
    }

    #[test]
    fn per_group_limits_override_the_servers() {
        let (store, _d) = store();
        let kept = stream(&store, "keep", "1", 10, 30 * DAY);
        let short = stream(&store, "short", "1", 10, 2 * DAY);
        let default = stream(&store, "other", "1", 10, 2 * DAY);
        let overrides = |group: &str| match group {
            "/aws/lambda/keep" => Some(Duration::MAX),
            "/aws/lambda/short" => Some(DAY),
            _ => None,
        };
        let policy = LogRetention {
            max_age: Some(7 * DAY),
            max_total_bytes: None,
        };
        let r = store.sweep(&policy, &overrides, now()).unwrap();
        assert_eq!(r.deleted, 1);
        assert!(kept.exists() && !short.exists() && default.exists());
    }

    #[test]
    fn the_background_task_sweeps_at_start_and_stops() {
        let (store, _d) = store();
        // Older than any limit relative to the real clock.
        let old = stream(&store, "f", "old", 10, Duration::ZERO);
        File::options()
            .append(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + DAY)
            .unwrap();
        let task = store
            .spawn_retention(
                LogRetention {
                    max_age: Some(DAY),
                    max_total_bytes: None,
                },
                Arc::new(()),
                Duration::from_secs(3600),
            )
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while old.exists() {
            assert!(std::time::Instant::now() < deadline, "not swept");
            std::thread::sleep(Duration::from_millis(10));
        }
        task.stop();
    }
}
