//! Why a package was refused.

use std::io;

/// Why a deployment package cannot be used. Everything but [`PackageError::Read`] and
/// [`PackageError::Write`] is a fault of the archive itself.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Not a zip archive that can be read (no end record, inconsistent directory, ...).
    #[error("the file is not a readable zip archive: {0}")]
    Malformed(&'static str),
    /// More entries than [`crate::Limits::max_entries`].
    #[error("the archive has more than {limit} entries")]
    TooManyEntries { limit: usize },
    /// The entries' paths imply more files and directories than the tree may hold.
    #[error("the entries' paths make more than {limit} files and directories")]
    TooManyPaths { limit: usize },
    /// The contents, unzipped, are larger than [`crate::Limits::max_unzipped_bytes`].
    #[error("the unzipped contents are larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// One entry is unusable.
    #[error("entry '{name}': {problem}")]
    Entry {
        /// The entry's name as the archive spells it (lossy UTF-8, shortened).
        name: String,
        problem: EntryProblem,
    },
    /// The archive could not be read (an I/O error, not a format error).
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
    /// Extraction could not write (disk full, permissions): a fault of the host, not the package.
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl PackageError {
    /// True when the archive itself is at fault (as opposed to the host's I/O).
    pub fn is_invalid_package(&self) -> bool {
        !matches!(self, Self::Read(_) | Self::Write { .. })
    }

    pub(crate) fn entry(raw_name: &[u8], problem: EntryProblem) -> Self {
        Self::Entry {
            name: display_name(raw_name),
            problem,
        }
    }
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("the name is empty")]
    EmptyName,
    #[error("the name contains a NUL byte")]
    NulInName,
    #[error("the name is an absolute path")]
    AbsolutePath,
    #[error("the name contains a '..' component")]
    ParentComponent,
    #[error("the name is too long (at most 255 bytes a component, {max} bytes in all)", max = crate::path::MAX_PATH)]
    NameTooLong,
    #[error("the name appears more than once")]
    Duplicate,
    #[error("a file or symbolic link and a directory have the same name")]
    FileDirectoryConflict,
    #[error("its parent '{0}' is a file or a symbolic link")]
    ParentNotDirectory(String),
    #[error("device files, FIFOs and sockets are not supported")]
    UnsupportedType,
    #[error("encrypted entries are not supported")]
    Encrypted,
    #[error("compression method {0} is not supported (only stored and deflated)")]
    UnsupportedCompression(u16),
    #[error("the local header does not match the central directory")]
    HeaderMismatch,
    #[error("its data overlaps another entry or the central directory")]
    Overlap,
    #[error("the data is truncated")]
    Truncated,
    #[error("the compressed data is corrupt")]
    CorruptData,
    #[error("the data does not match its CRC-32")]
    BadCrc,
    #[error("its size is {actual} bytes, not the {declared} bytes the archive declares")]
    SizeMismatch { declared: u64, actual: String },
    #[error("a directory entry holds data")]
    DirectoryWithData,
    #[error("the symbolic link's target is empty, too long or contains a NUL byte")]
    BadSymlinkTarget,
    #[error("the symbolic link's target is an absolute path")]
    AbsoluteSymlink,
    #[error("the symbolic link points outside the package")]
    SymlinkEscapes,
    #[error("the symbolic link does not resolve (a loop, or too many links)")]
    SymlinkLoop,
}

/// An entry name for messages: lossy UTF-8, at most 200 characters.
pub(crate) fn display_name(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

/// Maps an I/O error met while reading archive bytes: running out of bytes is a format error.
pub(crate) fn read_error(e: io::Error) -> PackageError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        PackageError::Malformed("it ends in the middle of a record")
    } else {
        PackageError::Read(e)
    }
}
