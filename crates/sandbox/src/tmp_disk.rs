//! The disk-backed `/tmp` ([`TmpBacking::Disk`](crate::TmpBacking::Disk)): one fresh ext4
//! filesystem per environment, on a loop device over a sparse image file, with exactly the
//! environment's size free.
//!
//! Per size, a template is made once with `mkfs.ext4` (and mounted once to empty and chmod its
//! root); each image is a sparse copy of the template's few written extents, attached to a loop
//! device and mounted as a detached mount: 2-6 ms. A small pool of ready ones per size is kept
//! by a background thread at nice 10, so a cold start only takes one (or, when the pool ran
//! dry, makes one there and then). An image is used by one environment only: nothing written
//! by one function is ever seen by another.
//!
//! Lifecycle: an image file is unlinked as soon as its loop device holds it, so it lives
//! exactly as long as the filesystem: the detached mount of a ready image, then (also) the mount
//! inside the environment's mount namespace. Kindling keeps its descriptor of the mount
//! ([`HeldTmp`]) until the environment's tree is gone, then the pool's thread closes it: that
//! unmounts the filesystem, the loop device detaches itself (autoclear) and the file's blocks
//! are freed. If Kindling is killed, its descriptors close and the kernel does the same.
//! Templates are unlinked too, kept open by the pool. Files left in the directory by a process
//! killed while making one are swept at start.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::SandboxError;
use crate::sys::disk;

/// Ext4 block size; sizes are counted in these.
const BLOCK: u64 = 4096;
const MIB: u64 = 1024 * 1024;
/// Most distinct sizes the pool keeps images of (the most recently asked for).
const MAX_SIZES: usize = 4;
/// The pool's thread works only once no image was taken for this long...
const QUIET: Duration = Duration::from_millis(100);
/// ... or once its work has waited this long.
const MAX_DEFER: Duration = Duration::from_secs(2);

/// A fresh, empty, mounted (but not attached) filesystem with exactly its size free.
#[derive(Debug)]
pub(crate) struct TmpImage {
    /// The detached mount, for `move_mount` in the environment's mount namespace.
    pub mount: OwnedFd,
    /// Its root directory, open.
    root: OwnedFd,
}

/// An image handed out by the pool, held by Kindling for the environment's whole life: its
/// last reference to the filesystem goes when this is dropped, which sends it back to the
/// pool's thread. Unmounting (with the writeback of what is still dirty) and detaching the loop
/// device take tens of milliseconds; this way they never run on an async worker or in the
/// exiting supervisor (which would delay the environment's reported end).
#[derive(Debug)]
pub(crate) struct HeldTmp {
    image: Option<TmpImage>,
    pool: Arc<(Mutex<PoolState>, Condvar)>,
}

impl HeldTmp {
    /// The detached mount, for `move_mount` in the environment's mount namespace.
    pub(crate) fn mount(&self) -> Option<BorrowedFd<'_>> {
        self.image.as_ref().map(|image| image.mount.as_fd())
    }

    /// Gives the root directory (mode 1777) to the environment's user.
    pub(crate) fn give_to(&self, uid: u32, gid: u32) -> Result<(), SandboxError> {
        let Some(image) = &self.image else {
            return Ok(());
        };
        nix::unistd::fchown(
            &image.root,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )
        .map_err(|e| SandboxError::io("giving /tmp to the environment's user", e.into()))
    }
}

impl Drop for HeldTmp {
    fn drop(&mut self) {
        if let Some(image) = self.image.take() {
            release(&self.pool, vec![image]);
        }
    }
}

/// Hands images to the pool's thread to be unmounted and detached; once the pool has stopped,
/// drops them here.
fn release(pool: &(Mutex<PoolState>, Condvar), images: Vec<TmpImage>) {
    let mut state = lock(&pool.0);
    if state.stop {
        drop(state);
        drop(images);
        return;
    }
    state.retired.extend(images);
    drop(state);
    pool.1.notify_one();
}

/// How images are made: from a template per size, made once with `mkfs.ext4` (an unlinked
/// sparse file kept open), whose data extents (~0.4 MiB for 512 MiB, ~4 MiB for 10 GiB) are
/// copied into each new sparse image. Much cheaper than running `mkfs.ext4` every time.
#[derive(Debug)]
pub(crate) struct ImageMaker {
    /// Where files live while they are being made (0700).
    pub dir: PathBuf,
    pub mkfs: PathBuf,
    templates: Mutex<Vec<(u32, Arc<File>)>>,
}

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

impl ImageMaker {
    pub(crate) fn new(dir: PathBuf, mkfs: PathBuf) -> ImageMaker {
        ImageMaker {
            dir,
            mkfs,
            templates: Mutex::new(Vec::new()),
        }
    }

    /// Makes one image of `size_mb` MiB free.
    pub(crate) fn make(&self, size_mb: u32) -> Result<TmpImage, String> {
        let wanted = u64::from(size_mb.max(1)) * MIB;
        let template = self.template(size_mb, wanted)?;
        let path = self.new_path("img");
        // Removed on every path below: once the loop device holds it, or on failure.
        let result = self.make_at(&path, &template, wanted);
        let _ = fs::remove_file(&path);
        result.map(|(mount, root)| TmpImage { mount, root })
    }

    fn new_path(&self, kind: &str) -> PathBuf {
        self.dir.join(format!(
            "{kind}-{}-{}",
            std::process::id(),
            NEXT_FILE.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The template of a size, made on first use.
    fn template(&self, size_mb: u32, wanted: u64) -> Result<Arc<File>, String> {
        let mut templates = self
            .templates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, template)) = templates.iter().find(|(size, _)| *size == size_mb) {
            return Ok(Arc::clone(template));
        }
        let path = self.new_path("template");
        let made = self.make_template(&path, wanted);
        let _ = fs::remove_file(&path);
        let template = Arc::new(made?);
        templates.push((size_mb, Arc::clone(&template)));
        Ok(template)
    }

    fn make_template(&self, path: &Path, wanted: u64) -> Result<File, String> {
        let file = create_sparse(path, image_len(wanted))?;
        let status = Command::new(&self.mkfs)
            .args(["-q", "-F", "-b", "4096", "-m", "0"])
            .args(["-O", "^has_journal,^resize_inode"])
            .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("running {}: {e}", self.mkfs.display()))?;
        if !status.status.success() {
            return Err(format!(
                "{} failed: {}",
                self.mkfs.display(),
                String::from_utf8_lossy(&status.stderr).trim()
            ));
        }
        // Mounted once to make its root what every /tmp starts as: empty (Lambda's /tmp has no
        // lost+found) and 1777, so images copied from it need no changes but their owner.
        let (mount, root, _) = mount_image(&file, path)?;
        nix::unistd::unlinkat(&root, "lost+found", UnlinkatFlags::RemoveDir)
            .map_err(|e| format!("removing lost+found on the template: {e}"))?;
        nix::sys::stat::fchmod(&root, Mode::from_bits_truncate(0o1777))
            .map_err(|e| format!("chmod 1777 the template's root: {e}"))?;
        nix::unistd::syncfs(&root).map_err(|e| format!("syncing the template: {e}"))?;
        // Unmounted (written back) as the last descriptor of the mount closes.
        drop((root, mount));
        Ok(file)
    }

    fn make_at(
        &self,
        path: &Path,
        template: &File,
        wanted: u64,
    ) -> Result<(OwnedFd, OwnedFd), String> {
        let image = create_sparse(path, image_len(wanted))?;
        copy_extents(template, &image)
            .map_err(|e| format!("copying the template into {}: {e}", path.display()))?;
        let (mount, root, device) = mount_image(&image, path)?;
        exact_free_space(&mount, &device, wanted)?;
        Ok((mount, root))
    }
}

/// Attaches `image` to a loop device, unlinks `path` (the device holds the file now) and
/// mounts the ext4 on it as a detached mount: (mount, its root directory, "loopN").
fn mount_image(image: &File, path: &Path) -> Result<(OwnedFd, OwnedFd, String), String> {
    let device = disk::attach_loop(image.as_fd())
        .map_err(|e| format!("attaching {} to a loop device: {e}", path.display()))?;
    let _ = fs::remove_file(path);
    let name = format!("loop{}", device.index);
    let source = CString::new(format!("/dev/{name}")).map_err(|e| e.to_string())?;
    // The image is sparse and new: its inode tables read as zeros, nothing to initialise.
    let mount = disk::mount_ext4(&source, &[c"noinit_itable"])
        .map_err(|e| format!("mounting ext4 from /dev/{name}: {e}"))?;
    drop(device);
    let root = nix::fcntl::openat(
        &mount,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening the root of /dev/{name}: {e}"))?;
    Ok((mount, root, name))
}

/// The image size for `wanted` free bytes: room for the inode tables (1/64 with ext4's
/// defaults) and the rest of the metadata; what is left above `wanted` is reserved. Sparse:
/// only what is written takes disk space.
fn image_len(wanted: u64) -> u64 {
    wanted + wanted / 32 + 64 * MIB
}

/// A new file of `len` bytes that are all holes.
fn create_sparse(path: &Path, len: u64) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.set_len(len)
        .map_err(|e| format!("sizing {}: {e}", path.display()))?;
    Ok(file)
}

/// Copies the data extents of `from` into `to` at the same offsets; holes stay holes.
fn copy_extents(from: &File, to: &File) -> std::io::Result<()> {
    use nix::unistd::{Whence, lseek};
    let end = i64::try_from(from.metadata()?.len()).map_err(std::io::Error::other)?;
    let mut offset = 0i64;
    while offset < end {
        let start = match lseek(from, offset, Whence::SeekData) {
            Ok(start) => start,
            // No data after `offset`.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let stop = lseek(from, start, Whence::SeekHole)?;
        let (mut source, mut target) = (start, start);
        while source < stop {
            let left = usize::try_from(stop - source).map_err(std::io::Error::other)?;
            let copied =
                nix::fcntl::copy_file_range(from, Some(&mut source), to, Some(&mut target), left)?;
            if copied == 0 {
                return Err(std::io::Error::other("copy_file_range made no progress"));
            }
        }
        offset = stop;
    }
    Ok(())
}

/// Reserves every free block above `wanted` (ext4's `reserved_clusters`, which no user may
/// use), so that an unprivileged writer gets ENOSPC at exactly `wanted` bytes, as Lambda's
/// `EphemeralStorage`. Checks the result.
fn exact_free_space(mount: &OwnedFd, device: &str, wanted: u64) -> Result<(), String> {
    let stats = nix::sys::statfs::fstatfs(mount).map_err(|e| format!("statfs {device}: {e}"))?;
    let block = stats.block_size() as u64;
    if block != BLOCK {
        return Err(format!("{device} has {block}-byte blocks, not {BLOCK}"));
    }
    // f_bfree counts reserved blocks as free (f_bavail does not); with `-m 0` the only
    // reservation is ext4's own `reserved_clusters`, which this replaces.
    let free = stats.blocks_free();
    let wanted_blocks = wanted / BLOCK;
    let knob = format!("/sys/fs/ext4/{device}/reserved_clusters");
    let Some(reserve) = free.checked_sub(wanted_blocks) else {
        return Err(format!(
            "{device}: {free} blocks free, fewer than the {wanted_blocks} wanted"
        ));
    };
    fs::write(&knob, reserve.to_string()).map_err(|e| format!("writing {knob}: {e}"))?;
    let stats = nix::sys::statfs::fstatfs(mount).map_err(|e| format!("statfs {device}: {e}"))?;
    if stats.blocks_available() != wanted_blocks {
        return Err(format!(
            "{device}: {} blocks available after reserving, not {wanted_blocks}",
            stats.blocks_available()
        ));
    }
    Ok(())
}

/// Ready images by size, refilled in the background.
#[derive(Debug)]
pub(crate) struct TmpPool {
    state: Arc<(Mutex<PoolState>, Condvar)>,
    maker: Arc<ImageMaker>,
    worker: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
pub(crate) struct PoolState {
    /// (size in MiB, ready images), most recently asked for first.
    sizes: Vec<(u32, Vec<TmpImage>)>,
    per_size: usize,
    /// Images whose environments are gone (or sizes no longer kept), to release.
    retired: Vec<TmpImage>,
    /// Making images failed before any succeeded: it cannot be done here.
    broken: bool,
    /// When an image was last handed out (a spawn is running then).
    last_take: Option<Instant>,
    made_any: bool,
    stop: bool,
}

impl PoolState {
    /// A size that has fewer ready images than wanted.
    fn short(&self) -> Option<u32> {
        if self.broken {
            return None;
        }
        self.sizes
            .iter()
            .find(|(_, ready)| ready.len() < self.per_size)
            .map(|(size, _)| *size)
    }
}

fn lock(state: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TmpPool {
    /// Prepares `dir` (created 0700; files of processes that are gone are removed), checks that
    /// images can be made by making the first one (of `first_size_mb`), and starts the
    /// background thread keeping `per_size` ready of every size asked for.
    pub(crate) fn start(
        dir: &Path,
        mkfs: &Path,
        per_size: usize,
        first_size_mb: u32,
    ) -> Result<TmpPool, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod 0700 {}: {e}", dir.display()))?;
        sweep(dir);
        if nix::sys::statfs::statfs(dir)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        {
            tracing::warn!(
                dir = %dir.display(),
                "the /tmp image directory is on a tmpfs: what functions write to /tmp takes host memory"
            );
        }
        // The cheap checks here; the template and the first images are made by the pool's
        // thread, so that starting takes no longer. Should that fail, the pool is marked
        // unusable (one warning) and environments get a tmpfs.
        let executable = fs::metadata(mkfs)
            .map_err(|e| format!("{}: {e}", mkfs.display()))?
            .permissions()
            .mode()
            & 0o111
            != 0;
        if !executable {
            return Err(format!("{} is not executable", mkfs.display()));
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| format!("/dev/loop-control: {e}"))?;
        disk::check_ext4().map_err(|e| format!("no ext4 filesystem: {e}"))?;
        let maker = Arc::new(ImageMaker::new(dir.to_path_buf(), mkfs.to_path_buf()));
        let state = Arc::new((
            Mutex::new(PoolState {
                sizes: vec![(first_size_mb, Vec::new())],
                per_size,
                retired: Vec::new(),
                broken: false,
                last_take: None,
                made_any: false,
                stop: false,
            }),
            Condvar::new(),
        ));
        let worker = {
            let state = Arc::clone(&state);
            let maker = Arc::clone(&maker);
            std::thread::Builder::new()
                .name("kindling-tmp-pool".into())
                .spawn(move || refill(&state, &maker))
                .map_err(|e| format!("starting the /tmp pool thread: {e}"))?
        };
        state.1.notify_one();
        Ok(TmpPool {
            state,
            maker,
            worker: Some(worker),
        })
    }

    /// Whether images cannot be made here (found out by the pool's thread; warned once).
    pub(crate) fn is_broken(&self) -> bool {
        lock(&self.state.0).broken
    }

    /// A fresh image of `size_mb`: a ready one, or one made now.
    pub(crate) fn take(&self, size_mb: u32) -> Result<HeldTmp, SandboxError> {
        let ready = {
            let mut state = lock(&self.state.0);
            let position = state.sizes.iter().position(|(size, _)| *size == size_mb);
            let mut entry = match position {
                Some(i) => state.sizes.remove(i),
                None => (size_mb, Vec::new()),
            };
            let ready = entry.1.pop();
            state.sizes.insert(0, entry);
            state.last_take = Some(Instant::now());
            // Forget the least recently asked-for sizes; their images are released.
            if state.sizes.len() > MAX_SIZES {
                let evicted: Vec<TmpImage> = state
                    .sizes
                    .drain(MAX_SIZES..)
                    .flat_map(|(_, images)| images)
                    .collect();
                state.retired.extend(evicted);
            }
            ready
        };
        self.state.1.notify_one();
        let image = match ready {
            Some(image) => image,
            None => self.maker.make(size_mb).map_err(|e| {
                SandboxError::io("making the environment's /tmp", std::io::Error::other(e))
            })?,
        };
        Ok(HeldTmp {
            image: Some(image),
            pool: Arc::clone(&self.state),
        })
    }
}

impl Drop for TmpPool {
    fn drop(&mut self) {
        lock(&self.state.0).stop = true;
        self.state.1.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        // The ready and retired images: their filesystems and loop devices go with them.
        let (sizes, retired) = {
            let mut state = lock(&self.state.0);
            (
                std::mem::take(&mut state.sizes),
                std::mem::take(&mut state.retired),
            )
        };
        drop((sizes, retired));
    }
}

/// What the pool's thread does next.
enum Work {
    Release(Vec<TmpImage>),
    Make(u32),
}

/// The pool's thread, at nice 10: releases retired images, and makes images while a size is
/// short.
fn refill(state: &(Mutex<PoolState>, Condvar), maker: &ImageMaker) {
    if let Err(e) = disk::lower_thread_priority() {
        tracing::debug!(error = %e, "the /tmp pool thread runs at normal priority");
    }
    let mut failures = 0u32;
    loop {
        let work = {
            let mut guard = lock(&state.0);
            let mut waiting_since: Option<Instant> = None;
            loop {
                if guard.stop {
                    return;
                }
                let pending = !guard.retired.is_empty() || guard.short().is_some();
                if !pending {
                    waiting_since = None;
                    guard = state.1.wait(guard).unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                // Attaching and detaching loop devices and mounting wait on the kernel's RCU
                // grace periods, as an environment's own setup does: done while a spawn runs
                // they slow it down. So work only after a quiet moment (or once the work has
                // waited too long, under steady cold starts).
                let since = *waiting_since.get_or_insert_with(Instant::now);
                let quiet_for = guard.last_take.map_or(QUIET, |t| t.elapsed());
                if quiet_for < QUIET && since.elapsed() < MAX_DEFER {
                    let (next, _) = state
                        .1
                        .wait_timeout(guard, QUIET - quiet_for)
                        .unwrap_or_else(PoisonError::into_inner);
                    guard = next;
                    continue;
                }
                if !guard.retired.is_empty() {
                    break Work::Release(std::mem::take(&mut guard.retired));
                }
                if let Some(size) = guard.short() {
                    break Work::Make(size);
                }
            }
        };
        let size = match work {
            Work::Release(images) => {
                drop(images);
                continue;
            }
            Work::Make(size) => size,
        };
        match maker.make(size) {
            Ok(image) => {
                failures = 0;
                let mut guard = lock(&state.0);
                guard.made_any = true;
                match guard.sizes.iter_mut().find(|(s, _)| *s == size) {
                    Some((_, ready)) => ready.push(image),
                    // The size was forgotten meanwhile.
                    None => guard.retired.push(image),
                }
            }
            Err(e) => {
                failures += 1;
                let mut guard = lock(&state.0);
                if !guard.made_any {
                    guard.broken = true;
                    tracing::warn!(
                        error = %e,
                        "disk-backed /tmp unavailable; each environment's /tmp is a tmpfs, \
                         counted against its memory"
                    );
                    continue;
                }
                drop(guard);
                tracing::warn!(error = %e, size_mb = size, "could not prepare a /tmp image");
                // Back off (bounded), without blocking a stop.
                let pause = std::time::Duration::from_millis(100 << failures.min(6));
                let guard = lock(&state.0);
                let _ = state.1.wait_timeout(guard, pause);
            }
        }
    }
}

/// Removes image and template files whose creating process is gone (killed while making one).
fn sweep(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| {
                n.strip_prefix("img-")
                    .or_else(|| n.strip_prefix("template-"))
            })
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed stale /tmp image files");
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn copies_data_extents_and_keeps_holes() {
        let dir = tempfile::tempdir().expect("dir");
        let from_path = dir.path().join("from");
        let mut from = create_sparse(&from_path, 64 * MIB).expect("from");
        for (offset, byte) in [(0u64, b'a'), (8 * MIB, b'b'), (64 * MIB - 4096, b'c')] {
            from.seek(SeekFrom::Start(offset)).expect("seek");
            from.write_all(&[byte; 4096]).expect("write");
        }
        from.sync_all().expect("sync");
        let to = create_sparse(&dir.path().join("to"), 64 * MIB).expect("to");
        copy_extents(&from, &to).expect("copy");

        let read = |file: &File, offset: u64| {
            let mut buf = [0u8; 4096];
            std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset).expect("read");
            buf
        };
        for offset in [0, 8 * MIB, 64 * MIB - 4096, 4 * MIB, 32 * MIB] {
            assert_eq!(read(&from, offset), read(&to, offset), "at {offset}");
        }
        // Only the data was copied: a handful of blocks, not 64 MiB.
        assert!(to.metadata().expect("meta").blocks() * 512 < 4 * MIB);
    }

    #[test]
    fn sweeps_files_of_processes_that_are_gone() {
        let dir = tempfile::tempdir().expect("dir");
        // One above the largest pid the kernel hands out: never a live process.
        let gone: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
            .expect("pid_max")
            .trim()
            .parse::<u64>()
            .expect("number")
            + 1;
        let me = std::process::id();
        for name in [
            format!("img-{gone}-1"),
            format!("template-{gone}-2"),
            format!("img-{me}-3"),
            "unrelated".to_string(),
        ] {
            fs::write(dir.path().join(name), b"").expect("file");
        }
        sweep(dir.path());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [format!("img-{me}-3"), "unrelated".to_string()]);
    }

    #[test]
    fn images_leave_room_for_the_metadata() {
        for mb in [512u64, 10_240] {
            let wanted = mb * MIB;
            // ext4's inode tables take 1/64 and its own reservation up to 16 MiB.
            assert!(image_len(wanted) >= wanted + wanted / 64 + 16 * MIB);
        }
    }
}
