//! Property tests: hostile archives (random names with `..`, `/`, NUL and very long
//! components, links, special files, lying sizes and CRCs, flipped and cut bytes of valid
//! archives) never panic, never write outside the destination, never write more than the
//! limit, never leave special mode bits, and extraction accepts exactly what verification
//! accepts. Bounded: a few hundred cases, a few seconds.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{Entry, build, legal_package};
use kindling_package::{Limits, PackageError, extract, verify_bytes};
use proptest::prelude::*;

const LIMIT: u64 = 64 * 1024;

fn component() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"..".to_vec()),
        Just(b".".to_vec()),
        Just(Vec::new()),
        Just(b"a".to_vec()),
        Just(b"b".to_vec()),
        Just("ü日".as_bytes().to_vec()),
        Just(b"x\0y".to_vec()),
        Just(vec![b'L'; 300]),
        "[a-c]{1,3}".prop_map(String::into_bytes),
    ]
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(component(), 1..4),
        prop::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(|(parts, leading, trailing)| {
            let mut name = if leading { b"/".to_vec() } else { Vec::new() };
            name.extend(parts.join(&b'/'));
            if trailing {
                name.push(b'/');
            }
            name
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        name(),
        0u8..5,
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..3000),
        name(),
        prop_oneof![Just(0u16), Just(8u16), Just(8u16), Just(12u16)],
        prop::option::weighted(0.15, 0u64..200_000),
        prop::option::weighted(0.1, any::<u32>()),
    )
        .prop_map(|(name, kind, bits, data, target, method, lie, crc)| {
            let special = u32::from(bits) & 0o7777;
            let mut e = match kind {
                0 | 1 => Entry::file(name, data).mode(0o100_000 | special),
                2 => Entry::dir(name).mode(0o040_000 | special),
                3 => Entry::symlink(name, target),
                _ => Entry::file(name, data).mode(0o010_644),
            };
            if kind != 3 {
                e.method = method;
            }
            e.declared_size = lie;
            e.crc = crc;
            e
        })
}

fn archive() -> impl Strategy<Value = Vec<u8>> {
    let built = prop::collection::vec(entry(), 0..10).prop_map(|entries| build(&entries));
    let legal = Just(legal_package());
    (
        prop_oneof![built, legal],
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        prop::option::weighted(0.1, any::<prop::sample::Index>()),
    )
        .prop_map(|(mut bytes, flips, cut)| {
            if !bytes.is_empty() {
                for (at, value) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
                if let Some(at) = cut {
                    bytes.truncate(at.index(bytes.len()));
                }
            }
            bytes
        })
}

/// Every path under `root` (links not followed).
fn walk(root: &Path, out: &mut Vec<(std::path::PathBuf, fs::Metadata)>) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let meta = fs::symlink_metadata(entry.path()).expect("lstat");
        if meta.is_dir() {
            walk(&entry.path(), out);
        }
        out.push((entry.path(), meta));
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_archives_are_contained(bytes in archive()) {
        let limits = Limits { max_unzipped_bytes: LIMIT, max_entries: 64 };
        let verified = verify_bytes(&bytes, &limits);

        let tmp = tempfile::tempdir().expect("tempdir");
        let zip = tmp.path().join("p.zip");
        fs::write(&zip, &bytes).expect("write zip");
        fs::write(tmp.path().join("sentinel"), b"keep").expect("sentinel");
        let root = tmp.path().join("root");
        fs::create_dir(&root).expect("root");
        let dest = root.join("out");
        let extracted = extract(&[&zip], &dest, &limits);

        if let Err(e @ (PackageError::Write { .. } | PackageError::Read(_))) = &extracted {
            prop_assert!(false, "host I/O error on a hostile archive: {e}");
        }
        prop_assert_eq!(verified.is_ok(), extracted.is_ok(),
            "verify: {:?}, extract: {:?}", verified, extracted);
        // Nothing appeared or changed outside the destination.
        prop_assert_eq!(names(tmp.path()), vec!["p.zip", "root", "sentinel"]);
        prop_assert_eq!(fs::read(tmp.path().join("sentinel")).expect("sentinel"), b"keep");
        let inside = names(&root);
        match &extracted {
            Ok(done) => {
                prop_assert_eq!(inside, vec!["out"]);
                let mut all = Vec::new();
                walk(&dest, &mut all);
                let mut bytes_written = 0u64;
                for (path, meta) in &all {
                    let kind = meta.file_type();
                    if !kind.is_symlink() {
                        // (A link's own mode is always 0777 on Linux and means nothing.)
                        prop_assert_eq!(meta.mode() & 0o7000, 0, "{} has special bits", path.display());
                        prop_assert_eq!(meta.mode() & 0o022, 0, "{} is writable by others", path.display());
                    }
                    prop_assert!(kind.is_file() || kind.is_dir() || kind.is_symlink());
                    if kind.is_file() {
                        bytes_written += meta.len();
                    }
                    if kind.is_symlink() {
                        let target = fs::read_link(path).expect("readlink");
                        prop_assert!(target.is_relative());
                    }
                }
                prop_assert!(bytes_written <= done.unzipped_size && done.unzipped_size <= LIMIT);
                prop_assert_eq!(Some(done.unzipped_size), verified.ok().map(|v| v.unzipped_size));
            }
            Err(_) => prop_assert!(inside.is_empty(), "left behind: {:?}", inside),
        }
    }

    #[test]
    fn verification_never_panics_on_random_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        eocd in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if eocd {
            // Give the parser an end record to chew on.
            bytes.extend_from_slice(b"PK\x05\x06");
            bytes.extend_from_slice(&[0u8; 18]);
        }
        let _ = verify_bytes(&bytes, &Limits::new(LIMIT));
    }
}
