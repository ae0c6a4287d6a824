//! Layers applied in order into a root filesystem, the way container engines do, with the
//! care of an attack surface (layers come from whoever can push):
//!
//! * entry paths are cleaned (`./`, leading `/`); a `..` component refuses the layer, so do
//!   more than [`MAX_DEPTH`] components (also once parents' links are followed);
//! * parents are resolved inside the root: a symbolic link met on the way is followed as it
//!   would be inside the container (absolute targets from the root, `..` stopping at the
//!   root), never out of it; the entry itself is never followed (an existing entry is
//!   replaced, a file is created with `O_EXCL | O_NOFOLLOW`);
//! * hard links must point at a regular file already unpacked in the root;
//! * device nodes and FIFOs are skipped (counted), sparse files are refused;
//! * modes keep their permission bits only: setuid, setgid and sticky are stripped; every
//!   entry belongs to the unpacking user (root), whatever the layer says;
//! * whiteouts: `.wh.<name>` removes `<name>` of lower layers, `.wh..wh..opq` empties its
//!   directory of what lower layers put there;
//! * at most [`UnpackLimits::max_bytes`] of file data and [`UnpackLimits::max_entries`]
//!   entries (data of entries not written, such as a device node's, counts too); gzip streams
//!   are read to their end so their CRC is checked;
//! * at most [`BETWEEN_ENTRIES`] bytes read outside entries: PAX and GNU long-name headers
//!   (which the tar reader buffers in memory) and padding after the end of the archive; those
//!   bytes count toward `max_bytes` too;
//! * parents resolved once are remembered (forgotten when a directory or a symbolic link is
//!   removed or replaced; at most [`MAX_RESOLVED`] of them and [`MAX_RESOLVED_BYTES`]), so the
//!   work is linear in the image; [`UnpackLimits::max_resolve_steps`] bounds it in total (with
//!   the entries listed to empty opaque directories, each directory once per layer), and
//!   directories made for parents count toward `max_entries`.
//!
//! [`verify_layers`] walks the same way without writing: it measures the unpacked size and
//! proves every layer decompresses and parses. Resolving parents needs the file system, so it
//! neither counts directories made for parents nor resolve steps: an image it accepts can
//! still be refused by [`unpack_layers`] for `max_entries` or `max_resolve_steps`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::digest::Digest;

/// One layer to read: its file and, when known, the digest its bytes must hash to (checked
/// as the file is read, so a blob changed on disk since it was verified is refused).
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub path: &'a Path,
    pub digest: Option<&'a Digest>,
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Rc<RefCell<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

/// Most components in an entry's path, and in the directory a parent resolves to. Resolving
/// a parent not remembered costs one `lstat` per component, each walking the path from the
/// root: the cost grows with the square of the depth, so deep paths are refused.
const MAX_DEPTH: usize = 128;

/// Bytes the tar reader may consume on its own between two entries Kindling handles: extension
/// headers (PAX records, GNU long names), which it buffers in memory, and end padding.
const BETWEEN_ENTRIES: u64 = 4 << 20;

/// The decompressed stream, refusing more than [`BETWEEN_ENTRIES`] bytes read outside an
/// entry's data (between entries, and after the end of the archive). Those bytes also count
/// toward [`UnpackLimits::max_bytes`], so the work of one unpack is bounded in total.
struct Budget<R> {
    inner: R,
    /// Bytes since the last entry was done; `None` while an entry's data is being read.
    since: Rc<Cell<Option<u64>>>,
    /// Bytes counted toward `max_bytes` so far (file data, data discarded, bytes outside).
    counted: Rc<Cell<u64>>,
    max_bytes: u64,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(since) = self.since.get() {
            let since = since + n as u64;
            if since > BETWEEN_ENTRIES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "more than {BETWEEN_ENTRIES} bytes of tar extension headers or padding \
                         outside any entry"
                    ),
                ));
            }
            self.since.set(Some(since));
            let counted = self.counted.get().saturating_add(n as u64);
            self.counted.set(counted);
            if counted > self.max_bytes {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{TOO_LARGE} (counting extension headers and padding)"),
                ));
            }
        }
        Ok(n)
    }
}

/// The start of the message of a read refused by [`Budget`] for `max_bytes`.
const TOO_LARGE: &str = "the image unpacks to more than its size limit";

/// Most parents remembered at once (the cache starts over beyond).
const MAX_RESOLVED: usize = 1 << 18;

/// Most bytes the remembered parents hold at once, counted as [`FRAME_OVERHEAD`] and the
/// name of each [`Frame`], [`NODE_OVERHEAD`] and the key of each trie node (the cache starts
/// over beyond): a walk through long symbolic link targets makes many frames for one node.
const MAX_RESOLVED_BYTES: usize = 64 << 20;

/// Bytes counted per [`Frame`] besides its name (the `Rc` box and the name's allocation).
const FRAME_OVERHEAD: usize = 64;

/// Bytes counted per trie node besides its key: its slot in its parent's map (key and node),
/// twice over for the hash table's spare capacity (up to half its slots are empty after it
/// grows), and the key's allocation.
const NODE_OVERHEAD: usize = 2 * (std::mem::size_of::<(OsString, Resolved)>() + 1) + 16;

/// Bounds of one unpack.
#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    /// Bytes of file data, all layers together (Lambda: 10 GB uncompressed).
    pub max_bytes: u64,
    pub max_entries: u64,
    /// Most work resolving entries' parents in one unpack, counted in path components the
    /// kernel walks (an `lstat` or `mkdir` at depth 10 counts 10). Parents resolved once are
    /// remembered, so a legitimate image costs about one `lstat` per directory it has; this
    /// bounds images made to defeat that (each entry in a new deep chain of directories).
    /// Each entry listed to empty an opaque directory counts one.
    pub max_resolve_steps: u64,
}

impl UnpackLimits {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            max_entries: 2_000_000,
            max_resolve_steps: 32 << 20,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Bytes of file data (the image's unpacked size, whiteouts ignored).
    pub bytes: u64,
    pub entries: u64,
    /// Device nodes and FIFOs left out.
    pub skipped: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer is not a (gzip-compressed) tar, or is truncated.
    #[error("layer {layer} is corrupt: {message}")]
    Corrupt { layer: usize, message: String },
    /// An entry that would write outside the root, or an impossible one.
    #[error("layer {layer}: entry {path:?} is refused: {why}")]
    Refused {
        layer: usize,
        path: String,
        why: &'static str,
    },
    #[error("layer {layer} uses {what}, which Kindling does not unpack")]
    Unsupported { layer: usize, what: String },
    #[error("the image unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the image has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    /// The layer's bytes do not hash to its digest.
    #[error("layer {layer} is corrupt: its content hashes to {actual}, not {expected}")]
    DigestMismatch {
        layer: usize,
        expected: String,
        actual: String,
    },
    /// The host's file system failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// True when the image is at fault (not the host).
    pub fn is_invalid_image(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Verifies `layers` (files, in order) without writing anything: every layer decompresses and
/// parses to its end, every entry is acceptable, and the total fits `limits`.
pub fn verify_layers(
    layers: &[Layer<'_>],
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let mut walk = Walk::new(None, *limits);
    for (i, layer) in layers.iter().enumerate() {
        walk.layer(i, layer)?;
    }
    Ok(walk.stats)
}

/// Unpacks `layers` into a new directory `dest` (built beside it under a temporary name, then
/// renamed, so `dest` exists only complete). Mount points `/proc`, `/dev` and `/tmp` are
/// made real directories. If `dest` appears meanwhile (a concurrent unpack), it is kept.
pub fn unpack_layers(
    layers: &[Layer<'_>],
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or(OsStr::new("root"));
    let tmp = parent.join(format!(
        ".{}.tmp-{:016x}",
        name.to_string_lossy(),
        fastrand::u64(..)
    ));
    fs::create_dir(&tmp).map_err(io_at(&tmp))?;
    let result = (|| {
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).map_err(io_at(&tmp))?;
        let mut walk = Walk::new(Some(tmp.clone()), *limits);
        for (i, layer) in layers.iter().enumerate() {
            walk.layer(i, layer)?;
        }
        walk.finish()?;
        Ok(walk.stats)
    })();
    match result {
        Ok(stats) => match fs::rename(&tmp, dest) {
            Ok(()) => Ok(stats),
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(stats)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(io_at(dest)(e))
            }
        },
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// The relative, clean form of an entry path: `None` when it has a `..`.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

struct Walk {
    /// `None`: verify only.
    root: Option<PathBuf>,
    limits: UnpackLimits,
    stats: UnpackStats,
    /// Directory modes to apply at the end (directories stay writable while unpacking).
    dir_modes: HashMap<PathBuf, u32>,
    /// Bytes counted toward `max_bytes`: file data, entry data read but not written
    /// (entries of types that carry none), and bytes read outside entries.
    counted: Rc<Cell<u64>>,
    /// Parents already resolved, by entry path; emptied whenever an entry removes or
    /// replaces a directory or a symbolic link (which could change what a remembered path
    /// resolves to), and when it grows past [`MAX_RESOLVED`] nodes or `max_resolved_bytes`.
    resolved: Resolved,
    resolved_count: usize,
    /// Bytes [`Walk::resolved`] holds (see [`MAX_RESOLVED_BYTES`]), and its cap.
    resolved_bytes: usize,
    max_resolved_bytes: usize,
    /// Times the remembered parents were dropped for their size (for tests).
    resolved_restarts: u64,
    /// Work spent resolving parents, against [`UnpackLimits::max_resolve_steps`].
    steps: u64,
    /// Directories made for entries' parents (no entry of their own), against
    /// [`UnpackLimits::max_entries`] with the entries.
    implicit: u64,
}

/// A directory reached resolving a parent: its path below the root as a stack sharing its
/// tail with its parent's, so remembering every prefix costs memory linear in the names.
struct Frame {
    name: OsString,
    up: Option<Rc<Frame>>,
}

/// The state of a parent's resolution after some of its components.
#[derive(Clone, Default)]
struct State {
    top: Option<Rc<Frame>>,
    depth: usize,
    walked: usize,
    links: usize,
}

impl State {
    fn host(&self, root: &Path) -> PathBuf {
        let mut names = Vec::with_capacity(self.depth);
        let mut at = self.top.as_deref();
        while let Some(f) = at {
            names.push(&f.name);
            at = f.up.as_deref();
        }
        let mut out = root.to_path_buf();
        out.extend(names.iter().rev());
        out
    }
}

/// Resolved parents, a trie over entry path components.
#[derive(Default)]
struct Resolved {
    state: State,
    children: HashMap<OsString, Resolved>,
}

impl Walk {
    fn new(root: Option<PathBuf>, limits: UnpackLimits) -> Self {
        Self {
            root,
            limits,
            stats: UnpackStats::default(),
            dir_modes: HashMap::new(),
            counted: Rc::new(Cell::new(0)),
            resolved: Resolved::default(),
            resolved_count: 0,
            resolved_bytes: 0,
            max_resolved_bytes: MAX_RESOLVED_BYTES,
            resolved_restarts: 0,
            steps: 0,
            implicit: 0,
        }
    }

    fn layer(&mut self, index: usize, layer: &Layer<'_>) -> Result<(), UnpackError> {
        let path = layer.path;
        let max_bytes = self.limits.max_bytes;
        let corrupt = |e: io::Error| {
            if e.to_string().starts_with(TOO_LARGE) {
                UnpackError::TooLarge { limit: max_bytes }
            } else {
                UnpackError::Corrupt {
                    layer: index,
                    message: e.to_string(),
                }
            }
        };
        let hasher = Rc::new(RefCell::new(Sha256::new()));
        let mut file = BufReader::new(Hashing {
            inner: File::open(path).map_err(io_at(path))?,
            hasher: Rc::clone(&hasher),
        });
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(io_at(path))?;
        let head = io::Cursor::new(magic[..n].to_vec());
        let reader = head.chain(file);
        let reader: Box<dyn Read> = match &magic[..n] {
            [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            [0x28, 0xb5, 0x2f, 0xfd] => {
                return Err(UnpackError::Unsupported {
                    layer: index,
                    what: "zstd compression".into(),
                });
            }
            _ => Box::new(reader),
        };
        let since = Rc::new(Cell::new(Some(0)));
        let reader = Budget {
            inner: reader,
            since: Rc::clone(&since),
            counted: Rc::clone(&self.counted),
            max_bytes,
        };
        let mut archive = tar::Archive::new(reader);
        let mut created: HashSet<PathBuf> = HashSet::new();
        // Each directory once, however many markers name it (a layer repeating one marker
        // would otherwise list the directory once per marker: quadratic).
        let mut opaque: BTreeSet<PathBuf> = BTreeSet::new();
        let mut saw_entry = false;
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            saw_entry = true;
            since.set(None);
            self.entry(index, &mut entry, &mut created, &mut opaque)?;
            self.drain(index, &mut entry)?;
            since.set(Some(0));
        }
        if !saw_entry && n == 0 {
            return Err(UnpackError::Corrupt {
                layer: index,
                message: "the layer is empty".into(),
            });
        }
        // Read to the end: a gzip stream's CRC and length are checked only there.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(corrupt)?;
        drop(rest);
        if let Some(expected) = layer.digest {
            let actual = Digest::from_sha256(hasher.take().finalize().into());
            if &actual != expected {
                return Err(UnpackError::DigestMismatch {
                    layer: index,
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        for dir in opaque {
            self.make_opaque(index, &dir, &created)?;
        }
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        layer: usize,
        entry: &mut tar::Entry<'_, R>,
        created: &mut HashSet<PathBuf>,
        opaque: &mut BTreeSet<PathBuf>,
    ) -> Result<(), UnpackError> {
        let raw = entry.path().map_err(|e| UnpackError::Corrupt {
            layer,
            message: e.to_string(),
        })?;
        let shown = raw.display().to_string();
        let refused = |why: &'static str| UnpackError::Refused {
            layer,
            path: shown.clone(),
            why,
        };
        let path = clean(&raw).ok_or_else(|| refused("it has a '..' component"))?;
        if path.as_os_str().len() > 4096 {
            return Err(refused("the path is longer than 4096 bytes"));
        }
        if path.components().count() > MAX_DEPTH {
            return Err(refused("the path has more than 128 components"));
        }
        self.stats.entries += 1;
        if self.stats.entries + self.implicit > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let kind = entry.header().entry_type();
        let name = path.file_name().map(OsStr::as_bytes).unwrap_or_default();
        if path.as_os_str().is_empty() {
            // The root itself: nothing to do beyond checking its type.
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(refused("the root must be a directory"))
            };
        }
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
            if hidden == b".wh..opq" {
                opaque.insert(parent);
                return Ok(());
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
                return Err(refused("a whiteout must name an entry"));
            }
            let victim = parent.join(OsStr::from_bytes(hidden));
            return self.remove(layer, &victim, &shown);
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.size();
                let counted = self.counted.get().saturating_add(size);
                if counted > self.limits.max_bytes {
                    return Err(UnpackError::TooLarge {
                        limit: self.limits.max_bytes,
                    });
                }
                self.counted.set(counted);
                self.stats.bytes += size;
                match self.target(layer, &path, &shown)? {
                    None => {
                        io::copy(entry, &mut io::sink()).map_err(|e| UnpackError::Corrupt {
                            layer,
                            message: e.to_string(),
                        })?;
                    }
                    Some(at) => {
                        let mut file = OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&at)
                            .map_err(io_at(&at))?;
                        let copied = io::copy(entry, &mut file).map_err(|e| {
                            if e.kind() == io::ErrorKind::UnexpectedEof
                                || e.kind() == io::ErrorKind::InvalidData
                                || e.kind() == io::ErrorKind::InvalidInput
                            {
                                UnpackError::Corrupt {
                                    layer,
                                    message: e.to_string(),
                                }
                            } else {
                                io_at(&at)(e)
                            }
                        })?;
                        if copied != size {
                            return Err(UnpackError::Corrupt {
                                layer,
                                message: format!("{shown}: {copied} of {size} bytes"),
                            });
                        }
                        fs::set_permissions(&at, fs::Permissions::from_mode(mode))
                            .map_err(io_at(&at))?;
                    }
                }
            }
            EntryType::Directory => {
                if let Some(root) = self.root.clone() {
                    let parent = self.resolve_parent(layer, &path, &shown)?;
                    let at = parent.join(path.file_name().unwrap_or_default());
                    match at.symlink_metadata() {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => {
                            self.remove_at(&at)?;
                            make_dir(&at)?;
                        }
                        Err(_) => make_dir(&at)?,
                    }
                    let rel = at.strip_prefix(&root).unwrap_or(&at).to_path_buf();
                    self.dir_modes.insert(rel, mode);
                }
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| UnpackError::Corrupt {
                        layer,
                        message: e.to_string(),
                    })?
                    .ok_or_else(|| refused("a symbolic link without a target"))?
                    .into_owned();
                if target.as_os_str().is_empty() || target.as_os_str().len() > 4096 {
                    return Err(refused("a symbolic link target must be 1-4096 bytes"));
                }
                if let Some(at) = self.target(layer, &path, &shown)? {
                    std::os::unix::fs::symlink(&target, &at).map_err(io_at(&at))?;
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| UnpackError::Corrupt {
                        layer,
                        message: e.to_string(),
                    })?
                    .ok_or_else(|| refused("a hard link without a target"))?;
                let target =
                    clean(&target).ok_or_else(|| refused("a hard link out of the root"))?;
                if target.as_os_str().is_empty() {
                    return Err(refused("a hard link to the root"));
                }
                if self.root.is_some() {
                    let source_dir = self.resolve_parent(layer, &target, &shown)?;
                    let source = source_dir.join(target.file_name().unwrap_or_default());
                    let is_file = source.symlink_metadata().is_ok_and(|m| m.is_file());
                    if !is_file {
                        return Err(refused(
                            "a hard link must point at a file unpacked before it",
                        ));
                    }
                    // Replacing what is at the entry's path would remove the file it links to.
                    let at_dir = self.resolve_parent(layer, &path, &shown)?;
                    if source.starts_with(at_dir.join(path.file_name().unwrap_or_default())) {
                        return Err(refused("a hard link to itself or into itself"));
                    }
                    if let Some(at) = self.target(layer, &path, &shown)? {
                        fs::hard_link(&source, &at).map_err(io_at(&at))?;
                    }
                }
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.stats.skipped += 1;
                return Ok(());
            }
            EntryType::GNUSparse => {
                return Err(UnpackError::Unsupported {
                    layer,
                    what: format!("a sparse file ({shown})"),
                });
            }
            // Metadata entries the tar reader has not folded in (global PAX headers...).
            _ => return Ok(()),
        }
        created.insert(path);
        Ok(())
    }

    /// Reads what `entry` has left of its data (a device node's, an unknown type's), counted
    /// against [`UnpackLimits::max_bytes`] like file data.
    fn drain<R: Read>(
        &mut self,
        layer: usize,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let corrupt = |e: io::Error| UnpackError::Corrupt {
            layer,
            message: e.to_string(),
        };
        let limit = self.limits.max_bytes;
        let room = limit.saturating_sub(self.counted.get());
        let n =
            io::copy(&mut entry.take(room.saturating_add(1)), &mut io::sink()).map_err(corrupt)?;
        if n > room {
            return Err(UnpackError::TooLarge { limit });
        }
        self.counted.set(self.counted.get() + n);
        Ok(())
    }

    /// The host path where entry `path` is to be created, with whatever was there removed;
    /// `None` when only verifying.
    fn target(
        &mut self,
        layer: usize,
        path: &Path,
        shown: &str,
    ) -> Result<Option<PathBuf>, UnpackError> {
        if self.root.is_none() {
            return Ok(None);
        }
        let parent = self.resolve_parent(layer, path, shown)?;
        let at = parent.join(path.file_name().unwrap_or_default());
        if at.symlink_metadata().is_ok() {
            self.remove_at(&at)?;
        }
        Ok(Some(at))
    }

    /// Removes entry `path` (a whiteout), if present.
    fn remove(&mut self, layer: usize, path: &Path, shown: &str) -> Result<(), UnpackError> {
        if self.root.is_none() {
            return Ok(());
        }
        let parent = match self.resolve_existing_parent(layer, path, shown)? {
            Some(p) => p,
            None => return Ok(()),
        };
        let at = parent.join(path.file_name().unwrap_or_default());
        if at.symlink_metadata().is_ok() {
            self.remove_at(&at)?;
        }
        Ok(())
    }

    /// Removes whatever is at `at`. Removing a directory or a symbolic link forgets the
    /// parents resolved so far (they may go through it); removing anything else cannot change
    /// how a parent resolves (a walk only goes through directories and links), so an overwritten
    /// file keeps them.
    fn remove_at(&mut self, at: &Path) -> Result<(), UnpackError> {
        let through = at
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir() || m.file_type().is_symlink());
        if through {
            self.forget();
        }
        remove_any(at)
    }

    /// Drops every remembered parent.
    fn forget(&mut self) {
        self.resolved = Resolved::default();
        self.resolved_count = 0;
        self.resolved_bytes = 0;
    }

    /// Empties directory `dir` of entries not created by the current layer.
    fn make_opaque(
        &mut self,
        layer: usize,
        dir: &Path,
        created: &HashSet<PathBuf>,
    ) -> Result<(), UnpackError> {
        let Some(root) = self.root.clone() else {
            return Ok(());
        };
        let shown = dir.display().to_string();
        let host_dir = if dir.as_os_str().is_empty() {
            root.clone()
        } else {
            match self.resolve_existing_parent(layer, &dir.join("x"), &shown)? {
                Some(d) => d,
                None => return Ok(()),
            }
        };
        let Ok(entries) = fs::read_dir(&host_dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            // Listing counts as resolve work, so the budget bounds it in total too.
            self.steps += 1;
            if self.steps > self.limits.max_resolve_steps {
                return Err(UnpackError::Refused {
                    layer,
                    path: shown,
                    why: "emptying opaque directories takes too much work",
                });
            }
            let rel = dir.join(entry.file_name());
            if !created.contains(&rel) {
                self.remove_at(&entry.path())?;
            }
        }
        Ok(())
    }

    /// The host directory that holds entry `path`, creating missing directories on the way.
    fn resolve_parent(
        &mut self,
        layer: usize,
        path: &Path,
        shown: &str,
    ) -> Result<PathBuf, UnpackError> {
        self.resolve(layer, path, shown, true)
            .map(|p| p.unwrap_or_default())
    }

    fn resolve_existing_parent(
        &mut self,
        layer: usize,
        path: &Path,
        shown: &str,
    ) -> Result<Option<PathBuf>, UnpackError> {
        self.resolve(layer, path, shown, false)
    }

    /// Resolves the parent of `path` inside the root, following symbolic links as the
    /// container would (never above the root). `create`: missing directories are made;
    /// otherwise a missing one gives `None`.
    fn resolve(
        &mut self,
        layer: usize,
        path: &Path,
        shown: &str,
        create: bool,
    ) -> Result<Option<PathBuf>, UnpackError> {
        let root = self.root.clone().unwrap_or_default();
        let refused = |why: &'static str| UnpackError::Refused {
            layer,
            path: shown.to_string(),
            why,
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        let components: Vec<&OsStr> = parent
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s),
                _ => None,
            })
            .collect();
        // The longest prefix already resolved: the walk goes on from its state, exactly as if
        // it had walked there (symbolic links met on the way are expanded before the next
        // component of the entry's path is taken).
        let mut known = 0;
        let mut node = &self.resolved;
        while let Some(next) = components.get(known).and_then(|c| node.children.get(*c)) {
            node = next;
            known += 1;
        }
        let mut st = node.state.clone();
        let mut here = st.host(&root);
        let mut fresh: Vec<State> = Vec::new();
        // Bytes of the frames made by this walk (those kept by `fresh` are remembered).
        let mut frame_bytes = 0;
        for original in &components[known..] {
            let mut pending: VecDeque<OsString> = VecDeque::from([original.to_os_string()]);
            while let Some(component) = pending.pop_front() {
                st.walked += 1;
                if st.walked > 4 * MAX_DEPTH || st.depth > MAX_DEPTH {
                    return Err(refused("the path is too deep once its links are followed"));
                }
                if component == ".." {
                    if let Some(top) = st.top.take() {
                        st.top = top.up.clone();
                        st.depth -= 1;
                        here.pop();
                    }
                    continue;
                }
                if component == "." || component.is_empty() {
                    continue;
                }
                self.steps += st.depth as u64 + 1;
                if self.steps > self.limits.max_resolve_steps {
                    return Err(refused(
                        "resolving the entries' parents takes too much work (too many deep \
                         directories)",
                    ));
                }
                let next = here.join(&component);
                match next.symlink_metadata() {
                    Ok(m) if m.file_type().is_symlink() => {
                        st.links += 1;
                        if st.links > 40 {
                            return Err(refused("too many levels of symbolic links"));
                        }
                        let target = fs::read_link(&next).map_err(io_at(&next))?;
                        if target.is_absolute() {
                            st.top = None;
                            st.depth = 0;
                            here = root.clone();
                        }
                        let mut expanded: Vec<OsString> = target
                            .components()
                            .filter_map(|c| match c {
                                Component::Normal(s) => Some(s.to_os_string()),
                                Component::ParentDir => Some(OsString::from("..")),
                                _ => None,
                            })
                            .collect();
                        while let Some(c) = expanded.pop() {
                            pending.push_front(c);
                        }
                        continue;
                    }
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(refused("a parent of the entry is not a directory")),
                    Err(_) if create => {
                        // Directories made on the way count as entries (one entry can
                        // otherwise make up to 128 of them).
                        self.implicit += 1;
                        if self.stats.entries + self.implicit > self.limits.max_entries {
                            return Err(UnpackError::TooManyEntries {
                                limit: self.limits.max_entries,
                            });
                        }
                        make_dir(&next)?
                    }
                    Err(_) => return Ok(None),
                }
                here.push(&component);
                st.depth += 1;
                frame_bytes += FRAME_OVERHEAD + component.len();
                st.top = Some(Rc::new(Frame {
                    name: component,
                    up: st.top.take(),
                }));
            }
            fresh.push(st.clone());
        }
        self.remember(
            &components[..known],
            &components[known..],
            fresh,
            frame_bytes,
        );
        Ok(Some(here))
    }

    /// Adds the states `fresh` of components `new` (after `known`, already remembered), whose
    /// new frames take `frame_bytes`.
    fn remember(
        &mut self,
        known: &[&OsStr],
        new: &[&OsStr],
        fresh: Vec<State>,
        frame_bytes: usize,
    ) {
        if fresh.is_empty() {
            return;
        }
        let node_bytes: usize = new
            .iter()
            .take(fresh.len())
            .map(|c| NODE_OVERHEAD + c.len())
            .sum();
        let bytes = self.resolved_bytes + frame_bytes + node_bytes;
        if self.resolved_count + fresh.len() > MAX_RESOLVED || bytes > self.max_resolved_bytes {
            self.forget();
            self.resolved_restarts += 1;
            return;
        }
        let mut node = &mut self.resolved;
        for c in known {
            match node.children.get_mut(*c) {
                Some(next) => node = next,
                None => return,
            }
        }
        self.resolved_count += fresh.len();
        self.resolved_bytes = bytes;
        for (c, state) in new.iter().zip(fresh) {
            node = node.children.entry(c.to_os_string()).or_insert(Resolved {
                state,
                children: HashMap::new(),
            });
        }
    }

    /// Applies directory modes and makes the sandbox's mount points real directories.
    fn finish(&mut self) -> Result<(), UnpackError> {
        let Some(root) = self.root.clone() else {
            return Ok(());
        };
        for dir in ["proc", "dev", "tmp"] {
            let at = root.join(dir);
            match at.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&at)?;
                    make_dir(&at)?;
                }
                Err(_) => make_dir(&at)?,
            }
        }
        let mut modes: Vec<(&PathBuf, &u32)> = self.dir_modes.iter().collect();
        // Deepest first, so a parent's mode never gets in the way.
        modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, mode) in modes {
            // A later entry may have made a parent a symbolic link (to a host path, or `..`):
            // the directory is then gone from the image, and the path names something else.
            if let Some(at) = real_dir_in(&root, rel) {
                fs::set_permissions(&at, fs::Permissions::from_mode(*mode)).map_err(io_at(&at))?;
            }
        }
        Ok(())
    }
}

/// `root/rel` when every component of `rel` is a directory, not a symbolic link (so the path
/// stays inside `root`).
fn real_dir_in(root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return None;
        };
        at.push(name);
        if !at.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            return None;
        }
    }
    Some(at)
}

fn make_dir(at: &Path) -> Result<(), UnpackError> {
    fs::create_dir(at).map_err(io_at(at))?;
    fs::set_permissions(at, fs::Permissions::from_mode(0o755)).map_err(io_at(at))
}

/// Removes whatever is at `at`, never following a symbolic link.
fn remove_any(at: &Path) -> Result<(), UnpackError> {
    match at.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(at).map_err(io_at(at)),
        Ok(_) => fs::remove_file(at).map_err(io_at(at)),
        Err(_) => Ok(()),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
