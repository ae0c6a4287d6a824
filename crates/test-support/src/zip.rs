//! Well-formed zip packages for tests (hostile zips, whose fields lie, are built by the
//! package crate's own raw writer).

use std::io::Write;

/// A zip of `(name, content)` files, each with mode 0755 (so a `bootstrap` can run).
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<(&str, u32, &[u8])> = files.iter().map(|(n, c)| (*n, 0o755, *c)).collect();
    zip_with_modes(&entries)
}

/// A zip of `(name, unix mode, content)` files, deflated.
pub fn zip_with_modes(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = ::zip::ZipWriter::new(&mut buf);
        for (name, mode, content) in files {
            let opts = ::zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            w.start_file(*name, opts).expect("zip entry");
            w.write_all(content).expect("zip write");
        }
        w.finish().expect("zip finish");
    }
    buf.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_names_modes_and_bytes() {
        let bytes = zip_with_modes(&[
            ("bootstrap", 0o755, b"#!/bin/sh\n"),
            ("a/b.txt", 0o644, b"hi"),
        ]);
        let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut boot = archive.by_name("bootstrap").unwrap();
        assert_eq!(boot.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut boot, &mut text).unwrap();
        assert_eq!(text, "#!/bin/sh\n");
        drop(boot);
        assert_eq!(
            archive
                .by_name("a/b.txt")
                .unwrap()
                .unix_mode()
                .map(|m| m & 0o777),
            Some(0o644)
        );
    }
}
