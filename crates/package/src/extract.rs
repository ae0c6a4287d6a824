//! Extraction: archives are checked exactly as at upload and written into a fresh private
//! directory through directory handles (`openat` with `O_NOFOLLOW`, `O_EXCL`; links are
//! created last), then renamed into place. Nothing is ever written through a symbolic link, and
//! no file gets a mode beyond 0755.

use std::fs::{self, File};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, open, openat, renameat2};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::symlinkat;

use crate::Limits;
use crate::archive::{NODES_PER_ENTRY, Sink, read_data, scan};
use crate::data::{Budget, Buffers};
use crate::error::{PackageError, display_name};
use crate::path::{DIR_MODE, file_mode};
use crate::tree::{Node, Source, Tree};

/// What [`extract`](crate::extract) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Real bytes of every entry read (including files a later layer replaced).
    pub unzipped_size: u64,
    /// Regular files written.
    pub files: usize,
}

/// Writes below one directory handle, never following a link.
struct Writer {
    root: OwnedFd,
    /// The directory most recently written into, by path (entries come sorted by path).
    last: Option<(Vec<u8>, OwnedFd)>,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn write_error(path: &[u8], errno: Errno) -> PackageError {
    PackageError::Write {
        path: display_name(path),
        source: errno.into(),
    }
}

impl Writer {
    fn dir(&mut self, dir: &[u8]) -> Result<BorrowedFd<'_>, PackageError> {
        if dir.is_empty() {
            return Ok(self.root.as_fd());
        }
        if !matches!(&self.last, Some((path, _)) if path == dir) {
            let mut components = dir.split(|b| *b == b'/');
            let first = components.next().unwrap_or_default();
            let mut fd = openat(self.root.as_fd(), first, DIR_FLAGS, Mode::empty())
                .map_err(|e| write_error(dir, e))?;
            for component in components {
                fd = openat(fd.as_fd(), component, DIR_FLAGS, Mode::empty())
                    .map_err(|e| write_error(dir, e))?;
            }
            self.last = Some((dir.to_vec(), fd));
        }
        match &self.last {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(write_error(dir, Errno::ENOENT)),
        }
    }

    fn mkdir(&mut self, path: &[u8]) -> Result<(), PackageError> {
        let (parent, name) = split(path);
        let parent_fd = self.dir(parent)?;
        mkdirat(parent_fd, name, Mode::S_IRWXU).map_err(|e| write_error(path, e))?;
        let fd =
            openat(parent_fd, name, DIR_FLAGS, Mode::empty()).map_err(|e| write_error(path, e))?;
        fchmod(fd.as_fd(), Mode::from_bits_truncate(DIR_MODE)).map_err(|e| write_error(path, e))
    }

    fn create(&mut self, path: &[u8], mode: u32) -> Result<File, PackageError> {
        let (parent, name) = split(path);
        let parent_fd = self.dir(parent)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(parent_fd, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| write_error(path, e))?;
        // Set explicitly: the process umask must not decide what the environment can read.
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| write_error(path, e))?;
        Ok(File::from(fd))
    }

    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), PackageError> {
        let (parent, name) = split(path);
        let parent_fd = self.dir(parent)?;
        symlinkat(target, parent_fd, name).map_err(|e| write_error(path, e))
    }
}

/// Extracts `archives` (a function's package, or layers in order: later ones win) into `dest`,
/// which must not exist yet. Everything is checked as by [`verify`](crate::verify), against
/// one budget of `limits.max_unzipped_bytes` real bytes for all archives together.
/// If another caller created `dest` meanwhile, its copy is kept and this one discarded.
pub fn extract(
    archives: &[&Path],
    dest: &Path,
    limits: &Limits,
) -> Result<Extracted, PackageError> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("package");
    let tmp = parent.join(format!(".{file_name}.tmp-{:016x}", fastrand::u64(..)));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(|source| PackageError::Write {
            path: tmp.display().to_string(),
            source,
        })?;
    let result = extract_into(archives, &tmp, limits).and_then(|extracted| {
        publish(&tmp, dest)?;
        Ok(extracted)
    });
    if result.is_err() || tmp.exists() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Renames the finished directory into place; a `dest` that appeared meanwhile wins.
fn publish(tmp: &Path, dest: &Path) -> Result<(), PackageError> {
    let cwd = nix::fcntl::AT_FDCWD;
    match renameat2(cwd, tmp, cwd, dest, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) if dest.is_dir() => Ok(()),
        // A filesystem without RENAME_NOREPLACE: a plain rename cannot replace a non-empty
        // directory either, so a concurrent winner still wins.
        Err(Errno::EINVAL) => match fs::rename(tmp, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.is_dir() => Ok(()),
            Err(source) => Err(PackageError::Write {
                path: dest.display().to_string(),
                source,
            }),
        },
        Err(e) => Err(PackageError::Write {
            path: dest.display().to_string(),
            source: e.into(),
        }),
    }
}

fn open_archive(path: &Path) -> Result<File, PackageError> {
    File::open(path).map_err(PackageError::Read)
}

fn extract_into(
    archives: &[&Path],
    tmp: &Path,
    limits: &Limits,
) -> Result<Extracted, PackageError> {
    // First pass over every archive, then one tree with later layers laid over earlier ones.
    let mut files: Vec<File> = Vec::with_capacity(archives.len());
    let mut scans = Vec::with_capacity(archives.len());
    let mut tree = Tree::new(0);
    for (index, path) in archives.iter().enumerate() {
        let mut file = open_archive(path)?;
        let mut scanned = scan(&mut file, index, limits)?;
        let layer = std::mem::replace(&mut scanned.tree, Tree::new(0));
        tree.overlay(layer)
            .map_err(|_| PackageError::TooManyPaths {
                limit: limits.max_entries.saturating_mul(NODES_PER_ENTRY),
            })?;
        files.push(file);
        scans.push(scanned);
    }

    let root = open(tmp, DIR_FLAGS, Mode::empty()).map_err(|e| PackageError::Write {
        path: tmp.display().to_string(),
        source: e.into(),
    })?;
    let mut writer = Writer { root, last: None };
    tree.walk(|path, node| match node {
        Node::Dir { .. } => writer.mkdir(path),
        _ => Ok(()),
    })?;

    // Second pass: every entry of every archive is read and checked; the ones still in the
    // tree are written.
    let mut budget = Budget {
        limit: limits.max_unzipped_bytes,
        used: 0,
    };
    let mut bufs = Buffers::new();
    let mut written = 0usize;
    let mut targets = Vec::new();
    for (index, (file, scanned)) in files.iter_mut().zip(&scans).enumerate() {
        let placed = tree.placed(index);
        let captured = read_data(file, scanned, &mut budget, &mut bufs, &mut |entry| {
            Ok(match placed.get(&entry) {
                Some(Node::File { exec, .. }) => {
                    let path = scanned.path(entry);
                    let f = writer.create(path, file_mode(*exec))?;
                    written += 1;
                    Sink::Write(Box::new(f), display_name(path))
                }
                Some(Node::Symlink { .. }) => Sink::Capture,
                _ => Sink::Discard,
            })
        })?;
        targets.extend(captured.into_iter().map(|(entry, target)| {
            (
                Source {
                    archive: index,
                    entry,
                },
                target,
            )
        }));
    }
    for (source, target) in targets {
        tree.set_target(source, target);
    }
    tree.check_symlinks().map_err(|(source, problem)| {
        let name = scans
            .get(source.archive)
            .and_then(|s| s.dir.entries.get(source.entry))
            .map_or(&[][..], |e| e.name.as_slice());
        PackageError::entry(name, problem)
    })?;
    for source in tree.links() {
        let path = scans
            .get(source.archive)
            .map_or(&[][..], |s| s.path(source.entry));
        let target = tree.target(source).unwrap_or_default();
        writer.symlink(path, target)?;
    }
    fchmod(writer.root.as_fd(), Mode::from_bits_truncate(DIR_MODE)).map_err(|e| {
        PackageError::Write {
            path: tmp.display().to_string(),
            source: e.into(),
        }
    })?;
    Ok(Extracted {
        unzipped_size: budget.used,
        files: written,
    })
}
