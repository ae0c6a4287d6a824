//! Verification: every hostile archive is refused with the right reason; legal ones pass.

#![allow(clippy::unwrap_used)] // test helpers may panic

mod common;

use std::time::Instant;

use common::{Entry, build, legal_package};
use kindling_package::{EntryProblem, Limits, PackageError, verify_bytes};

const LIMIT: u64 = 262_144_000;

fn limits() -> Limits {
    Limits::new(LIMIT)
}

fn problem(bytes: &[u8]) -> EntryProblem {
    match verify_bytes(bytes, &limits()) {
        Err(PackageError::Entry { problem, .. }) => problem,
        other => panic!("expected an entry problem, got {other:?}"),
    }
}

#[test]
fn accepts_a_legal_package_with_unusual_content() {
    let bytes = legal_package();
    let v = verify_bytes(&bytes, &limits()).unwrap();
    assert_eq!(v.entries, 7);
    assert!(v.unzipped_size > 50);
}

#[test]
fn accepts_an_empty_archive_and_prepended_data() {
    let empty = build(&[]);
    assert_eq!(empty.len(), 22);
    assert_eq!(verify_bytes(&empty, &limits()).unwrap().entries, 0);
    // Self-extracting archives: offsets count from the start of the zip, not of the file.
    let mut sfx = b"#!/bin/sh\nexit 0\n".to_vec();
    sfx.extend(legal_package());
    assert_eq!(verify_bytes(&sfx, &limits()).unwrap().entries, 7);
}

#[test]
fn refuses_what_is_not_a_zip() {
    for bytes in [&b""[..], b"not a zip at all", b"PK\x03\x04 truncated"] {
        assert!(
            matches!(
                verify_bytes(bytes, &limits()),
                Err(PackageError::Malformed(_))
            ),
            "{bytes:?}"
        );
    }
    let legal = legal_package();
    for cut in [legal.len() / 2, legal.len() - 1, 10] {
        assert!(
            verify_bytes(&legal[..cut], &limits()).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_lying_size_is_found_after_reading_one_byte_too_many() {
    // 400 MB of zeros deflated to ~2 MB, declared as 10 bytes: the attack of issue 8.
    let zeros = vec![0u8; 400 << 20];
    let mut entry = Entry::file("bomb.bin", &zeros);
    entry.declared_size = Some(10);
    entry.crc = Some(crc32fast::hash(&zeros[..10]));
    let bytes = build(&[entry]);
    drop(zeros);
    assert!(bytes.len() < 4 << 20, "{} bytes", bytes.len());
    let started = Instant::now();
    assert!(matches!(
        problem(&bytes),
        EntryProblem::SizeMismatch { declared: 10, .. }
    ));
    // Only the first 64 KiB chunk is inflated, not 400 MB.
    assert!(
        started.elapsed().as_millis() < 500,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn declared_sizes_over_the_limit_are_refused_before_any_data() {
    let entries: Vec<Entry> = (0..3)
        .map(|i| {
            let mut e = Entry::file(format!("f{i}"), b"x");
            e.declared_size = Some(100_000_000);
            e
        })
        .collect();
    assert!(matches!(
        verify_bytes(&build(&entries), &limits()),
        Err(PackageError::TooLarge { limit: LIMIT })
    ));
    let small = Limits::new(1000);
    let bytes = build(&[
        Entry::file("a", vec![1u8; 600]),
        Entry::file("b", vec![2u8; 600]),
    ]);
    assert!(matches!(
        verify_bytes(&bytes, &small),
        Err(PackageError::TooLarge { limit: 1000 })
    ));
    assert_eq!(
        verify_bytes(&bytes, &Limits::new(1200))
            .unwrap()
            .unzipped_size,
        1200
    );
}

#[test]
fn too_many_entries_are_refused_before_reading_them() {
    let entries: Vec<Entry> = (0..5).map(|i| Entry::file(format!("f{i}"), b"x")).collect();
    let bytes = build(&entries);
    let few = Limits {
        max_entries: 4,
        ..limits()
    };
    assert!(matches!(
        verify_bytes(&bytes, &few),
        Err(PackageError::TooManyEntries { limit: 4 })
    ));
    assert!(
        verify_bytes(
            &bytes,
            &Limits {
                max_entries: 5,
                ..limits()
            }
        )
        .is_ok()
    );
}

#[test]
fn unsafe_names_are_refused() {
    for (name, expected) in [
        (&b"../evil"[..], EntryProblem::ParentComponent),
        (b"a/../../evil", EntryProblem::ParentComponent),
        (b"/etc/cron.d/evil", EntryProblem::AbsolutePath),
        (b"a\0b", EntryProblem::NulInName),
        (b"", EntryProblem::EmptyName),
    ] {
        assert_eq!(
            problem(&build(&[Entry::file(name, b"x")])),
            expected,
            "{name:?}"
        );
    }
    let long = "n".repeat(256);
    assert_eq!(
        problem(&build(&[Entry::file(&long, b"x")])),
        EntryProblem::NameTooLong
    );
}

#[test]
fn duplicates_and_file_directory_clashes_are_refused() {
    let dup = build(&[Entry::file("a.py", b"1"), Entry::file("a.py", b"2")]);
    assert_eq!(problem(&dup), EntryProblem::Duplicate);
    let dup_dir = build(&[Entry::dir("d/"), Entry::dir("d/")]);
    assert_eq!(problem(&dup_dir), EntryProblem::Duplicate);
    // Same name once a normalized path: `./a` is `a`.
    let aliases = build(&[Entry::file("a", b"1"), Entry::file("./a", b"2")]);
    assert_eq!(problem(&aliases), EntryProblem::Duplicate);
    let file_then_dir = build(&[Entry::file("x", b"1"), Entry::dir("x/")]);
    assert_eq!(problem(&file_then_dir), EntryProblem::FileDirectoryConflict);
    let dir_then_file = build(&[Entry::file("x/y", b"1"), Entry::file("x", b"2")]);
    assert_eq!(problem(&dir_then_file), EntryProblem::FileDirectoryConflict);
    let under_file = build(&[Entry::file("x", b"1"), Entry::file("x/y", b"2")]);
    assert!(matches!(
        problem(&under_file),
        EntryProblem::ParentNotDirectory(_)
    ));
    let under_link = build(&[
        Entry::symlink("l", "d"),
        Entry::dir("d/"),
        Entry::file("l/x", b"2"),
    ]);
    assert!(matches!(
        problem(&under_link),
        EntryProblem::ParentNotDirectory(_)
    ));
    // An explicit directory after files inside it is fine.
    assert!(
        verify_bytes(
            &build(&[Entry::file("d/f", b"1"), Entry::dir("d/")]),
            &limits()
        )
        .is_ok()
    );
}

#[test]
fn symlinks_must_stay_inside() {
    let ok = [
        vec![Entry::file("a", b"1"), Entry::symlink("l", "a")],
        vec![Entry::file("d/a", b"1"), Entry::symlink("d/e/l", "../a")],
        vec![Entry::symlink("dangling", "nowhere/at/all")],
        vec![
            Entry::dir("s/"),
            Entry::symlink("s/self", "."),
            Entry::symlink("l", "s/self/.."),
        ],
    ];
    for entries in ok {
        assert!(
            verify_bytes(&build(&entries), &limits()).is_ok(),
            "{entries:?}"
        );
    }
    let bad: [(Vec<Entry>, EntryProblem); 7] = [
        (
            vec![Entry::symlink("l", "../outside")],
            EntryProblem::SymlinkEscapes,
        ),
        (
            vec![Entry::symlink("d/l", "../../etc")],
            EntryProblem::SymlinkEscapes,
        ),
        (
            vec![Entry::symlink("l", "/etc/passwd")],
            EntryProblem::AbsoluteSymlink,
        ),
        (
            vec![Entry::symlink("l", "")],
            EntryProblem::BadSymlinkTarget,
        ),
        (
            vec![Entry::symlink("l", "a\0b")],
            EntryProblem::BadSymlinkTarget,
        ),
        // Lexically inside, physically outside: `s` is the root, so `s/..` is its parent.
        (
            vec![Entry::symlink("s", "."), Entry::symlink("l", "s/..")],
            EntryProblem::SymlinkEscapes,
        ),
        (
            vec![Entry::symlink("a", "b"), Entry::symlink("b", "a")],
            EntryProblem::SymlinkLoop,
        ),
    ];
    for (entries, expected) in bad {
        assert_eq!(problem(&build(&entries)), expected, "{entries:?}");
    }
}

#[test]
fn corrupt_data_is_refused() {
    let mut bad_crc = Entry::file("a", b"hello world");
    bad_crc.crc = Some(1234);
    assert_eq!(problem(&build(&[bad_crc])), EntryProblem::BadCrc);

    let mut truncated = Entry::file("a", vec![9u8; 100_000]);
    let packed = common::deflate(&truncated.data);
    truncated.raw_data = Some(packed[..packed.len() / 2].to_vec());
    assert!(matches!(
        problem(&build(&[truncated])),
        EntryProblem::Truncated | EntryProblem::SizeMismatch { .. } | EntryProblem::CorruptData
    ));

    let mut garbage = Entry::file("a", b"some text");
    garbage.raw_data = Some(vec![0xff; 40]);
    assert_eq!(problem(&build(&[garbage])), EntryProblem::CorruptData);

    let mut encrypted = Entry::file("a", b"secret");
    encrypted.flags = 1;
    assert_eq!(problem(&build(&[encrypted])), EntryProblem::Encrypted);
    let mut aes = Entry::file("a", b"secret");
    aes.method = 99;
    assert_eq!(problem(&build(&[aes])), EntryProblem::Encrypted);
    let mut bzip2 = Entry::file("a", b"data");
    bzip2.method = 12;
    assert_eq!(
        problem(&build(&[bzip2])),
        EntryProblem::UnsupportedCompression(12)
    );

    let mut stored_lie = Entry::file("a", b"0123456789").stored();
    stored_lie.declared_size = Some(5);
    assert!(matches!(
        problem(&build(&[stored_lie])),
        EntryProblem::SizeMismatch { .. }
    ));
}

#[test]
fn special_files_are_refused() {
    for mode in [0o020_644, 0o060_644, 0o010_644, 0o140_644] {
        assert_eq!(
            problem(&build(&[Entry::file("dev", b"").mode(mode)])),
            EntryProblem::UnsupportedType,
            "{mode:o}"
        );
    }
    let mut dir_with_data = Entry::dir("d/");
    dir_with_data.data = b"payload".to_vec();
    assert_eq!(
        problem(&build(&[dir_with_data])),
        EntryProblem::DirectoryWithData
    );
}

#[test]
fn setuid_and_friends_are_accepted_and_stripped_later() {
    let bytes = build(&[
        Entry::file("suid", b"#!/bin/sh\n").mode(0o104_755),
        Entry::file("sgid", b"#!/bin/sh\n").mode(0o102_755),
        Entry::dir("sticky/").mode(0o041_777),
    ]);
    assert!(verify_bytes(&bytes, &limits()).is_ok());
}

#[test]
fn overlapping_entries_and_header_mismatches_are_refused() {
    // Two names for the same bytes (the overlapping-file zip bomb).
    let mut second = Entry::file("b", b"same data");
    second.share_header_of = Some(0);
    second.data = b"same data".to_vec();
    let overlap = build(&[Entry::file("a", b"same data"), second]);
    assert_eq!(problem(&overlap), EntryProblem::Overlap);

    let mut renamed = Entry::file("innocent.txt", b"x");
    renamed.local_name = Some(b"../../evil.sh".to_vec());
    assert_eq!(problem(&build(&[renamed])), EntryProblem::HeaderMismatch);
}

#[test]
fn verification_is_fast_for_a_realistic_package() {
    // ~40 MB of varied, compressible content in 4000 files.
    let mut entries = Vec::new();
    let mut seed = 0x1234_5678u64;
    for i in 0..4000 {
        let mut data = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            data.push(b"abcdefghij\n"[(seed % 11) as usize]);
        }
        entries.push(Entry::file(format!("pkg/mod{}/file{i}.py", i % 50), data));
    }
    let bytes = build(&entries);
    let started = Instant::now();
    let v = verify_bytes(&bytes, &limits()).unwrap();
    let took = started.elapsed();
    assert_eq!(v.unzipped_size, 40_000_000);
    eprintln!(
        "verified {} zipped bytes ({} unzipped) in {took:?}",
        bytes.len(),
        v.unzipped_size
    );
}

#[test]
fn accepts_zip64_records() {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    let big = SimpleFileOptions::default().large_file(true);
    w.start_file("a.txt", big).unwrap();
    w.write_all(b"zip64 entry").unwrap();
    w.start_file("b.txt", SimpleFileOptions::default()).unwrap();
    w.write_all(b"plain entry").unwrap();
    w.finish().unwrap();
    let v = verify_bytes(buf.get_ref(), &limits()).unwrap();
    assert_eq!((v.entries, v.unzipped_size), (2, 22));
}

#[test]
fn deep_paths_cannot_multiply_memory() {
    // Each entry implies 100 directories of its own: 3 entries make 303 nodes, over the 2 per
    // entry a tree may hold.
    let entries: Vec<Entry> = (0..3)
        .map(|i| {
            let deep = vec!["d"; 100].join("/");
            Entry::file(format!("e{i}/{deep}/f"), b"x")
        })
        .collect();
    let bytes = build(&entries);
    let few = Limits {
        max_entries: 100,
        ..limits()
    };
    assert!(matches!(
        verify_bytes(&bytes, &few),
        Err(PackageError::TooManyPaths { limit: 200 })
    ));
    assert!(verify_bytes(&bytes, &limits()).is_ok());
}
