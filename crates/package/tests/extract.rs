//! Extraction: modes, layers laid over each other, links, limits and atomicity.

#![allow(clippy::unwrap_used)] // test helpers may panic

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Entry, build, legal_package};
use kindling_package::{EntryProblem, Limits, PackageError, extract, verify_bytes};

fn limits() -> Limits {
    Limits::new(262_144_000)
}

fn write_zip(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// Every path under `root` (not following links), with its lstat mode.
fn walk(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.push((entry.path(), meta.mode()));
        }
    }
    out
}

#[test]
fn special_bits_never_reach_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = write_zip(
        tmp.path(),
        "p.zip",
        &build(&[
            Entry::file("suid", b"#!/bin/sh\n").mode(0o104_755),
            Entry::file("sgid", b"#!/bin/sh\n").mode(0o102_755),
            Entry::file("world-writable", b"x").mode(0o100_777),
            Entry::file("owner-only", b"x").mode(0o100_600),
            Entry::file("no-mode", b"x").mode(0),
            Entry::dir("sticky/").mode(0o041_777),
            Entry::file("sticky/inside", b"x").mode(0o107_777),
        ]),
    );
    let dest = tmp.path().join("out");
    let done = extract(&[&zip], &dest, &limits()).unwrap();
    assert_eq!(done.files, 6);
    let modes: std::collections::BTreeMap<String, u32> = walk(&dest)
        .into_iter()
        .map(|(p, m)| {
            (
                p.strip_prefix(&dest).unwrap().display().to_string(),
                m & 0o7777,
            )
        })
        .collect();
    let expected: std::collections::BTreeMap<String, u32> = [
        ("suid", 0o755),
        ("sgid", 0o755),
        ("world-writable", 0o755),
        ("owner-only", 0o644),
        ("no-mode", 0o644),
        ("sticky", 0o755),
        ("sticky/inside", 0o755),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m))
    .collect();
    assert_eq!(modes, expected);
    assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn a_legal_package_unpacks_completely() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = write_zip(tmp.path(), "p.zip", &legal_package());
    let dest = tmp.path().join("task");
    extract(&[&zip], &dest, &limits()).unwrap();
    assert!(dest.join("empty").is_dir());
    let deep = (0..40)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/");
    assert_eq!(fs::read(dest.join(deep).join("leaf.txt")).unwrap(), b"deep");
    assert_eq!(
        fs::read(dest.join("données/日本語/ünïcödé.txt")).unwrap(),
        b"ok"
    );
    assert_eq!(
        fs::read_link(dest.join("link-to-app")).unwrap(),
        Path::new("app.py")
    );
    assert_eq!(
        fs::read(dest.join("link-to-app")).unwrap(),
        fs::read(dest.join("app.py")).unwrap()
    );
    assert!(dest.join("bin/up/日本語").is_dir());
    assert_eq!(
        fs::metadata(dest.join("bin/tool")).unwrap().mode() & 0o777,
        0o755
    );
    // Nothing else is left next to it.
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn layers_are_laid_over_each_other_without_following_links() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let a = write_zip(
        tmp.path(),
        "a.zip",
        &build(&[
            Entry::file("bin/tool", b"a"),
            Entry::file("lib/x", b"a"),
            Entry::file("becomes-dir", b"a"),
            Entry::dir("becomes-file/"),
            Entry::file("becomes-file/child", b"a"),
            Entry::dir("real/"),
            Entry::symlink("link", "real"),
        ]),
    );
    let b = write_zip(
        tmp.path(),
        "b.zip",
        &build(&[
            Entry::file("bin/tool", b"b"),
            Entry::file("becomes-dir/inner", b"b"),
            Entry::file("becomes-file", b"b"),
            // Beneath the earlier layer's link: the link is replaced, nothing lands in `real`.
            Entry::file("link/written", b"b"),
        ]),
    );
    let dest = tmp.path().join("opt");
    extract(&[&a, &b], &dest, &limits()).unwrap();
    let read = |p: &str| fs::read_to_string(dest.join(p)).unwrap();
    assert_eq!(read("bin/tool"), "b");
    assert_eq!(read("lib/x"), "a");
    assert_eq!(read("becomes-dir/inner"), "b");
    assert_eq!(read("becomes-file"), "b");
    assert!(fs::symlink_metadata(dest.join("link")).unwrap().is_dir());
    assert_eq!(read("link/written"), "b");
    assert!(fs::read_dir(dest.join("real")).unwrap().next().is_none());
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn a_link_from_one_layer_is_checked_against_the_merged_tree() {
    let tmp = tempfile::tempdir().unwrap();
    // Alone, each layer is fine; together `l -> s/..` with `s -> .` (the root) is the root's
    // parent.
    let a = write_zip(tmp.path(), "a.zip", &build(&[Entry::symlink("s", ".")]));
    let b = write_zip(tmp.path(), "b.zip", &build(&[Entry::symlink("l", "s/..")]));
    assert!(verify_bytes(&fs::read(&a).unwrap(), &limits()).is_ok());
    assert!(verify_bytes(&fs::read(&b).unwrap(), &limits()).is_ok());
    let dest = tmp.path().join("opt");
    match extract(&[&a, &b], &dest, &limits()) {
        Err(PackageError::Entry { problem, .. }) => {
            assert_eq!(problem, EntryProblem::SymlinkEscapes)
        }
        other => panic!("{other:?}"),
    }
    assert!(!dest.exists());
}

#[test]
fn a_bomb_stops_at_the_limit_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // 50 MB declared as 1000 bytes: stops at the 1001st byte, keeps nothing.
    let mut lying = Entry::file("bomb.bin", vec![0u8; 50 << 20]);
    lying.declared_size = Some(1000);
    lying.crc = Some(0);
    let zip = write_zip(
        tmp.path(),
        "bomb.zip",
        &build(&[Entry::file("ok.txt", b"fine"), lying]),
    );
    let dest = tmp.path().join("code");
    let err = extract(&[&zip], &dest, &limits()).unwrap_err();
    assert!(
        matches!(
            err,
            PackageError::Entry {
                problem: EntryProblem::SizeMismatch { declared: 1000, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!dest.exists());
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bomb.zip")]);

    // Within its declared sizes but over the budget.
    let big = write_zip(
        tmp.path(),
        "big.zip",
        &build(&[Entry::file("a", vec![1u8; 5000])]),
    );
    let err = extract(&[&big], &dest, &Limits::new(4096)).unwrap_err();
    assert!(
        matches!(err, PackageError::TooLarge { limit: 4096 }),
        "{err}"
    );
    assert!(!dest.exists());
}

#[test]
fn the_budget_covers_all_layers_together() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_zip(
        tmp.path(),
        "a.zip",
        &build(&[Entry::file("a", vec![1u8; 3000])]),
    );
    let b = write_zip(
        tmp.path(),
        "b.zip",
        &build(&[Entry::file("b", vec![2u8; 3000])]),
    );
    let dest = tmp.path().join("opt");
    assert!(matches!(
        extract(&[&a, &b], &dest, &Limits::new(5000)),
        Err(PackageError::TooLarge { .. })
    ));
    assert_eq!(
        extract(&[&a, &b], &dest, &Limits::new(6000))
            .unwrap()
            .unzipped_size,
        6000
    );
}

#[test]
fn an_existing_destination_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = write_zip(tmp.path(), "p.zip", &build(&[Entry::file("new", b"1")]));
    let dest = tmp.path().join("code");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("old"), b"0").unwrap();
    extract(&[&zip], &dest, &limits()).unwrap();
    assert!(dest.join("old").exists() && !dest.join("new").exists());
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        2,
        "no temporary directory left"
    );
}

#[test]
fn modes_do_not_depend_on_where_the_parent_is() {
    let tmp = tempfile::tempdir().unwrap();
    let private = tmp.path().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let zip = write_zip(tmp.path(), "p.zip", &build(&[Entry::file("f", b"1")]));
    let dest = private.join("code");
    extract(&[&zip], &dest, &limits()).unwrap();
    assert_eq!(fs::metadata(&private).unwrap().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(dest.join("f")).unwrap().mode() & 0o777, 0o644);
}
