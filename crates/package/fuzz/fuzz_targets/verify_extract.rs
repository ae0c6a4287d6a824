//! Any bytes as a package: verification and extraction never panic, agree with each other,
//! and never write outside the destination or beyond the limit.

#![no_main]

use std::fs;

use kindling_package::{Limits, PackageError, extract, verify_bytes};
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_unzipped_bytes: LIMIT,
        max_entries: 256,
    };
    let verified = verify_bytes(data, &limits);
    let Ok(tmp) = tempfile::tempdir() else { return };
    let zip = tmp.path().join("p.zip");
    if fs::write(&zip, data).is_err() {
        return;
    }
    let root = tmp.path().join("root");
    if fs::create_dir(&root).is_err() {
        return;
    }
    let extracted = extract(&[&zip], &root.join("out"), &limits);
    if let Err(PackageError::Write { .. } | PackageError::Read(_)) = &extracted {
        panic!("host I/O error: {extracted:?}");
    }
    assert_eq!(verified.is_ok(), extracted.is_ok(), "{verified:?} vs {extracted:?}");
    let outside: Vec<_> = fs::read_dir(tmp.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(outside.len(), 2, "{outside:?}");
    if let Ok(done) = extracted {
        assert!(done.unzipped_size <= LIMIT);
    } else {
        assert_eq!(fs::read_dir(&root).map(|d| d.count()).unwrap_or(0), 0);
    }
});
