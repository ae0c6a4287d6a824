//! A raw zip writer for tests: every field can lie.

#![allow(dead_code)]

use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

pub const UNIX: u16 = 3;
pub const DOS: u16 = 0;

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    /// The uncompressed data.
    pub data: Vec<u8>,
    pub method: u16,
    /// Unix mode with its file type (`0o100644`), stored in the external attributes.
    pub mode: u32,
    pub host: u16,
    pub flags: u16,
    /// Overrides of what the central directory (and local header) declares.
    pub declared_size: Option<u64>,
    pub crc: Option<u32>,
    /// Bytes stored instead of the compressed data.
    pub raw_data: Option<Vec<u8>>,
    /// A different name in the local header.
    pub local_name: Option<Vec<u8>>,
    /// Make the central record point at the local header of this earlier entry.
    pub share_header_of: Option<usize>,
}

impl Entry {
    pub fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Self {
        Self {
            name: name.as_ref().to_vec(),
            data: data.as_ref().to_vec(),
            method: 8,
            mode: 0o100_644,
            host: UNIX,
            flags: 0,
            declared_size: None,
            crc: None,
            raw_data: None,
            local_name: None,
            share_header_of: None,
        }
    }

    pub fn dir(name: impl AsRef<[u8]>) -> Self {
        Self {
            mode: 0o040_755,
            method: 0,
            ..Self::file(name, b"")
        }
    }

    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Self {
        Self {
            mode: 0o120_777,
            method: 0,
            ..Self::file(name, target)
        }
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn stored(mut self) -> Self {
        self.method = 0;
        self
    }
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("deflate");
    e.finish().expect("deflate")
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Builds the archive (no ZIP64; sizes are truncated to 32 bits).
pub fn build(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let packed = e.raw_data.clone().unwrap_or_else(|| match e.method {
            8 => deflate(&e.data),
            _ => e.data.clone(),
        });
        let crc = e.crc.unwrap_or_else(|| crc32fast::hash(&e.data));
        let size = e.declared_size.unwrap_or(e.data.len() as u64) as u32;
        let offset = match e.share_header_of {
            Some(i) => offsets[i],
            None => {
                let offset = out.len() as u32;
                let local_name = e.local_name.as_ref().unwrap_or(&e.name);
                u32le(&mut out, 0x0403_4b50);
                u16le(&mut out, 20);
                u16le(&mut out, e.flags);
                u16le(&mut out, e.method);
                u16le(&mut out, 0);
                u16le(&mut out, 0x21);
                u32le(&mut out, crc);
                u32le(&mut out, packed.len() as u32);
                u32le(&mut out, size);
                u16le(&mut out, local_name.len() as u16);
                u16le(&mut out, 0);
                out.extend_from_slice(local_name);
                out.extend_from_slice(&packed);
                offset
            }
        };
        offsets.push(offset);
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, e.host << 8 | 20);
        u16le(&mut central, 20);
        u16le(&mut central, e.flags);
        u16le(&mut central, e.method);
        u16le(&mut central, 0);
        u16le(&mut central, 0x21);
        u32le(&mut central, crc);
        u32le(&mut central, packed.len() as u32);
        u32le(&mut central, size);
        u16le(&mut central, e.name.len() as u16);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u32le(&mut central, e.mode << 16);
        u32le(&mut central, offset);
        central.extend_from_slice(&e.name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, central.len() as u32);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    out
}

/// A realistic package made by the `zip` crate (what zip tools produce), with unusual but
/// legal content: empty directories, deep paths, unicode names, a link inside the package.
pub fn legal_package() -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    let file = SimpleFileOptions::default().unix_permissions(0o644);
    let exec = SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file("app.py", file).expect("zip");
    w.write_all(b"def handler(e, c):\n    return 1\n")
        .expect("zip");
    w.start_file("bin/tool", exec).expect("zip");
    w.write_all(b"#!/bin/sh\necho hi\n").expect("zip");
    w.add_directory("empty/", SimpleFileOptions::default())
        .expect("zip");
    let deep = (0..40)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/");
    w.start_file(format!("{deep}/leaf.txt"), file).expect("zip");
    w.write_all(b"deep").expect("zip");
    w.start_file("données/日本語/ünïcödé.txt", file)
        .expect("zip");
    w.write_all("ok".as_bytes()).expect("zip");
    w.add_symlink("link-to-app", "app.py", SimpleFileOptions::default())
        .expect("zip");
    w.add_symlink("bin/up", "../données", SimpleFileOptions::default())
        .expect("zip");
    w.finish().expect("zip");
    buf.into_inner()
}
