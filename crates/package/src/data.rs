//! Entry data: decompresses one entry in bounded chunks, counting the real bytes, stopping at
//! the first byte beyond what the archive declared or beyond the budget, and checking the
//! CRC-32 and the end of the deflate stream.

use std::io::{self, Read, Write};

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{EntryProblem, PackageError};

const CHUNK: usize = 64 * 1024;

pub(crate) const STORED: u16 = 0;
pub(crate) const DEFLATED: u16 = 8;

/// Bytes that may still be written across every entry.
#[derive(Debug)]
pub(crate) struct Budget {
    pub limit: u64,
    pub used: u64,
}

/// Why copying an entry stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    Entry(EntryProblem),
    Package(PackageError),
}

impl From<EntryProblem> for CopyError {
    fn from(p: EntryProblem) -> Self {
        Self::Entry(p)
    }
}

/// What an entry must turn out to be.
pub(crate) struct Expect {
    pub method: u16,
    pub compressed: u64,
    pub uncompressed: u64,
    pub crc32: u32,
}

/// Reusable buffers (two chunks), so that memory stays bounded whatever the archive.
pub(crate) struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Buffers {
    pub fn new() -> Self {
        Self {
            input: vec![0; CHUNK],
            output: vec![0; CHUNK],
        }
    }
}

/// Copies the data of one entry from `src` (positioned at its first byte) into `sink`.
/// Returns the real uncompressed size.
pub(crate) fn copy_entry<R: Read>(
    src: &mut R,
    expect: &Expect,
    budget: &mut Budget,
    bufs: &mut Buffers,
    sink: &mut dyn Write,
    sink_name: &dyn Fn() -> String,
) -> Result<u64, CopyError> {
    let mut src = src.take(expect.compressed);
    let mut crc = crc32fast::Hasher::new();
    let mut produced = 0u64;
    let mut emit = |chunk: &[u8], produced: &mut u64| -> Result<(), CopyError> {
        let n = chunk.len() as u64;
        if *produced + n > expect.uncompressed {
            return Err(EntryProblem::SizeMismatch {
                declared: expect.uncompressed,
                actual: format!("more than {}", expect.uncompressed),
            }
            .into());
        }
        if budget.used + n > budget.limit {
            return Err(CopyError::Package(PackageError::TooLarge {
                limit: budget.limit,
            }));
        }
        *produced += n;
        budget.used += n;
        crc.update(chunk);
        sink.write_all(chunk).map_err(|source| {
            CopyError::Package(PackageError::Write {
                path: sink_name(),
                source,
            })
        })
    };
    match expect.method {
        STORED => {
            if expect.compressed != expect.uncompressed {
                return Err(EntryProblem::SizeMismatch {
                    declared: expect.uncompressed,
                    actual: expect.compressed.to_string(),
                }
                .into());
            }
            loop {
                let n = read_some(&mut src, &mut bufs.input)?;
                if n == 0 {
                    break;
                }
                emit(&bufs.input[..n], &mut produced)?;
            }
        }
        DEFLATED => {
            let mut inflate = Decompress::new(false);
            let (mut start, mut end) = (0usize, 0usize);
            let mut input_done = false;
            loop {
                if start == end && !input_done {
                    end = read_some(&mut src, &mut bufs.input)?;
                    start = 0;
                    input_done = end == 0;
                }
                let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
                let status = inflate
                    .decompress(
                        &bufs.input[start..end],
                        &mut bufs.output,
                        FlushDecompress::None,
                    )
                    .map_err(|_| EntryProblem::CorruptData)?;
                let consumed = (inflate.total_in() - in_before) as usize;
                let written = (inflate.total_out() - out_before) as usize;
                start += consumed;
                emit(&bufs.output[..written], &mut produced)?;
                if status == Status::StreamEnd {
                    break;
                }
                if consumed == 0 && written == 0 {
                    if input_done {
                        // No input left and the stream has not ended.
                        return Err(EntryProblem::Truncated.into());
                    }
                    if start < end {
                        // Input and room for output, yet no progress.
                        return Err(EntryProblem::CorruptData.into());
                    }
                }
            }
        }
        other => return Err(EntryProblem::UnsupportedCompression(other).into()),
    }
    if produced != expect.uncompressed {
        return Err(EntryProblem::SizeMismatch {
            declared: expect.uncompressed,
            actual: produced.to_string(),
        }
        .into());
    }
    if crc.finalize() != expect.crc32 {
        return Err(EntryProblem::BadCrc.into());
    }
    Ok(produced)
}

/// Reads what is there (0 at the end of the entry); an archive that ends early is truncated.
fn read_some<R: Read>(src: &mut io::Take<R>, buf: &mut [u8]) -> Result<usize, CopyError> {
    let want = buf
        .len()
        .min(usize::try_from(src.limit()).unwrap_or(usize::MAX));
    if want == 0 {
        return Ok(0);
    }
    loop {
        match src.read(&mut buf[..want]) {
            Ok(0) => return Err(EntryProblem::Truncated.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CopyError::Package(PackageError::Read(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use flate2::Compression;
    use flate2::write::DeflateEncoder;

    use super::*;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn run(data: &[u8], expect: Expect, limit: u64) -> Result<(u64, Vec<u8>), CopyError> {
        let mut out = Vec::new();
        let mut budget = Budget { limit, used: 0 };
        let n = copy_entry(
            &mut Cursor::new(data),
            &expect,
            &mut budget,
            &mut Buffers::new(),
            &mut out,
            &|| "x".into(),
        )?;
        Ok((n, out))
    }

    fn expect(method: u16, compressed: usize, plain: &[u8]) -> Expect {
        Expect {
            method,
            compressed: compressed as u64,
            uncompressed: plain.len() as u64,
            crc32: crc32fast::hash(plain),
        }
    }

    #[test]
    fn copies_stored_and_deflated_data() {
        let plain = vec![7u8; 300_000];
        let packed = deflate(&plain);
        let (n, out) = run(&packed, expect(DEFLATED, packed.len(), &plain), u64::MAX).unwrap();
        assert_eq!((n, out), (300_000, plain.clone()));
        let (n, _) = run(&plain, expect(STORED, plain.len(), &plain), u64::MAX).unwrap();
        assert_eq!(n, 300_000);
    }

    #[test]
    fn stops_at_the_declared_size() {
        let plain = vec![0u8; 10_000_000];
        let packed = deflate(&plain);
        let mut lie = expect(DEFLATED, packed.len(), &plain);
        lie.uncompressed = 10;
        let mut out = Vec::new();
        let mut budget = Budget {
            limit: u64::MAX,
            used: 0,
        };
        let err = copy_entry(
            &mut Cursor::new(&packed),
            &lie,
            &mut budget,
            &mut Buffers::new(),
            &mut out,
            &|| "x".into(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            CopyError::Entry(EntryProblem::SizeMismatch { .. })
        ));
        assert!(out.len() <= 10, "wrote {} bytes", out.len());
    }

    #[test]
    fn stops_at_the_budget() {
        let plain = vec![0u8; 1_000_000];
        let packed = deflate(&plain);
        let err = run(&packed, expect(DEFLATED, packed.len(), &plain), 100_000).unwrap_err();
        assert!(matches!(
            err,
            CopyError::Package(PackageError::TooLarge { .. })
        ));
    }

    #[test]
    fn finds_bad_crc_truncation_and_corruption() {
        let plain = b"hello hello hello hello".to_vec();
        let packed = deflate(&plain);
        let mut bad = expect(DEFLATED, packed.len(), &plain);
        bad.crc32 ^= 1;
        assert!(matches!(
            run(&packed, bad, u64::MAX),
            Err(CopyError::Entry(EntryProblem::BadCrc))
        ));
        let cut = &packed[..packed.len() - 3];
        assert!(matches!(
            run(cut, expect(DEFLATED, cut.len(), &plain), u64::MAX),
            Err(CopyError::Entry(
                EntryProblem::Truncated | EntryProblem::SizeMismatch { .. } | EntryProblem::BadCrc
            ))
        ));
        // The archive claims more stored bytes than it has.
        assert!(matches!(
            run(&plain[..10], expect(STORED, plain.len(), &plain), u64::MAX),
            Err(CopyError::Entry(EntryProblem::Truncated))
        ));
        assert!(matches!(
            run(&[0xff; 64], expect(DEFLATED, 64, &plain), u64::MAX),
            Err(CopyError::Entry(EntryProblem::CorruptData))
        ));
        assert!(matches!(
            run(&plain, expect(12, plain.len(), &plain), u64::MAX),
            Err(CopyError::Entry(EntryProblem::UnsupportedCompression(12)))
        ));
    }
}
