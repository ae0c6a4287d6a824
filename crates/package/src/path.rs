//! Entry names and kinds: what an entry is and where it lands, or why it may not land at all.

use crate::error::EntryProblem;
use crate::reader::RawEntry;

/// Longest normalized path accepted (bytes): with `/var/task/` or a host data directory in
/// front it must still fit Linux's `PATH_MAX` (4096) in the environment.
pub const MAX_PATH: usize = 4000;
/// Longest path component (Linux's `NAME_MAX`).
const MAX_COMPONENT: usize = 255;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// What an entry becomes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    /// A regular file; `exec` when the archive gives its owner the execute bit.
    File {
        exec: bool,
    },
    Symlink,
}

/// The path (components joined by `/`, no `.`, `..` or empty components) and kind of an
/// entry; `None` for an entry that names the root directory itself (`./`).
pub(crate) fn classify(entry: &RawEntry) -> Result<Option<(Vec<u8>, Kind)>, EntryProblem> {
    let raw = entry.name.as_slice();
    if raw.is_empty() {
        return Err(EntryProblem::EmptyName);
    }
    if raw.contains(&0) {
        return Err(EntryProblem::NulInName);
    }
    if raw[0] == b'/' {
        return Err(EntryProblem::AbsolutePath);
    }
    let trailing_slash = raw.ends_with(b"/");
    let path = normalize(raw)?;
    let kind = kind(entry, trailing_slash)?;
    if path.is_empty() {
        return match kind {
            Kind::Dir => Ok(None),
            _ => Err(EntryProblem::EmptyName),
        };
    }
    Ok(Some((path, kind)))
}

/// Joins the meaningful components of `raw` with `/`.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>, EntryProblem> {
    let mut out = Vec::with_capacity(raw.len());
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(EntryProblem::ParentComponent),
            c if c.len() > MAX_COMPONENT => return Err(EntryProblem::NameTooLong),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    if out.len() > MAX_PATH {
        return Err(EntryProblem::NameTooLong);
    }
    Ok(out)
}

/// The Unix mode of an entry, when the archive recorded one.
fn unix_mode(entry: &RawEntry) -> Option<u32> {
    // Host systems whose external attributes carry a Unix mode: Unix (3) and OS X (19).
    let host = entry.version_made_by >> 8;
    let mode = entry.external_attr >> 16;
    (matches!(host, 3 | 19) && mode != 0).then_some(mode)
}

fn kind(entry: &RawEntry, trailing_slash: bool) -> Result<Kind, EntryProblem> {
    match unix_mode(entry) {
        Some(mode) => match mode & S_IFMT {
            S_IFDIR => Ok(Kind::Dir),
            // A trailing slash names a directory whatever the mode says (as unzip does).
            _ if trailing_slash && mode & S_IFMT != S_IFLNK => Ok(Kind::Dir),
            S_IFLNK if trailing_slash => Err(EntryProblem::FileDirectoryConflict),
            S_IFLNK => Ok(Kind::Symlink),
            0 | S_IFREG => Ok(Kind::File {
                exec: mode & 0o100 != 0,
            }),
            _ => Err(EntryProblem::UnsupportedType),
        },
        None => {
            // MS-DOS attributes: 0x10 is the directory bit.
            if trailing_slash || entry.external_attr & 0x10 != 0 {
                Ok(Kind::Dir)
            } else {
                Ok(Kind::File { exec: false })
            }
        }
    }
}

/// The mode a file gets on disk: readable by everyone (the environment's user must read it),
/// executable by everyone when its owner could execute it; never writable by others, never
/// setuid, setgid or sticky.
pub(crate) fn file_mode(exec: bool) -> u32 {
    if exec { 0o755 } else { 0o644 }
}

/// The mode of every extracted directory.
pub(crate) const DIR_MODE: u32 = 0o755;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, host: u16, mode: u32) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            version_made_by: host << 8 | 20,
            flags: 0,
            method: 0,
            crc32: 0,
            compressed_size: 0,
            uncompressed_size: 0,
            local_offset: 0,
            external_attr: mode << 16,
        }
    }

    #[test]
    fn names_are_normalized_or_refused() {
        let ok = |n: &str| classify(&entry(n, 3, 0o100_644)).map(|r| r.map(|(p, _)| p));
        assert_eq!(ok("a/./b//c").unwrap().unwrap(), b"a/b/c");
        assert_eq!(ok("./x").unwrap().unwrap(), b"x");
        assert_eq!(ok("a/../b"), Err(EntryProblem::ParentComponent));
        assert_eq!(ok(".."), Err(EntryProblem::ParentComponent));
        assert_eq!(ok("/etc/passwd"), Err(EntryProblem::AbsolutePath));
        assert_eq!(ok(""), Err(EntryProblem::EmptyName));
        assert_eq!(ok("a\0b"), Err(EntryProblem::NulInName));
        assert_eq!(ok(&"x".repeat(256)), Err(EntryProblem::NameTooLong));
        assert_eq!(
            ok(&["y"; 2100].join("/")),
            Err(EntryProblem::NameTooLong),
            "4199 bytes in all"
        );
        // A backslash is an ordinary byte on Linux: no traversal.
        assert_eq!(ok("..\\..\\x").unwrap().unwrap(), b"..\\..\\x");
        assert_eq!(classify(&entry("./", 3, 0o040_755)).unwrap(), None);
    }

    #[test]
    fn kinds_come_from_unix_modes_or_dos_attributes() {
        let kind = |n: &str, host: u16, mode: u32| {
            classify(&entry(n, host, mode)).map(|r| r.map(|(_, k)| k))
        };
        assert_eq!(
            kind("f", 3, 0o100_755).unwrap(),
            Some(Kind::File { exec: true })
        );
        assert_eq!(
            kind("f", 3, 0o104_755).unwrap(),
            Some(Kind::File { exec: true })
        );
        assert_eq!(
            kind("f", 3, 0o100_644).unwrap(),
            Some(Kind::File { exec: false })
        );
        assert_eq!(kind("d/", 3, 0o040_755).unwrap(), Some(Kind::Dir));
        assert_eq!(kind("d", 3, 0o041_777).unwrap(), Some(Kind::Dir));
        assert_eq!(kind("d/", 3, 0o100_644).unwrap(), Some(Kind::Dir));
        assert_eq!(kind("l", 3, 0o120_777).unwrap(), Some(Kind::Symlink));
        assert_eq!(
            kind("l/", 3, 0o120_777),
            Err(EntryProblem::FileDirectoryConflict)
        );
        for special in [0o020_644, 0o060_644, 0o010_644, 0o140_644] {
            assert_eq!(kind("dev", 3, special), Err(EntryProblem::UnsupportedType));
        }
        // MS-DOS: no Unix mode; a directory by its slash or its attribute bit.
        assert_eq!(kind("f", 0, 0).unwrap(), Some(Kind::File { exec: false }));
        assert_eq!(kind("d/", 0, 0).unwrap(), Some(Kind::Dir));
        let mut dos_dir = entry("d", 0, 0);
        dos_dir.external_attr = 0x10;
        assert_eq!(classify(&dos_dir).unwrap().unwrap().1, Kind::Dir);
    }

    #[test]
    fn modes_never_carry_special_bits() {
        assert_eq!(file_mode(true), 0o755);
        assert_eq!(file_mode(false), 0o644);
        assert_eq!(DIR_MODE & 0o7000, 0);
    }
}
