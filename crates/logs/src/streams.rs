//! A group's streams and their files. A stream is one file, `<name>.log`, except an
//! environment's stream once it has rotated: its full file was renamed `<name>-earlier.log`
//! and a new file took its name. Both are the one stream `<name>` — the earlier file's lines,
//! then its own file's — and `<name>-earlier` is no stream. Only a name of an environment's
//! stream's shape (`layout::rotated_from`) is read so: any other stream whose name ends in
//! `-earlier` is a stream of its own.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use kindling_scheduler::layout;

use crate::stream::{self, OpenFile, StreamInfo};

/// One stream and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFiles {
    pub name: String,
    /// `<name>.log` (missing for a moment while a rotation renames it, or when a crash came
    /// between a rotation's two renames).
    pub path: PathBuf,
    /// `<name>-earlier.log`, for an environment's stream (whether or not it exists).
    pub earlier: Option<PathBuf>,
}

impl StreamFiles {
    /// The stream `name` in the group directory `dir`: `None` when no stream can have that
    /// name (not a file name, or an environment's set-aside file). Its files may not exist.
    pub fn named(dir: &Path, name: &str) -> Option<Self> {
        if layout::rotated_from(name).is_some() {
            return None;
        }
        let path = layout::stream_file(dir, name)?;
        let earlier = layout::is_environment_stream(name).then(|| layout::earlier_file(&path));
        Some(Self {
            name: name.to_string(),
            path,
            earlier,
        })
    }

    /// The group's streams from its stream files (as the store lists them), by name.
    pub fn group(dir: &Path, files: Vec<PathBuf>) -> Vec<Self> {
        let mut by_name: BTreeMap<String, Self> = BTreeMap::new();
        for file in files {
            let Some(name) = layout::stream_name(dir, &file) else {
                continue;
            };
            let own = layout::rotated_from(&name).unwrap_or(&name).to_string();
            if by_name.contains_key(&own) {
                continue;
            }
            if let Some(s) = Self::named(dir, &own) {
                by_name.insert(own, s);
            }
        }
        by_name.into_values().collect()
    }

    /// Its files' paths, oldest first.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.earlier
            .iter()
            .map(PathBuf::as_path)
            .chain([self.path.as_path()])
    }

    /// Whether a file of it exists.
    pub fn exists(&self) -> bool {
        self.paths().any(Path::is_file)
    }

    /// Opens its files that exist, oldest first. Its own file is opened before the earlier
    /// one, so a rotation between the two opens shows one file twice (kept once, as its own),
    /// never neither.
    pub fn open(&self) -> io::Result<Vec<OpenFile>> {
        let own = OpenFile::open(&self.path)?;
        let earlier = match &self.earlier {
            Some(p) => OpenFile::open(p)?,
            None => None,
        }
        .filter(|e| own.as_ref().is_none_or(|o| o.id != e.id));
        Ok(earlier.into_iter().chain(own).collect())
    }

    /// What DescribeLogStreams shows of it: its first event is the earlier file's, its last
    /// its own file's, its bytes both files'. Its files are opened as [`Self::open`] does (own
    /// first), so a rotation meanwhile counts no file twice and none not at all. `NotFound`
    /// when it has no file (deleted meanwhile).
    pub fn info(&self) -> io::Result<StreamInfo> {
        let mut info: Option<StreamInfo> = None;
        for file in self.open()? {
            let one = stream::stream_info_of(self.name.clone(), &file.file)?;
            info = Some(match info {
                None => one,
                Some(older) => StreamInfo {
                    name: older.name,
                    creation_time: older.creation_time,
                    first_event: older.first_event.or(one.first_event),
                    last_event: one.last_event.or(older.last_event),
                    last_ingestion: older.last_ingestion.max(one.last_ingestion),
                    stored_bytes: older.stored_bytes + one.stored_bytes,
                },
            });
        }
        info.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_stream_s_earlier_file_is_part_of_it_and_any_other_is_a_stream() {
        let dir = Path::new("/g");
        let env = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef";
        let file = |n: &str| layout::stream_file(dir, n).unwrap();
        let files = vec![
            file(&format!("{env}-earlier")),
            file(env),
            file("x-earlier"),
            file("x"),
            file("2024/01/01/[$LATEST]short-earlier"),
        ];
        let streams = StreamFiles::group(dir, files);
        let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [env, "2024/01/01/[$LATEST]short-earlier", "x", "x-earlier"]
        );
        assert_eq!(
            streams[0].paths().collect::<Vec<_>>(),
            [file(&format!("{env}-earlier")), file(env)]
        );
        assert!(
            streams
                .iter()
                .filter(|s| s.name != env)
                .all(|s| s.earlier.is_none())
        );
        assert!(StreamFiles::named(dir, &format!("{env}-earlier")).is_none());
        // A rotation's set-aside file alone (its own file not there) is still the stream.
        let alone = StreamFiles::group(dir, vec![file(&format!("{env}-earlier"))]);
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].name, env);
    }
}
