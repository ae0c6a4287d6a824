//! The root filesystem of a Namespaces environment, as a list of steps computed before the clone.
//!
//! The supervisor executes the steps inside its new mount namespace (so nothing is ever visible
//! on the host and everything disappears with the namespace):
//!
//! ```text
//! /            tmpfs (1 MiB), made read-only at the end
//! <host paths> read-only, nosuid, nodev binds at the same path (symlinks recreated)
//! <extra>      read-only binds of extra_mounts
//! /var/task    read-only bind of task_root
//! /opt         read-only bind of opt_dir (or an empty directory)
//! /tmp         a fresh ext4 of tmp_size_mb (moved in from a detached mount), a tmpfs of
//!              tmp_size_mb (owned by the program's user), or a read-write bind of tmp_dir
//! /proc        a new proc for the new PID namespace
//! /dev         tmpfs, read-only, with null zero full random urandom tty bound from the host,
//!              and fd, stdin, stdout, stderr links into /proc/self/fd
//! ```

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_ulong;

use crate::sys::child::CStep;
use crate::{EnvironmentSpec, SandboxError};

/// What a host path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKind {
    Dir,
    /// A file, device or other non-directory.
    File,
    Symlink(PathBuf),
    Missing,
}

impl HostKind {
    pub(crate) fn of(path: &Path) -> HostKind {
        match path.symlink_metadata() {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::read_link(path).map_or(HostKind::Missing, HostKind::Symlink)
            }
            Ok(meta) if meta.is_dir() => HostKind::Dir,
            Ok(_) => HostKind::File,
            Err(_) => HostKind::Missing,
        }
    }
}

/// One step, with paths as paths (for tests and error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Mkdir(PathBuf),
    Touch(PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<&'static str>,
        flags: c_ulong,
        data: Option<String>,
    },
    PivotRoot(PathBuf),
    /// Attach the detached mount `fd` (inherited from Kindling) at `target`, then close `fd`.
    MoveMount {
        fd: RawFd,
        target: PathBuf,
    },
}

/// Where `/tmp` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TmpSource {
    /// A read-write bind of the spec's `tmp_dir`.
    HostDir,
    /// A new tmpfs of the spec's `tmp_size_mb`.
    Tmpfs,
    /// A prepared filesystem, as a detached mount open at this descriptor.
    Mount(RawFd),
}

impl Step {
    /// "mounting /usr on /run/kindling-sandbox/usr" and the like, for error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Step::Mkdir(path) => format!("creating directory {}", path.display()),
            Step::Touch(path) => format!("creating mount point {}", path.display()),
            Step::Symlink { target, link } => {
                format!("linking {} to {}", link.display(), target.display())
            }
            Step::Mount {
                source,
                target,
                fstype,
                flags,
                ..
            } => {
                let what = source
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .or(fstype.map(str::to_string))
                    .unwrap_or_else(|| "(remount)".to_string());
                format!("mounting {what} on {} (flags {flags:#x})", target.display())
            }
            Step::PivotRoot(path) => format!("pivoting the root to {}", path.display()),
            Step::MoveMount { target, .. } => {
                format!("attaching the /tmp filesystem on {}", target.display())
            }
        }
    }

    pub(crate) fn to_c(&self) -> Result<CStep, SandboxError> {
        Ok(match self {
            Step::Mkdir(path) => CStep::Mkdir(c_path(path)?),
            Step::Touch(path) => CStep::Touch(c_path(path)?),
            Step::Symlink { target, link } => CStep::Symlink {
                target: c_path(target)?,
                link: c_path(link)?,
            },
            Step::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => CStep::Mount {
                source: source.as_deref().map(c_path).transpose()?,
                target: c_path(target)?,
                fstype: fstype.map(c_str).transpose()?,
                flags: *flags,
                data: data.as_deref().map(c_str).transpose()?,
            },
            Step::PivotRoot(path) => CStep::PivotRoot(c_path(path)?),
            Step::MoveMount { fd, target } => CStep::MoveMount {
                fd: *fd,
                target: c_path(target)?,
            },
        })
    }
}

pub(crate) fn c_path(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SandboxError::InvalidSpec(format!("path {} contains a NUL byte", path.display()))
    })
}

pub(crate) fn c_str(text: &str) -> Result<CString, SandboxError> {
    CString::new(text)
        .map_err(|_| SandboxError::InvalidSpec(format!("{text:?} contains a NUL byte")))
}

const RO_FLAGS: c_ulong =
    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Builds the steps for `spec`, assembling the root at `staging` (an existing, empty host
/// directory). A tmpfs `/tmp` belongs to `tmp_owner` (uid, gid). `probe` tells what a host
/// path is.
pub(crate) fn build(
    spec: &EnvironmentSpec,
    staging: &Path,
    tmp: TmpSource,
    tmp_owner: (u32, u32),
    probe: impl Fn(&Path) -> HostKind,
) -> Result<Vec<Step>, SandboxError> {
    let mut plan = Builder {
        staging: staging.to_path_buf(),
        steps: Vec::new(),
        made: BTreeSet::new(),
        read_only: Vec::new(),
    };
    plan.mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    );
    if let Some(root) = &spec.root_dir {
        return Ok(image_root(plan, spec, root, staging, tmp, tmp_owner, probe));
    }
    plan.steps.push(Step::Mount {
        source: Some("tmpfs".into()),
        target: staging.to_path_buf(),
        fstype: Some("tmpfs"),
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: Some("size=1m,mode=0755".into()),
    });

    // Host paths, parents before children; a path inside an earlier one is already there.
    let mut host_paths: Vec<&Path> = spec
        .readonly_host_paths
        .iter()
        .map(PathBuf::as_path)
        .collect();
    host_paths.sort_by_key(|p| p.components().count());
    host_paths.dedup();
    for path in host_paths {
        if plan.read_only.iter().any(|ro| path.starts_with(ro)) {
            continue;
        }
        match probe(path) {
            HostKind::Missing => {
                tracing::debug!(path = %path.display(), "host path missing; not mounted")
            }
            HostKind::Symlink(target) => {
                plan.mkdir_parents(path);
                plan.steps.push(Step::Symlink {
                    target,
                    link: plan.at(path),
                });
            }
            kind => plan.bind_read_only(path, path, kind == HostKind::Dir),
        }
    }

    let mut extra: Vec<_> = spec.extra_mounts.iter().collect();
    extra.sort_by_key(|m| m.inside.components().count());
    for mount in extra {
        match probe(&mount.host) {
            HostKind::Missing => {
                return Err(SandboxError::InvalidSpec(format!(
                    "mount source {} does not exist",
                    mount.host.display()
                )));
            }
            kind => plan.bind_read_only(&mount.host, &mount.inside, kind != HostKind::File),
        }
    }

    if spec.code_later {
        // Mount points only: the code is attached later (`Environment::attach_code`).
        plan.mkdir_all(Path::new("/var/task"));
        plan.mkdir_all(Path::new("/opt"));
    } else {
        plan.bind_read_only(&spec.task_root, Path::new("/var/task"), true);
        match &spec.opt_dir {
            Some(opt) => plan.bind_read_only(opt, Path::new("/opt"), true),
            None => plan.mkdir_all(Path::new("/opt")),
        }
    }

    Ok(system_mounts(plan, spec, staging, tmp, tmp_owner, probe))
}

/// A container image's root: `root` bound read-only (nosuid, nodev) at the staging
/// directory, then the usual `/tmp`, `/proc` and `/dev` on top. The image's `tmp`, `proc`
/// and `dev` exist as directories (the unpacker makes sure), so nothing is created in it.
fn image_root(
    mut plan: Builder,
    spec: &EnvironmentSpec,
    root: &Path,
    staging: &Path,
    tmp: TmpSource,
    tmp_owner: (u32, u32),
    probe: impl Fn(&Path) -> HostKind,
) -> Vec<Step> {
    plan.steps.push(Step::Mount {
        source: Some(root.to_path_buf()),
        target: staging.to_path_buf(),
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC,
        data: None,
    });
    plan.steps.push(Step::Mount {
        source: None,
        target: staging.to_path_buf(),
        fstype: None,
        flags: RO_FLAGS,
        data: None,
    });
    for dir in ["/tmp", "/proc", "/dev"] {
        plan.made.insert(PathBuf::from(dir));
    }
    plan.made.insert(PathBuf::from("/"));
    system_mounts(plan, spec, staging, tmp, tmp_owner, probe)
}

/// `/tmp`, `/proc`, `/dev`, then the pivot and the read-only root.
fn system_mounts(
    mut plan: Builder,
    spec: &EnvironmentSpec,
    staging: &Path,
    tmp: TmpSource,
    tmp_owner: (u32, u32),
    probe: impl Fn(&Path) -> HostKind,
) -> Vec<Step> {
    let tmp_inside = Path::new("/tmp");
    plan.mkdir_all(tmp_inside);
    match tmp {
        TmpSource::Mount(fd) => {
            let target = plan.at(tmp_inside);
            plan.steps.push(Step::MoveMount { fd, target });
        }
        TmpSource::HostDir => {
            plan.mount(Some(&spec.tmp_dir), tmp_inside, None, libc::MS_BIND, None);
            plan.mount(
                None,
                tmp_inside,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV,
                None,
            );
        }
        TmpSource::Tmpfs => {
            let (uid, gid) = tmp_owner;
            let data = format!(
                "size={}m,mode=1777,uid={uid},gid={gid}",
                spec.tmp_size_mb.max(1)
            );
            plan.mount(
                Some(Path::new("tmpfs")),
                tmp_inside,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(data),
            );
        }
    }

    let proc_inside = Path::new("/proc");
    plan.mkdir_all(proc_inside);
    let no_suid_dev_exec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    plan.mount(
        Some(Path::new("proc")),
        proc_inside,
        Some("proc"),
        no_suid_dev_exec,
        None,
    );

    let dev = Path::new("/dev");
    plan.mkdir_all(dev);
    let dev_flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    plan.mount(
        Some(Path::new("tmpfs")),
        dev,
        Some("tmpfs"),
        dev_flags,
        Some("size=64k,nr_inodes=64,mode=0755".into()),
    );
    for node in DEV_NODES {
        let host = Path::new("/dev").join(node);
        if probe(&host) == HostKind::File {
            plan.steps.push(Step::Touch(plan.at(&host)));
            plan.mount(Some(&host), &host, None, libc::MS_BIND, None);
        }
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        plan.steps.push(Step::Symlink {
            target: target.into(),
            link: plan.at(&dev.join(link)),
        });
    }
    plan.mount(
        None,
        dev,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | dev_flags,
        None,
    );

    plan.steps.push(Step::PivotRoot(staging.to_path_buf()));
    plan.steps.push(Step::Mount {
        source: None,
        target: "/".into(),
        fstype: None,
        flags: RO_FLAGS,
        data: None,
    });
    plan.steps
}

struct Builder {
    staging: PathBuf,
    steps: Vec<Step>,
    /// Directories already created (inside paths).
    made: BTreeSet<PathBuf>,
    /// Inside paths covered by read-only binds: nothing can be created under them.
    read_only: Vec<PathBuf>,
}

impl Builder {
    /// Where inside path `inside` is while the root is assembled.
    fn at(&self, inside: &Path) -> PathBuf {
        self.staging
            .join(inside.strip_prefix("/").unwrap_or(inside))
    }

    fn mkdir_all(&mut self, inside: &Path) {
        let mut ancestors: Vec<&Path> = inside
            .ancestors()
            .filter(|a| a.parent().is_some())
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            if self.read_only.iter().any(|ro| dir.starts_with(ro)) || self.made.contains(dir) {
                continue;
            }
            self.steps.push(Step::Mkdir(self.at(dir)));
            self.made.insert(dir.to_path_buf());
        }
    }

    fn mkdir_parents(&mut self, inside: &Path) {
        if let Some(parent) = inside.parent() {
            self.mkdir_all(parent);
        }
    }

    fn bind_read_only(&mut self, host: &Path, inside: &Path, dir: bool) {
        if dir {
            self.mkdir_all(inside);
        } else {
            self.mkdir_parents(inside);
            self.steps.push(Step::Touch(self.at(inside)));
        }
        self.mount(Some(host), inside, None, libc::MS_BIND | libc::MS_REC, None);
        self.mount(None, inside, None, RO_FLAGS, None);
        self.read_only.push(inside.to_path_buf());
    }

    fn mount(
        &mut self,
        source: Option<&Path>,
        inside: &Path,
        fstype: Option<&'static str>,
        flags: c_ulong,
        data: Option<String>,
    ) {
        let target = if inside == Path::new("/") {
            inside.to_path_buf()
        } else {
            self.at(inside)
        };
        self.steps.push(Step::Mount {
            source: source.map(Path::to_path_buf),
            target,
            fstype,
            flags,
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BindMount;

    fn spec() -> EnvironmentSpec {
        EnvironmentSpec {
            id: "e1".into(),
            program: "/var/task/bootstrap".into(),
            cwd: "/var/task".into(),
            task_root: "/srv/code".into(),
            tmp_dir: "/srv/tmp".into(),
            tmp_size_mb: 512,
            memory_mb: 128,
            pids_max: 64,
            readonly_host_paths: vec![
                "/usr".into(),
                "/bin".into(),
                "/usr/lib".into(),
                "/etc/ssl".into(),
                "/nope".into(),
            ],
            ..Default::default()
        }
    }

    fn probe(path: &Path) -> HostKind {
        match path.to_str() {
            Some("/bin") => HostKind::Symlink("usr/bin".into()),
            Some("/nope") => HostKind::Missing,
            Some(p) if p.starts_with("/dev/") => HostKind::File,
            _ => HostKind::Dir,
        }
    }

    fn steps(tmp: TmpSource) -> Vec<Step> {
        build(&spec(), Path::new("/stage"), tmp, (993, 993), probe).unwrap()
    }

    fn mounts_on(steps: &[Step], target: &str) -> Vec<(Option<PathBuf>, c_ulong)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Mount {
                    source,
                    target: t,
                    flags,
                    ..
                } if t == Path::new(target) => Some((source.clone(), *flags)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_image_root_is_bound_read_only_and_nothing_is_made_in_it() {
        let spec = EnvironmentSpec {
            root_dir: Some("/images/abc".into()),
            extra_mounts: vec![BindMount {
                host: "/srv/runtime".into(),
                inside: "/var/runtime".into(),
            }],
            ..spec()
        };
        let steps = build(
            &spec,
            Path::new("/stage"),
            TmpSource::Tmpfs,
            (993, 993),
            probe,
        )
        .unwrap();
        assert_eq!(
            mounts_on(&steps, "/stage"),
            vec![
                (Some("/images/abc".into()), libc::MS_BIND | libc::MS_REC),
                (None, RO_FLAGS),
            ]
        );
        // The image's own directories are the mount points: no mkdir, no host paths, no task.
        assert!(
            !steps.iter().any(|s| matches!(s, Step::Mkdir(_))),
            "{steps:?}"
        );
        for absent in [
            "/stage/usr",
            "/stage/var/task",
            "/stage/opt",
            "/stage/var/runtime",
        ] {
            assert!(mounts_on(&steps, absent).is_empty(), "{absent}");
        }
        for present in ["/stage/tmp", "/stage/proc", "/stage/dev"] {
            assert!(!mounts_on(&steps, present).is_empty(), "{present}");
        }
        assert_eq!(
            steps.last(),
            Some(&Step::Mount {
                source: None,
                target: "/".into(),
                fstype: None,
                flags: RO_FLAGS,
                data: None,
            })
        );
        assert!(
            spec.validate(false).is_err(),
            "process mode cannot use a root"
        );
    }

    #[test]
    fn starts_private_and_ends_pivoted_and_read_only() {
        let steps = steps(TmpSource::HostDir);
        assert_eq!(
            steps[0],
            Step::Mount {
                source: None,
                target: "/".into(),
                fstype: None,
                flags: libc::MS_REC | libc::MS_PRIVATE,
                data: None
            }
        );
        assert!(
            matches!(&steps[1], Step::Mount { fstype: Some("tmpfs"), target, .. } if target == Path::new("/stage"))
        );
        let n = steps.len();
        assert_eq!(steps[n - 2], Step::PivotRoot("/stage".into()));
        assert_eq!(
            steps[n - 1],
            Step::Mount {
                source: None,
                target: "/".into(),
                fstype: None,
                flags: RO_FLAGS,
                data: None
            }
        );
    }

    #[test]
    fn host_paths_are_read_only_binds_and_links() {
        let steps = steps(TmpSource::HostDir);
        assert_eq!(
            mounts_on(&steps, "/stage/usr"),
            [
                (Some("/usr".into()), libc::MS_BIND | libc::MS_REC),
                (None, RO_FLAGS)
            ]
        );
        assert!(steps.contains(&Step::Symlink {
            target: "usr/bin".into(),
            link: "/stage/bin".into()
        }));
        // /usr/lib comes with /usr; a missing path is skipped.
        assert!(mounts_on(&steps, "/stage/usr/lib").is_empty());
        assert!(!steps.iter().any(|s| s.describe().contains("nope")));
        // /etc is created for /etc/ssl, once.
        assert_eq!(
            steps
                .iter()
                .filter(|s| **s == Step::Mkdir("/stage/etc".into()))
                .count(),
            1
        );
        assert_eq!(mounts_on(&steps, "/stage/etc/ssl")[1], (None, RO_FLAGS));
    }

    #[test]
    fn task_opt_tmp_proc_dev() {
        let steps = steps(TmpSource::HostDir);
        assert_eq!(
            mounts_on(&steps, "/stage/var/task"),
            [
                (Some("/srv/code".into()), libc::MS_BIND | libc::MS_REC),
                (None, RO_FLAGS)
            ]
        );
        assert!(steps.contains(&Step::Mkdir("/stage/opt".into())));
        assert!(mounts_on(&steps, "/stage/opt").is_empty());
        let tmp = mounts_on(&steps, "/stage/tmp");
        assert_eq!(tmp[0], (Some("/srv/tmp".into()), libc::MS_BIND));
        assert_eq!(tmp[1].1 & libc::MS_RDONLY, 0, "/tmp stays writable");
        assert!(
            matches!(mounts_on(&steps, "/stage/proc")[..], [(Some(ref p), _)] if p == Path::new("proc"))
        );
        assert_eq!(
            mounts_on(&steps, "/stage/dev/null"),
            [(Some("/dev/null".into()), libc::MS_BIND)]
        );
        assert!(steps.contains(&Step::Symlink {
            target: "/proc/self/fd".into(),
            link: "/stage/dev/fd".into()
        }));
        let dev = mounts_on(&steps, "/stage/dev");
        assert_ne!(dev.last().unwrap().1 & libc::MS_RDONLY, 0);
    }

    #[test]
    fn tmpfs_backing_and_layers() {
        let mut s = spec();
        s.opt_dir = Some("/srv/layers".into());
        s.extra_mounts = vec![BindMount {
            host: "/srv/runtime".into(),
            inside: "/var/runtime".into(),
        }];
        let steps = build(
            &s,
            Path::new("/stage"),
            TmpSource::Tmpfs,
            (100_001, 100_002),
            probe,
        )
        .unwrap();
        assert_eq!(
            mounts_on(&steps, "/stage/opt")[0].0,
            Some("/srv/layers".into())
        );
        assert_eq!(
            mounts_on(&steps, "/stage/var/runtime")[0].0,
            Some("/srv/runtime".into())
        );
        let tmp = steps
            .iter()
            .find_map(|s| match s {
                Step::Mount { target, data, .. } if target == Path::new("/stage/tmp") => {
                    data.clone()
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(tmp, "size=512m,mode=1777,uid=100001,gid=100002");
        // /var is created once for both /var/runtime and /var/task.
        assert_eq!(
            steps
                .iter()
                .filter(|s| **s == Step::Mkdir("/stage/var".into()))
                .count(),
            1
        );
    }

    #[test]
    fn a_prepared_filesystem_is_moved_onto_tmp() {
        let steps = steps(TmpSource::Mount(42));
        assert!(steps.contains(&Step::MoveMount {
            fd: 42,
            target: "/stage/tmp".into()
        }));
        assert!(
            mounts_on(&steps, "/stage/tmp").is_empty(),
            "nothing else on /tmp"
        );
        let pivot = steps
            .iter()
            .position(|s| matches!(s, Step::PivotRoot(_)))
            .unwrap();
        let moved = steps
            .iter()
            .position(|s| matches!(s, Step::MoveMount { .. }))
            .unwrap();
        assert!(moved < pivot);
    }

    #[test]
    fn missing_extra_mount_source_is_an_error() {
        let mut s = spec();
        s.extra_mounts = vec![BindMount {
            host: "/nope".into(),
            inside: "/var/runtime".into(),
        }];
        assert!(
            build(
                &s,
                Path::new("/stage"),
                TmpSource::HostDir,
                (993, 993),
                probe
            )
            .is_err()
        );
    }

    #[test]
    fn every_step_converts_to_c() {
        for step in steps(TmpSource::Tmpfs) {
            step.to_c().unwrap();
            assert!(!step.describe().is_empty());
        }
    }
}
