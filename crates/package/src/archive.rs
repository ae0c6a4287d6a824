//! One archive, checked in two passes: the central directory (entry count, declared sizes,
//! names, kinds, methods, the tree) before any data, then every entry's data in file order
//! (local headers, overlaps, real sizes, CRCs), each entry going to a sink the caller picks.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::Limits;
use crate::data::{self, Budget, Buffers, CopyError, Expect};
use crate::error::{EntryProblem, PackageError};
use crate::path::{Kind, classify};
use crate::reader::{Directory, RawEntry, read_directory, read_local};
use crate::tree::{InsertError, MAX_TARGET, Source, Tree};

/// General-purpose flag bits that mean encryption: traditional (0), strong (6) and an encrypted
/// central directory (13).
const ENCRYPTION_FLAGS: u16 = 1 | 1 << 6 | 1 << 13;
/// The compression method id of WinZip AES encryption.
const AES_METHOD: u16 = 99;

/// The result of the first pass.
pub(crate) struct Scanned {
    pub dir: Directory,
    /// Normalized path and kind of each entry (`None`: the root directory itself).
    pub paths: Vec<Option<(Vec<u8>, Kind)>>,
    pub tree: Tree,
}

impl Scanned {
    pub fn kind(&self, entry: usize) -> Option<Kind> {
        self.paths
            .get(entry)
            .and_then(|p| p.as_ref())
            .map(|(_, k)| *k)
    }

    pub fn path(&self, entry: usize) -> &[u8] {
        self.paths
            .get(entry)
            .and_then(|p| p.as_ref())
            .map_or(&[][..], |(p, _)| p.as_slice())
    }
}

/// Nodes a tree may hold for each entry an archive may hold: files need directories, but
/// not more than one each on average.
pub(crate) const NODES_PER_ENTRY: usize = 2;

fn entry_error(entry: &RawEntry, problem: EntryProblem) -> PackageError {
    PackageError::entry(&entry.name, problem)
}

/// First pass: the central directory and the tree, before reading any entry data.
pub(crate) fn scan<R: Read + Seek>(
    r: &mut R,
    archive: usize,
    limits: &Limits,
) -> Result<Scanned, PackageError> {
    let dir = read_directory(r, limits.max_entries)?;
    let mut declared = 0u64;
    let mut paths = Vec::with_capacity(dir.entries.len());
    let max_nodes = limits.max_entries.saturating_mul(NODES_PER_ENTRY);
    let mut tree = Tree::new(max_nodes);
    for (index, entry) in dir.entries.iter().enumerate() {
        if entry.flags & ENCRYPTION_FLAGS != 0 || entry.method == AES_METHOD {
            return Err(entry_error(entry, EntryProblem::Encrypted));
        }
        if !matches!(entry.method, data::STORED | data::DEFLATED) {
            return Err(entry_error(
                entry,
                EntryProblem::UnsupportedCompression(entry.method),
            ));
        }
        declared = declared.saturating_add(entry.uncompressed_size);
        if declared > limits.max_unzipped_bytes {
            return Err(PackageError::TooLarge {
                limit: limits.max_unzipped_bytes,
            });
        }
        let classified = classify(entry).map_err(|p| entry_error(entry, p))?;
        let kind = classified.as_ref().map(|(_, k)| *k);
        match kind {
            Some(Kind::Symlink) if entry.uncompressed_size > MAX_TARGET as u64 => {
                return Err(entry_error(entry, EntryProblem::BadSymlinkTarget));
            }
            Some(Kind::Dir) | None if entry.uncompressed_size != 0 => {
                return Err(entry_error(entry, EntryProblem::DirectoryWithData));
            }
            _ => {}
        }
        if let Some((path, kind)) = &classified {
            let source = Source {
                archive,
                entry: index,
            };
            match tree.insert(path, *kind, source) {
                Ok(()) => {}
                Err(InsertError::Entry(p)) => return Err(entry_error(entry, p)),
                Err(InsertError::TooManyPaths) => {
                    return Err(PackageError::TooManyPaths { limit: max_nodes });
                }
            }
        }
        paths.push(classified);
    }
    Ok(Scanned { dir, paths, tree })
}

/// Where the data of one entry goes.
pub(crate) enum Sink {
    /// Checked and dropped.
    Discard,
    /// Kept in memory (link targets, at most 4095 bytes).
    Capture,
    /// Written to a file (named for error messages).
    Write(Box<dyn Write>, String),
}

/// Second pass: every entry's data, in file order, each checked against the central directory
/// and sent where `sink_for(entry index)` says. Returns the captured data by entry index.
pub(crate) fn read_data<R: Read + Seek>(
    r: &mut R,
    scanned: &Scanned,
    budget: &mut Budget,
    bufs: &mut Buffers,
    sink_for: &mut dyn FnMut(usize) -> Result<Sink, PackageError>,
) -> Result<Vec<(usize, Vec<u8>)>, PackageError> {
    let entries = &scanned.dir.entries;
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].local_offset);
    let mut captured = Vec::new();
    let mut previous_end = 0u64;
    for index in order {
        let entry = &entries[index];
        // Entries may not share bytes: overlapping entries are how small archives expand to
        // terabytes, and a different reader could see different files.
        if entry.local_offset < previous_end {
            return Err(entry_error(entry, EntryProblem::Overlap));
        }
        let local = read_local(r, entry)?
            .filter(|l| {
                l.method == entry.method
                    && l.flags & ENCRYPTION_FLAGS == entry.flags & ENCRYPTION_FLAGS
            })
            .ok_or_else(|| entry_error(entry, EntryProblem::HeaderMismatch))?;
        let data_end = local
            .data_start
            .checked_add(entry.compressed_size)
            .filter(|end| *end <= scanned.dir.cd_start)
            .ok_or_else(|| entry_error(entry, EntryProblem::Overlap))?;
        previous_end = data_end;
        r.seek(SeekFrom::Start(local.data_start))
            .map_err(PackageError::Read)?;
        let expect = Expect {
            method: entry.method,
            compressed: entry.compressed_size,
            uncompressed: entry.uncompressed_size,
            crc32: entry.crc32,
        };
        let mut capture = Vec::new();
        let result = match sink_for(index)? {
            Sink::Discard => {
                data::copy_entry(r, &expect, budget, bufs, &mut std::io::sink(), &String::new)
            }
            Sink::Capture => data::copy_entry(r, &expect, budget, bufs, &mut capture, &String::new),
            Sink::Write(mut file, name) => {
                data::copy_entry(r, &expect, budget, bufs, &mut file, &|| name.clone()).and_then(
                    |n| {
                        file.flush().map_err(|source| {
                            CopyError::Package(PackageError::Write {
                                path: name.clone(),
                                source,
                            })
                        })?;
                        Ok(n)
                    },
                )
            }
        };
        match result {
            Ok(_) => {}
            Err(CopyError::Entry(p)) => return Err(entry_error(entry, p)),
            Err(CopyError::Package(e)) => return Err(e),
        }
        if matches!(scanned.kind(index), Some(Kind::Symlink)) {
            captured.push((index, capture));
        }
    }
    Ok(captured)
}

/// Both passes with nothing written: the archive's real unzipped size, or why it is refused.
pub(crate) fn verify<R: Read + Seek>(
    r: &mut R,
    limits: &Limits,
) -> Result<(Scanned, u64), PackageError> {
    let mut scanned = scan(r, 0, limits)?;
    let mut budget = Budget {
        limit: limits.max_unzipped_bytes,
        used: 0,
    };
    let links: Vec<bool> = (0..scanned.paths.len())
        .map(|i| scanned.kind(i) == Some(Kind::Symlink))
        .collect();
    let targets = read_data(r, &scanned, &mut budget, &mut Buffers::new(), &mut |i| {
        Ok(if links[i] {
            Sink::Capture
        } else {
            Sink::Discard
        })
    })?;
    for (entry, target) in targets {
        scanned
            .tree
            .set_target(Source { archive: 0, entry }, target);
    }
    scanned
        .tree
        .check_symlinks()
        .map_err(|(source, p)| entry_error(&scanned.dir.entries[source.entry], p))?;
    Ok((scanned, budget.used))
}
