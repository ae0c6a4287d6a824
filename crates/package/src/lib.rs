//! Deployment packages (zip archives): full verification at upload and safe extraction at cold
//! start, with the same checks both times.
//!
//! A package is accepted only if every entry can be read back exactly as declared: the
//! central directory and the local headers agree, no two entries share bytes, every entry
//! decompresses (stored or deflated, not encrypted) to exactly its declared size with the
//! right CRC-32, the declared and the real sizes stay within [`Limits`], names are relative
//! paths without `..` that appear once and never both as a file and a directory, entries are
//! regular files, directories or relative symbolic links that resolve inside the package.
//! Memory use is bounded by the central directory plus two 64 KiB buffers, and time by the
//! bytes actually decompressed (which never exceed the limit).
//!
//! Extraction writes into a fresh private directory through directory handles, never through
//! a link, with modes 0644 or 0755 only (no setuid, setgid or sticky bits, nothing writable by
//! others), and renames it into place when complete.
//!
//! Everything here is blocking file I/O and CPU work: async callers run it on a blocking pool.

mod archive;
mod data;
mod error;
mod extract;
mod path;
mod reader;
mod tree;

use std::io::{Cursor, Read, Seek};

pub use error::{EntryProblem, PackageError};
pub use extract::{Extracted, extract};
pub use path::MAX_PATH;

/// Entries a package may hold. Lambda documents no such limit; this one keeps the memory and
/// the inodes a package may take bounded (large real packages hold a few tens of thousands).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// What a package may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Real bytes, all entries together (Lambda's `CodeSizeUnzipped`: 262 144 000).
    pub max_unzipped_bytes: u64,
    /// Entries in one archive.
    pub max_entries: usize,
}

impl Limits {
    /// `max_unzipped_bytes` with the default entry limit.
    pub fn new(max_unzipped_bytes: u64) -> Self {
        Self {
            max_unzipped_bytes,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Real bytes of all entries, decompressed.
    pub unzipped_size: u64,
    /// Entries in the archive (files, directories and links).
    pub entries: usize,
}

/// Reads the whole archive, decompressing every entry, and says whether it is a package that
/// [`extract`] will unpack; nothing is written anywhere.
pub fn verify<R: Read + Seek>(mut reader: R, limits: &Limits) -> Result<Verified, PackageError> {
    let (scanned, unzipped_size) = archive::verify(&mut reader, limits)?;
    Ok(Verified {
        unzipped_size,
        entries: scanned.dir.entries.len(),
    })
}

/// [`verify`] for an archive in memory.
pub fn verify_bytes(bytes: &[u8], limits: &Limits) -> Result<Verified, PackageError> {
    verify(Cursor::new(bytes), limits)
}
