//! Where each log group's streams live under the log root.
//!
//! A function's default group `/aws/lambda/<function>` is the directory `<root>/<function>`
//! (function names are plain file names). Any other group (a custom `LoggingConfig.LogGroup`,
//! or one made with CloudWatch Logs' `CreateLogGroup`) is `<root>/.groups/<dir>`, where `<dir>`
//! is a readable prefix of the name and a stable hash of it, and the file `.name` inside holds
//! the whole name (group names may be 512 bytes long and hold `/` and `.`). Streams are files
//! `<stream name>.log` below the group's directory, the stream name's `/` being directories.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The prefix of Lambda's default group names.
pub const LAMBDA_PREFIX: &str = "/aws/lambda/";
/// The directory of groups that are not a function's default one.
const CUSTOM_DIR: &str = ".groups";
/// The file holding a custom group's name.
const NAME_FILE: &str = ".name";

/// `/aws/lambda/<function>`.
pub fn default_group(function: &str) -> String {
    format!("{LAMBDA_PREFIX}{function}")
}

/// Whether `s` can be a function's directory (Lambda's function-name characters).
fn is_function_dir(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 140
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The directory of `group`'s streams.
pub fn group_dir(root: &Path, group: &str) -> PathBuf {
    match group.strip_prefix(LAMBDA_PREFIX) {
        Some(f) if is_function_dir(f) => root.join(f),
        _ => root.join(CUSTOM_DIR).join(custom_dir_name(group)),
    }
}

/// Creates `group`'s directory (and, for a custom group, its name file) if missing.
pub(crate) fn create_group_dir(root: &Path, group: &str) -> io::Result<PathBuf> {
    let dir = group_dir(root, group);
    fs::create_dir_all(&dir)?;
    if dir.parent().and_then(Path::file_name) == Some(CUSTOM_DIR.as_ref()) {
        let name = dir.join(NAME_FILE);
        if !name.exists() {
            let tmp = dir.join(".name.tmp");
            fs::write(&tmp, group)?;
            fs::rename(&tmp, &name)?;
        }
    }
    Ok(dir)
}

/// A readable prefix of the name (other characters as `_`) and its FNV-1a hash.
fn custom_dir_name(group: &str) -> String {
    let readable: String = group
        .chars()
        .filter(|c| *c != '/')
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{readable}~{:016x}", fnv64(group.as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds and platforms.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Every group that has a directory: `(name, directory)`, in no particular order.
pub fn list_groups(root: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if name == CUSTOM_DIR {
            for custom in fs::read_dir(entry.path())?.flatten() {
                if let Ok(group) = fs::read_to_string(custom.path().join(NAME_FILE)) {
                    out.push((group, custom.path()));
                }
            }
        } else if is_function_dir(&name) {
            out.push((default_group(&name), entry.path()));
        }
    }
    Ok(out)
}

/// The group a stream file under `root` belongs to.
pub(crate) fn group_of(root: &Path, stream_file: &Path) -> Option<String> {
    let mut parts = stream_file.strip_prefix(root).ok()?.components();
    let first = parts.next()?.as_os_str().to_str()?;
    if first == CUSTOM_DIR {
        let dir = parts.next()?.as_os_str();
        fs::read_to_string(root.join(CUSTOM_DIR).join(dir).join(NAME_FILE)).ok()
    } else {
        Some(default_group(first))
    }
}

/// The longest file name the file systems Kindling runs on store (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// The file of stream `stream` in the group directory `dir`, if the name can be one: no empty,
/// `.` or `..` segment, no segment starting with `.`, no NUL, no segment longer than a file
/// name can be (stream names may be 512 bytes long; `/` splits them into directories).
pub fn stream_file(dir: &Path, stream: &str) -> Option<PathBuf> {
    if stream.is_empty() || stream.contains('\0') || stream.starts_with('/') {
        return None;
    }
    if stream.split('/').any(|segment| {
        segment.is_empty() || segment.starts_with('.') || segment.len() + ".log".len() > NAME_MAX
    }) {
        return None;
    }
    Some(dir.join(format!("{stream}.log")))
}

/// The stream name of a stream file under its group directory.
pub fn stream_name(dir: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(dir).ok()?.to_str()?;
    rel.strip_suffix(".log").map(str::to_string)
}

/// What a rotated stream's file is renamed with: an environment's stream `<name>` goes on in a
/// new file while its full one becomes `<name>-earlier` (`LogStore::with_max_stream_bytes`),
/// still part of the stream `<name>` to readers ([`rotated_from`]).
pub const EARLIER_SUFFIX: &str = "-earlier";

/// The file a stream's earlier lines are set aside in: `<name>-earlier.log`.
pub fn earlier_file(path: &Path) -> PathBuf {
    let mut name = path.file_stem().unwrap_or_default().to_os_string();
    name.push(EARLIER_SUFFIX);
    name.push(".log");
    path.with_file_name(name)
}

/// Whether `stream` has the name of an environment's stream (`super::log_stream_name`):
/// `YYYY/MM/DD/[<version>]<32 lowercase hex>`, the version `$LATEST` or a number. Only these
/// streams rotate.
pub fn is_environment_stream(stream: &str) -> bool {
    let b = stream.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 11 + 2 + 32 || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return false;
    }
    if b[4] != b'/' || b[7] != b'/' || b[10] != b'/' || b[11] != b'[' {
        return false;
    }
    let Some((version, id)) = stream[12..].split_once(']') else {
        return false;
    };
    let version_ok = version == "$LATEST"
        || (!version.is_empty() && version.bytes().all(|d| d.is_ascii_digit()));
    version_ok
        && id.len() == 32
        && id
            .bytes()
            .all(|h| h.is_ascii_digit() || (b'a'..=b'f').contains(&h))
}

/// The environment's stream whose set-aside file has the stream name `file_stream`:
/// `Some(<name>)` for `<name>-earlier` where `<name>` is an environment's stream
/// ([`is_environment_stream`]); `None` for any other name, a stream of its own (a stream a
/// client named `x-earlier` is just that).
pub fn rotated_from(file_stream: &str) -> Option<&str> {
    file_stream
        .strip_suffix(EARLIER_SUFFIX)
        .filter(|name| is_environment_stream(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_custom_groups_have_directories_of_their_own() {
        let root = Path::new("/l");
        assert_eq!(group_dir(root, "/aws/lambda/fn"), Path::new("/l/fn"));
        let custom = group_dir(root, "/my/app.logs");
        assert!(custom.starts_with("/l/.groups"));
        assert_ne!(custom, group_dir(root, "/my/app_logs"));
        assert!(group_dir(root, "/aws/lambda/a/b").starts_with("/l/.groups"));
        let long = "x".repeat(512);
        assert!(group_dir(root, &long).file_name().unwrap().len() < 100);
    }

    #[test]
    fn lists_groups_and_finds_the_group_of_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        create_group_dir(root, "/aws/lambda/f").unwrap();
        let custom = create_group_dir(root, "/custom/group.1").unwrap();
        let mut groups: Vec<String> = list_groups(root)
            .unwrap()
            .into_iter()
            .map(|g| g.0)
            .collect();
        groups.sort();
        assert_eq!(groups, ["/aws/lambda/f", "/custom/group.1"]);
        let file = stream_file(&custom, "2024/01/02/[$LATEST]ab").unwrap();
        assert_eq!(group_of(root, &file).as_deref(), Some("/custom/group.1"));
        assert_eq!(
            stream_name(&custom, &file).as_deref(),
            Some("2024/01/02/[$LATEST]ab")
        );
        for bad in ["", "../x", "a//b", "a/./b", ".hidden", "/abs"] {
            assert!(stream_file(&custom, bad).is_none(), "{bad}");
        }
        // 512-byte names are valid, but no file name holds a 252-byte segment and `.log`.
        let long = "x".repeat(251);
        let file = stream_file(&custom, &format!("{long}/{long}")).unwrap();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"").unwrap();
        for bad in ["x".repeat(252), format!("a/{}", "y".repeat(300))] {
            assert!(stream_file(&custom, &bad).is_none(), "{} bytes", bad.len());
        }
    }

    #[test]
    fn only_an_environment_stream_s_earlier_file_is_a_rotated_part() {
        let id = "0123456789abcdef0123456789abcdef";
        for env in [
            format!("2024/01/02/[$LATEST]{id}"),
            format!("2024/12/31/[17]{id}"),
        ] {
            assert!(is_environment_stream(&env), "{env}");
            assert_eq!(rotated_from(&format!("{env}-earlier")), Some(env.as_str()));
            assert_eq!(rotated_from(&env), None);
        }
        for other in [
            "x".to_string(),
            "2024/01/02/[$LATEST]abc".into(),
            format!("2024/01/02/[$LATEST]{}", id.to_uppercase()),
            format!("2024/01/02/[alias]{id}"),
            format!("2024/01/02/[]{id}"),
            format!("2024-01-02/[$LATEST]{id}"),
            format!("x/2024/01/02/[$LATEST]{id}"),
            format!("2024/01/02/[$LATEST]{id}0"),
        ] {
            assert!(!is_environment_stream(&other), "{other}");
            assert_eq!(rotated_from(&format!("{other}-earlier")), None, "{other}");
        }
    }
}
