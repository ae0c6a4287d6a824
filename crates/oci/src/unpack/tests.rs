use std::io::Write;

use super::*;

/// A tar entry for tests: raw name bytes (so hostile names can be written).
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
}

fn header(name: &str, kind: EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(1234);
    h.set_gid(1234);
    h.set_cksum();
    h
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::File(name, data, mode) => {
                let h = header(name, EntryType::Regular, data.len() as u64, *mode);
                b.append(&h, *data).unwrap();
            }
            E::Dir(name, mode) => b
                .append(&header(name, EntryType::Directory, 0, *mode), &[][..])
                .unwrap(),
            E::Symlink(name, target) | E::Hardlink(name, target) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    EntryType::Symlink
                } else {
                    EntryType::Link
                };
                let mut h = header(name, kind, 0, 0o777);
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Char(name) => b
                .append(&header(name, EntryType::Char, 0, 0o666), &[][..])
                .unwrap(),
        }
    }
    b.into_inner().unwrap()
}

/// A tar with GNU long names: `(path, None)` a file (a directory when it ends in `/`),
/// `(path, Some(target))` a symbolic link.
fn long_tar(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, target) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(0);
        match target {
            Some(t) => {
                h.set_entry_type(EntryType::Symlink);
                b.append_link(&mut h, name, t).unwrap();
            }
            None if name.ends_with('/') => {
                h.set_entry_type(EntryType::Directory);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
            None => b.append_data(&mut h, name, &[][..]).unwrap(),
        }
    }
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn layer_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn mode(p: &Path) -> u32 {
    p.symlink_metadata().unwrap().permissions().mode() & 0o7777
}

fn l(path: &Path) -> Layer<'_> {
    Layer { path, digest: None }
}

fn limits() -> UnpackLimits {
    UnpackLimits::new(1 << 20)
}

#[test]
fn layers_apply_in_order_with_modes_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let a = layer_file(
        dir.path(),
        "a",
        &gz(&tar_of(&[
            E::Dir("./", 0o755),
            E::Dir("./usr/", 0o755),
            E::File("./usr/tool", b"v1", 0o4755),
            E::File("etc/conf", b"x", 0o2644),
            E::Symlink("bin", "usr"),
            E::Dir("data/", 0o700),
            E::Char("dev/null"),
        ])),
    );
    let b = layer_file(
        dir.path(),
        "b",
        &tar_of(&[
            E::File("usr/tool", b"v2", 0o755),
            E::Hardlink("usr/tool2", "usr/tool"),
        ]),
    );
    let root = dir.path().join("root");
    let stats = unpack_layers(&[l(&a), l(&b)], &root, &limits()).unwrap();
    assert_eq!(fs::read(root.join("usr/tool")).unwrap(), b"v2");
    assert_eq!(fs::read(root.join("bin/tool")).unwrap(), b"v2");
    assert_eq!(fs::read(root.join("usr/tool2")).unwrap(), b"v2");
    assert_eq!(mode(&root.join("usr/tool")), 0o755);
    assert_eq!(mode(&root.join("etc/conf")), 0o644, "setgid stripped");
    assert_eq!(mode(&root.join("data")), 0o700);
    assert_eq!(mode(&root), 0o755);
    assert_eq!(stats.skipped, 1, "the device node is left out");
    assert!(root.join("dev").is_dir() && !root.join("dev/null").exists());
    assert!(root.join("proc").is_dir() && root.join("tmp").is_dir());
    assert_eq!(stats.bytes, 2 + 1 + 2);
    let verified = verify_layers(&[l(&a), l(&b)], &limits()).unwrap();
    assert_eq!(verified.bytes, stats.bytes);
    // Nothing left beside the root.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn whiteouts_remove_and_opaque_directories_empty() {
    let dir = tempfile::tempdir().unwrap();
    let a = layer_file(
        dir.path(),
        "a",
        &tar_of(&[
            E::File("app/old.py", b"1", 0o644),
            E::File("app/keep.py", b"1", 0o644),
            E::File("cfg/a", b"1", 0o644),
            E::File("cfg/b", b"1", 0o644),
        ]),
    );
    let b = layer_file(
        dir.path(),
        "b",
        &tar_of(&[
            E::File("app/.wh.old.py", b"", 0o644),
            E::File("cfg/new", b"2", 0o644),
            E::File("cfg/.wh..wh..opq", b"", 0o644),
            E::File(".wh.missing", b"", 0o644),
        ]),
    );
    let root = dir.path().join("root");
    unpack_layers(&[l(&a), l(&b)], &root, &limits()).unwrap();
    assert!(!root.join("app/old.py").exists());
    assert!(root.join("app/keep.py").exists());
    assert!(!root.join("cfg/a").exists() && !root.join("cfg/b").exists());
    assert_eq!(fs::read(root.join("cfg/new")).unwrap(), b"2");
    assert!(!root.join("app/.wh.old.py").exists());
}

#[test]
fn nothing_is_written_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    // A link to an absolute host path, then a file through it: lands inside the root.
    let a = layer_file(
        dir.path(),
        "a",
        &tar_of(&[
            E::Symlink("escape", outside.to_str().unwrap()),
            E::Symlink("up", "../../../../.."),
        ]),
    );
    let b = layer_file(
        dir.path(),
        "b",
        &tar_of(&[
            E::File("escape/pwned", b"x", 0o644),
            E::File("up/pwned2", b"x", 0o644),
        ]),
    );
    let root = dir.path().join("root");
    unpack_layers(&[l(&a), l(&b)], &root, &limits()).unwrap();
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing outside"
    );
    assert!(
        root.join(outside.strip_prefix("/").unwrap())
            .join("pwned")
            .exists()
    );
    assert!(root.join("pwned2").exists(), "'..' stops at the root");
    assert!(!dir.path().join("pwned2").exists());

    for (name, bad) in [
        ("dotdot", tar_of(&[E::File("../evil", b"x", 0o644)])),
        ("deep", tar_of(&[E::File("a/../../evil", b"x", 0o644)])),
        ("hardlink", tar_of(&[E::Hardlink("h", "../../etc/passwd")])),
        (
            "hardlink-missing",
            tar_of(&[E::Hardlink("h", "etc/passwd")]),
        ),
        (
            "hardlink-self",
            tar_of(&[E::File("a", b"x", 0o644), E::Hardlink("./a", "a")]),
        ),
        (
            "too-deep",
            long_tar(&[(&format!("{}x", "a/".repeat(128)), None)]),
        ),
        (
            "too-deep-through-a-link",
            long_tar(&[
                (&"d/".repeat(100), None),
                ("l", Some(&"d/".repeat(100))),
                (&format!("l/{}x", "e/".repeat(60)), None),
            ]),
        ),
        (
            "hardlink-into-itself",
            tar_of(&[E::File("d/a", b"x", 0o644), E::Hardlink("d", "d/a")]),
        ),
        (
            "hardlink-self-through-link",
            tar_of(&[
                E::File("d/a", b"x", 0o644),
                E::Symlink("l", "d"),
                E::Hardlink("l/a", "d/a"),
            ]),
        ),
    ] {
        let p = layer_file(dir.path(), name, &bad);
        let dest = dir.path().join(format!("r-{name}"));
        let err = unpack_layers(&[l(&p)], &dest, &limits()).unwrap_err();
        assert!(matches!(err, UnpackError::Refused { .. }), "{name}: {err}");
        assert!(err.is_invalid_image());
        assert!(!dest.exists());
    }
    assert!(!dir.path().join("evil").exists());
}

#[test]
fn corrupt_and_oversized_layers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = gz(&tar_of(&[E::File("f", &[7u8; 4096], 0o644)]));
    let truncated = layer_file(dir.path(), "t", &good[..good.len() - 10]);
    let err = verify_layers(&[l(&truncated)], &limits()).unwrap_err();
    assert!(matches!(err, UnpackError::Corrupt { .. }), "{err}");
    let garbage = layer_file(dir.path(), "g", &[0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(matches!(
        verify_layers(&[l(&garbage)], &limits()),
        Err(UnpackError::Corrupt { .. })
    ));
    let text = layer_file(dir.path(), "x", &[b'x'; 1024]);
    assert!(matches!(
        verify_layers(&[l(&text)], &limits()),
        Err(UnpackError::Corrupt { .. })
    ));
    let empty = layer_file(dir.path(), "e", b"");
    assert!(matches!(
        verify_layers(&[l(&empty)], &limits()),
        Err(UnpackError::Corrupt { .. })
    ));
    let zstd = layer_file(dir.path(), "z", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0]);
    assert!(matches!(
        verify_layers(&[l(&zstd)], &limits()),
        Err(UnpackError::Unsupported { .. })
    ));
    let ok = layer_file(dir.path(), "ok", &good);
    let small = UnpackLimits::new(4095);
    assert!(matches!(
        verify_layers(&[l(&ok)], &small),
        Err(UnpackError::TooLarge { limit: 4095 })
    ));
    assert_eq!(verify_layers(&[l(&ok)], &limits()).unwrap().bytes, 4096);
}

#[test]
fn layer_digests_are_checked_while_reading() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = gz(&tar_of(&[E::File("f", b"data", 0o644)]));
    let p = layer_file(dir.path(), "l", &bytes);
    let right = Digest::of(&bytes);
    let wrong = Digest::of(b"other");
    let ok = Layer {
        path: &p,
        digest: Some(&right),
    };
    assert_eq!(verify_layers(&[ok], &limits()).unwrap().bytes, 4);
    let bad = Layer {
        path: &p,
        digest: Some(&wrong),
    };
    let err = unpack_layers(&[bad], &dir.path().join("root"), &limits()).unwrap_err();
    assert!(matches!(err, UnpackError::DigestMismatch { .. }), "{err}");
    assert!(err.is_invalid_image());
    assert!(!dir.path().join("root").exists());
}

#[test]
fn directory_modes_are_never_applied_through_a_later_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(outside.join("victim")).unwrap();
    fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o700)).unwrap();
    // `x/victim` is a directory whose mode is applied at the end; by then `x` is a link out of
    // the root (absolute in one layer, relative in the next).
    let a = layer_file(
        dir.path(),
        "a",
        &tar_of(&[
            E::Dir("x/victim/", 0o777),
            E::Symlink("x", outside.to_str().unwrap()),
        ]),
    );
    let b = layer_file(
        dir.path(),
        "b",
        &tar_of(&[E::Dir("y/outside/victim/", 0o751), E::Symlink("y", "..")]),
    );
    let root = dir.path().join("root");
    unpack_layers(&[l(&a), l(&b)], &root, &limits()).unwrap();
    assert_eq!(
        mode(&outside.join("victim")),
        0o700,
        "host directory untouched"
    );
}

#[test]
fn extension_headers_and_trailing_data_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let big = (BETWEEN_ENTRIES + 1024) as usize;
    // A GNU long name of 4 MiB + 1 KiB: the tar reader would buffer it whole (of any size).
    let mut long = tar::Builder::new(Vec::new());
    long.append(
        &header("././@LongLink", EntryType::GNULongName, big as u64, 0o644),
        &vec![b'a'; big][..],
    )
    .unwrap();
    long.append(&header("x", EntryType::Regular, 0, 0o644), &[][..])
        .unwrap();
    // Zeros after the end of the archive, read only to reach the gzip trailer.
    let mut trailing = tar_of(&[E::File("f", b"x", 0o644)]);
    trailing.resize(trailing.len() + big, 0);
    // A device node carrying data: counted against max_bytes.
    let mut dev = tar::Builder::new(Vec::new());
    dev.append(
        &header("dev/x", EntryType::Char, 4096, 0o644),
        &[0u8; 4096][..],
    )
    .unwrap();
    for (name, bytes, limit) in [
        (
            "long",
            gz(&long.into_inner().unwrap()),
            UnpackLimits::new(64 << 20),
        ),
        ("trailing", gz(&trailing), UnpackLimits::new(64 << 20)),
        ("dev", dev.into_inner().unwrap(), UnpackLimits::new(4095)),
    ] {
        let p = layer_file(dir.path(), name, &bytes);
        let err = verify_layers(&[l(&p)], &limit).unwrap_err();
        let shown: String = err.to_string().chars().take(300).collect();
        match name {
            "dev" => assert!(matches!(err, UnpackError::TooLarge { .. }), "{shown}"),
            _ => assert!(
                matches!(&err, UnpackError::Corrupt { message, .. } if message.contains("outside any entry")),
                "{name}: {shown}"
            ),
        }
    }
}

/// A layer of `files` empty files in one directory `depth` levels deep.
fn deep_layer(depth: usize, files: usize) -> Vec<u8> {
    let dir = "d/".repeat(depth);
    let names: Vec<String> = (0..files).map(|i| format!("{dir}f{i}")).collect();
    let mut entries: Vec<(&str, Option<&str>)> = vec![(&dir, None)];
    entries.extend(names.iter().map(|n| (n.as_str(), None)));
    long_tar(&entries)
}

#[test]
fn parents_resolved_once_keep_deep_images_linear() {
    let dir = tempfile::tempdir().unwrap();
    // 500 files 120 levels deep: walking every parent from the root would cost
    // 500 x 120 x 121 / 2 = 3.6M components, remembering them ~7,300.
    let p = layer_file(dir.path(), "deep", &deep_layer(120, 500));
    // (Long names are read outside entries' data: they count toward max_bytes.)
    let mut lim = UnpackLimits::new(64 << 20);
    lim.max_resolve_steps = 20_000;
    let started = std::time::Instant::now();
    let stats = unpack_layers(&[l(&p)], &dir.path().join("root"), &lim).unwrap();
    let took = started.elapsed();
    eprintln!(
        "{} deep entries in {took:?}: {:.0} entries/s",
        stats.entries,
        stats.entries as f64 / took.as_secs_f64()
    );
    assert_eq!(stats.entries, 501);
    assert!(
        dir.path()
            .join("root")
            .join("d/".repeat(120))
            .join("f499")
            .exists()
    );

    // Each entry in a new deep chain defeats remembering: the budget refuses the image.
    let chains: Vec<String> = (0..200)
        .map(|i| format!("c{i}/{}f", "d/".repeat(100)))
        .collect();
    let entries: Vec<(&str, Option<&str>)> = chains.iter().map(|n| (n.as_str(), None)).collect();
    let p = layer_file(dir.path(), "chains", &long_tar(&entries));
    let dest = dir.path().join("r-chains");
    let err = unpack_layers(&[l(&p)], &dest, &lim).unwrap_err();
    assert!(
        matches!(&err, UnpackError::Refused { why, .. } if why.contains("too much work")),
        "{err}"
    );
    assert!(!dest.exists());

    // Directories made on the way count as entries.
    let p = layer_file(dir.path(), "implicit", &long_tar(&[("a/b/c/d/e/f", None)]));
    lim.max_entries = 5;
    let dest = dir.path().join("r-implicit");
    let err = unpack_layers(&[l(&p)], &dest, &lim).unwrap_err();
    assert!(matches!(err, UnpackError::TooManyEntries { .. }), "{err}");
    lim.max_entries = 6;
    unpack_layers(&[l(&p)], &dest, &lim).unwrap();
}

#[test]
fn remembered_parents_are_forgotten_when_a_path_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let host = outside.to_str().unwrap();
    // d/e resolved (and remembered), then d replaced by links to a host path and to `..`:
    // later entries under d/e follow the new links, inside the root.
    let a = layer_file(
        dir.path(),
        "a",
        &tar_of(&[
            E::File("d/e/f", b"x", 0o644),
            E::Symlink("d", host),
            E::File("d/e/g", b"x", 0o644),
            E::Dir("d/e", 0o700),
        ]),
    );
    let b = layer_file(
        dir.path(),
        "b",
        &tar_of(&[
            E::File("u/e/f", b"x", 0o644),
            E::Char("u/.wh.e"),
            E::Symlink("u/e", "../.."),
            E::File("u/e/h", b"x", 0o644),
            E::Dir("u/e/i", 0o700),
        ]),
    );
    let root = dir.path().join("root");
    unpack_layers(&[l(&a), l(&b)], &root, &limits()).unwrap();
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing outside"
    );
    let moved = root.join(outside.strip_prefix("/").unwrap());
    assert!(moved.join("e/g").exists());
    assert!(!moved.join("e/f").exists());
    assert!(root.join("h").exists(), "'..' stops at the root");
    assert!(!dir.path().join("h").exists());
    assert_eq!(mode(&moved.join("e")), 0o700);
    assert_eq!(mode(&root.join("i")), 0o700);
    assert_eq!(mode(&root), 0o755);
}

#[test]
fn overwritten_files_keep_remembered_parents() {
    let dir = tempfile::tempdir().unwrap();
    // 300 files 25 levels deep, written again by a second layer (a second `npm ci`): forgetting
    // the parents at each overwritten file would cost 300 x 25 x 26 / 2 = 97,500 components.
    let a = layer_file(dir.path(), "a", &deep_layer(25, 300));
    let b = layer_file(dir.path(), "b", &deep_layer(25, 300));
    let mut lim = UnpackLimits::new(64 << 20);
    lim.max_resolve_steps = 5_000;
    let root = dir.path().join("root");
    let stats = unpack_layers(&[l(&a), l(&b)], &root, &lim).unwrap();
    assert_eq!(stats.entries, 602);
    assert!(root.join("d/".repeat(25)).join("f299").exists());
}

#[test]
fn remembered_parents_start_over_beyond_their_byte_cap() {
    let dir = tempfile::tempdir().unwrap();
    // Links `kN -> /<long>/<long>/<long>` and files `kN/fN`: each walk remembers one node but
    // three frames of long names.
    let long = ["a", "b", "c"].map(|c| c.repeat(90));
    let target = format!("/{}", long.join("/"));
    let links: Vec<(String, String)> = (0..200)
        .map(|i| (format!("k{i}"), format!("k{i}/f{i}")))
        .collect();
    let mut entries: Vec<(&str, Option<&str>)> = Vec::new();
    let top = format!("{}/", long.join("/"));
    entries.push((&top, None));
    for (link, file) in &links {
        entries.push((link, Some(&target)));
        entries.push((file, None));
    }
    let p = layer_file(dir.path(), "links", &long_tar(&entries));
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let mut walk = Walk::new(Some(root.clone()), UnpackLimits::new(64 << 20));
    walk.max_resolved_bytes = 4_000;
    walk.layer(0, &l(&p)).unwrap();
    walk.finish().unwrap();
    assert!(walk.resolved_restarts > 10, "{}", walk.resolved_restarts);
    assert!(walk.resolved_bytes <= 4_000, "{}", walk.resolved_bytes);
    let inner = root.join(long.join("/"));
    for i in 0..200 {
        assert!(inner.join(format!("f{i}")).is_file(), "f{i}");
        assert!(root.join(format!("k{i}")).is_symlink());
    }
    assert_eq!(fs::read_dir(&inner).unwrap().count(), 200);

    // The default cap keeps them all (no restart) with the same result.
    let root2 = dir.path().join("root2");
    fs::create_dir(&root2).unwrap();
    let mut walk = Walk::new(Some(root2.clone()), UnpackLimits::new(64 << 20));
    walk.layer(0, &l(&p)).unwrap();
    assert_eq!(walk.resolved_restarts, 0);
    assert!(walk.resolved_bytes > 4_000, "{}", walk.resolved_bytes);
    assert_eq!(
        fs::read_dir(root2.join(long.join("/"))).unwrap().count(),
        200
    );
}

#[test]
fn bytes_outside_entries_count_toward_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // 2 MiB of zeros after the archive: within the 4 MiB allowed outside entries, but over
    // the image's 1 MiB.
    let mut trailing = tar_of(&[E::File("f", b"x", 0o644)]);
    trailing.resize(trailing.len() + (2 << 20), 0);
    let p = layer_file(dir.path(), "trailing", &gz(&trailing));
    for result in [
        verify_layers(&[l(&p)], &limits()),
        unpack_layers(&[l(&p)], &dir.path().join("root"), &limits()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, UnpackError::TooLarge { .. }), "{err}");
    }
    assert!(!dir.path().join("root").exists());
}

/// REVIEW: repeated opaque markers for one directory each list the directory again.
#[test]
fn review_repeated_opaque_markers_cost_linear_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut times = Vec::new();
    for n in [2_000usize, 4_000, 8_000] {
        let names: Vec<String> = (0..n).map(|i| format!("d/f{i}")).collect();
        let mut entries: Vec<E<'_>> = vec![E::Dir("d", 0o755)];
        for name in &names {
            entries.push(E::File(name, b"", 0o644));
        }
        for _ in 0..n {
            entries.push(E::File("d/.wh..wh..opq", b"", 0o644));
        }
        let p = layer_file(dir.path(), &format!("l{n}"), &tar_of(&entries));
        let root = dir.path().join(format!("root{n}"));
        let started = std::time::Instant::now();
        unpack_layers(&[l(&p)], &root, &UnpackLimits::new(1 << 30)).unwrap();
        times.push((2 * n + 1, started.elapsed()));
    }
    eprintln!("entries, time: {times:?}");
    // Linear work: 4x the entries in at most ~6x the time.
    assert!(
        times[2].1 < times[0].1 * 6,
        "quadratic in the entries: {times:?}"
    );
}
