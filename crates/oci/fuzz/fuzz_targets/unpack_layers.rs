//! Any bytes as one or two image layers: verification and unpacking never panic, a layer
//! verification refuses is never unpacked, and nothing outside the root is written, removed
//! or has its mode changed (a sentinel directory beside the root, which a `..` link reaches).

#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kindling_oci::unpack::{Layer, UnpackLimits, unpack_layers, verify_layers};
use libfuzzer_sys::fuzz_target;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .map(|m| m.permissions().mode())
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    // First byte: where the second layer starts (0: a single layer).
    let (split, data) = match data.split_first() {
        Some((&s, rest)) => (s as usize * 64, rest),
        None => return,
    };
    let parts: Vec<&[u8]> = if split == 0 || split >= data.len() {
        vec![data]
    } else {
        vec![&data[..split], &data[split..]]
    };
    let Ok(tmp) = tempfile::tempdir() else { return };
    let outside = tmp.path().join("outside");
    let victim = outside.join("victim");
    if fs::create_dir_all(&victim).is_err()
        || fs::write(outside.join("f"), b"x").is_err()
        || fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).is_err()
    {
        return;
    }
    let mut paths = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let path = tmp.path().join(format!("l{i}"));
        if fs::write(&path, p).is_err() {
            return;
        }
        paths.push(path);
    }
    let layers: Vec<Layer<'_>> = paths
        .iter()
        .map(|path| Layer { path, digest: None })
        .collect();
    let limits = UnpackLimits {
        max_bytes: 1 << 20,
        max_entries: 512,
        max_resolve_steps: 1 << 20,
    };
    let verified = verify_layers(&layers, &limits);
    let root = tmp.path().join("root");
    let unpacked = unpack_layers(&layers, &root, &limits);
    if verified.is_err() {
        assert!(unpacked.is_err(), "{verified:?} vs {unpacked:?}");
    }
    if let Ok(stats) = &unpacked {
        assert!(stats.bytes <= limits.max_bytes);
    } else {
        assert!(!root.exists());
    }
    let mut beside: Vec<_> = fs::read_dir(tmp.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    beside.sort();
    let expected = paths.len() + 1 + usize::from(unpacked.is_ok());
    assert_eq!(beside.len(), expected, "{beside:?}");
    assert_eq!(mode(&victim) & 0o7777, 0o700, "host directory mode changed");
    assert_eq!(fs::read(outside.join("f")).ok().as_deref(), Some(&b"x"[..]));
    assert_eq!(fs::read_dir(&outside).map(|d| d.count()).unwrap_or(0), 2);
    assert_eq!(fs::read_dir(&victim).map(|d| d.count()).unwrap_or(9), 0);
});
