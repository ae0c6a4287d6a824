//! What CloudWatch Logs knows of groups beyond their streams: groups made with
//! `CreateLogGroup` (which exist before any stream) and retention policies. Kept in memory and
//! in one JSON file (`<log root>/.registry.json`), replaced atomically on every change (write,
//! fsync, rename). Every method that touches the file blocks: call it off the async runtime.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};
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
    groups: RwLock<BTreeMap<String, GroupRecord>>,
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
            groups: RwLock::new(groups),
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

    /// Changes the records with `f` and writes the file; `f`'s answer is returned. On a
    /// failed write the change is undone.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, GroupRecord>) -> T,
    ) -> io::Result<T> {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        let before = groups.clone();
        let out = f(&mut groups);
        if *groups != before
            && let Err(e) = self.write(&groups)
        {
            *groups = before;
            return Err(e);
        }
        Ok(out)
    }

    fn write(&self, groups: &BTreeMap<String, GroupRecord>) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(groups).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)
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
