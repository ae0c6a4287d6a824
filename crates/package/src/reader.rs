//! The zip container format: end records (including ZIP64), the central directory and local
//! headers. Every length is checked before use; nothing here allocates more than the archive's
//! own central directory.

use std::io::{Read, Seek, SeekFrom};

use crate::error::{PackageError, read_error};

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_LEN: u64 = 56;
const CENTRAL_LEN: usize = 46;
pub(crate) const LOCAL_LEN: u64 = 30;

/// One central-directory record, with ZIP64 values filled in and offsets made absolute.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub version_made_by: u16,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Absolute offset of the local header in the file.
    pub local_offset: u64,
    pub external_attr: u32,
}

/// The central directory of an archive.
#[derive(Debug)]
pub(crate) struct Directory {
    pub entries: Vec<RawEntry>,
    /// Absolute offset where the central directory starts: no entry data may reach it.
    pub cd_start: u64,
}

/// Little-endian fields out of a byte slice, without panics.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: usize) -> Result<Vec<u8>, PackageError> {
    r.seek(SeekFrom::Start(at)).map_err(PackageError::Read)?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).map_err(read_error)?;
    Ok(buf)
}

const MALFORMED_EOCD: PackageError = PackageError::Malformed("no valid end of central directory");

/// Reads the central directory, refusing more than `max_entries` entries before allocating.
pub(crate) fn read_directory<R: Read + Seek>(
    r: &mut R,
    max_entries: usize,
) -> Result<Directory, PackageError> {
    let len = r.seek(SeekFrom::End(0)).map_err(PackageError::Read)?;
    if len < EOCD_LEN {
        return Err(MALFORMED_EOCD);
    }
    // The end record is the last 22 bytes, followed by a comment of at most 64 KiB.
    let tail_len = len.min(EOCD_LEN + u64::from(u16::MAX));
    let tail_start = len - tail_len;
    let tail = read_at(r, tail_start, tail_len as usize)?;
    let sig = EOCD_SIG.to_le_bytes();
    let found = (0..=tail.len() - EOCD_LEN as usize).rev().find(|&i| {
        tail[i..i + 4] == sig && {
            let comment = u16::from_le_bytes([tail[i + 20], tail[i + 21]]) as usize;
            i + EOCD_LEN as usize + comment <= tail.len()
        }
    });
    let Some(i) = found else {
        return Err(MALFORMED_EOCD);
    };
    let eocd_pos = tail_start + i as u64;
    let mut f = Fields::new(&tail[i + 4..]);
    let (disk, cd_disk, on_disk, total, cd_size, cd_offset) = (
        f.u16().ok_or(MALFORMED_EOCD)?,
        f.u16().ok_or(MALFORMED_EOCD)?,
        f.u16().ok_or(MALFORMED_EOCD)?,
        f.u16().ok_or(MALFORMED_EOCD)?,
        f.u32().ok_or(MALFORMED_EOCD)?,
        f.u32().ok_or(MALFORMED_EOCD)?,
    );
    let zip64 = disk == u16::MAX
        || cd_disk == u16::MAX
        || on_disk == u16::MAX
        || total == u16::MAX
        || cd_size == u32::MAX
        || cd_offset == u32::MAX;
    let (disk, cd_disk, on_disk, total, cd_size, cd_offset, cd_end) = if zip64 {
        read_zip64_end(r, eocd_pos)?
    } else {
        (
            u32::from(disk),
            u32::from(cd_disk),
            u64::from(on_disk),
            u64::from(total),
            u64::from(cd_size),
            u64::from(cd_offset),
            eocd_pos,
        )
    };
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err(PackageError::Malformed(
            "multi-disk (split) archives are not supported",
        ));
    }
    if total > max_entries as u64 {
        return Err(PackageError::TooManyEntries { limit: max_entries });
    }
    // Data may precede the archive (self-extracting zips): offsets are relative to its start.
    let cd_start = cd_end.checked_sub(cd_size).ok_or(PackageError::Malformed(
        "the central directory does not fit",
    ))?;
    let prefix = cd_start
        .checked_sub(cd_offset)
        .ok_or(PackageError::Malformed(
            "the central directory offset is wrong",
        ))?;
    if total.saturating_mul(CENTRAL_LEN as u64) > cd_size {
        return Err(PackageError::Malformed(
            "the central directory is smaller than its entry count",
        ));
    }
    let cd = read_at(r, cd_start, cd_size as usize)?;
    let mut fields = Fields::new(&cd);
    let mut entries = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let entry = central_record(&mut fields, prefix, cd_start)?;
        entries.push(entry);
    }
    Ok(Directory { entries, cd_start })
}

type Zip64End = (u32, u32, u64, u64, u64, u64, u64);

fn read_zip64_end<R: Read + Seek>(r: &mut R, eocd_pos: u64) -> Result<Zip64End, PackageError> {
    let bad = PackageError::Malformed("no valid ZIP64 end of central directory");
    let locator_pos = eocd_pos.checked_sub(ZIP64_LOCATOR_LEN).ok_or(bad)?;
    let locator = read_at(r, locator_pos, ZIP64_LOCATOR_LEN as usize)?;
    let bad = || PackageError::Malformed("no valid ZIP64 end of central directory");
    let mut f = Fields::new(&locator);
    if f.u32() != Some(ZIP64_LOCATOR_SIG) {
        return Err(bad());
    }
    // The ZIP64 end record sits right before its locator (offsets inside the archive may be
    // shifted by prepended data, so its position is taken from where it must be).
    let end_pos = locator_pos.checked_sub(ZIP64_EOCD_LEN).ok_or_else(bad)?;
    let end = read_at(r, end_pos, ZIP64_EOCD_LEN as usize)?;
    let mut f = Fields::new(&end);
    if f.u32() != Some(ZIP64_EOCD_SIG) {
        return Err(bad());
    }
    let _record_size = f.u64().ok_or_else(bad)?;
    let _made_by = f.u16().ok_or_else(bad)?;
    let _needed = f.u16().ok_or_else(bad)?;
    Ok((
        f.u32().ok_or_else(bad)?,
        f.u32().ok_or_else(bad)?,
        f.u64().ok_or_else(bad)?,
        f.u64().ok_or_else(bad)?,
        f.u64().ok_or_else(bad)?,
        f.u64().ok_or_else(bad)?,
        end_pos,
    ))
}

fn central_record(
    f: &mut Fields<'_>,
    prefix: u64,
    cd_start: u64,
) -> Result<RawEntry, PackageError> {
    let bad = || PackageError::Malformed("a central directory record is damaged");
    if f.u32() != Some(CENTRAL_SIG) {
        return Err(bad());
    }
    let version_made_by = f.u16().ok_or_else(bad)?;
    let _needed = f.u16().ok_or_else(bad)?;
    let flags = f.u16().ok_or_else(bad)?;
    let method = f.u16().ok_or_else(bad)?;
    let _time = f.u16().ok_or_else(bad)?;
    let _date = f.u16().ok_or_else(bad)?;
    let crc32 = f.u32().ok_or_else(bad)?;
    let csize32 = f.u32().ok_or_else(bad)?;
    let usize32 = f.u32().ok_or_else(bad)?;
    let name_len = f.u16().ok_or_else(bad)?;
    let extra_len = f.u16().ok_or_else(bad)?;
    let comment_len = f.u16().ok_or_else(bad)?;
    let disk16 = f.u16().ok_or_else(bad)?;
    let _internal = f.u16().ok_or_else(bad)?;
    let external_attr = f.u32().ok_or_else(bad)?;
    let offset32 = f.u32().ok_or_else(bad)?;
    let name = f.bytes(name_len.into()).ok_or_else(bad)?.to_vec();
    let extra = f.bytes(extra_len.into()).ok_or_else(bad)?;
    f.bytes(comment_len.into()).ok_or_else(bad)?;

    let mut uncompressed_size = u64::from(usize32);
    let mut compressed_size = u64::from(csize32);
    let mut offset = u64::from(offset32);
    let mut disk = u32::from(disk16);
    let needs64 =
        usize32 == u32::MAX || csize32 == u32::MAX || offset32 == u32::MAX || disk16 == u16::MAX;
    if needs64 {
        let bad64 = || PackageError::Malformed("a ZIP64 extra field is missing or damaged");
        let data = zip64_extra(extra).ok_or_else(bad64)?;
        let mut z = Fields::new(data);
        if usize32 == u32::MAX {
            uncompressed_size = z.u64().ok_or_else(bad64)?;
        }
        if csize32 == u32::MAX {
            compressed_size = z.u64().ok_or_else(bad64)?;
        }
        if offset32 == u32::MAX {
            offset = z.u64().ok_or_else(bad64)?;
        }
        if disk16 == u16::MAX {
            disk = z.u32().ok_or_else(bad64)?;
        }
    }
    if disk != 0 {
        return Err(PackageError::Malformed(
            "multi-disk (split) archives are not supported",
        ));
    }
    let local_offset =
        offset
            .checked_add(prefix)
            .filter(|o| *o < cd_start)
            .ok_or(PackageError::Malformed(
                "an entry's offset points outside the archive",
            ))?;
    Ok(RawEntry {
        name,
        version_made_by,
        flags,
        method,
        crc32,
        compressed_size,
        uncompressed_size,
        local_offset,
        external_attr,
    })
}

/// The data of the ZIP64 extended-information extra field (id 1), if present and well formed.
fn zip64_extra(mut extra: &[u8]) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let size = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let data = extra.get(4..4 + size)?;
        if id == 1 {
            return Some(data);
        }
        extra = &extra[4 + size..];
    }
    None
}

/// What a local header says, for the checks against the central directory.
#[derive(Debug)]
pub(crate) struct LocalHeader {
    pub method: u16,
    pub flags: u16,
    pub data_start: u64,
}

/// Reads the local header at `entry.local_offset` and checks its name against the central
/// directory's (so that every reader sees the same name).
pub(crate) fn read_local<R: Read + Seek>(
    r: &mut R,
    entry: &RawEntry,
) -> Result<Option<LocalHeader>, PackageError> {
    let fixed = read_at(r, entry.local_offset, LOCAL_LEN as usize)?;
    let mut f = Fields::new(&fixed);
    if f.u32() != Some(LOCAL_SIG) {
        return Ok(None);
    }
    let _needed = f.u16();
    let flags = f.u16().unwrap_or_default();
    let method = f.u16().unwrap_or_default();
    let _ = (f.u16(), f.u16(), f.u32(), f.u32(), f.u32());
    let name_len = f.u16().unwrap_or_default();
    let extra_len = f.u16().unwrap_or_default();
    let mut name = vec![0u8; name_len.into()];
    r.read_exact(&mut name).map_err(read_error)?;
    if name != entry.name {
        return Ok(None);
    }
    Ok(Some(LocalHeader {
        method,
        flags,
        data_start: entry.local_offset + LOCAL_LEN + u64::from(name_len) + u64::from(extra_len),
    }))
}
