//! Packaging: local code folders and files named by a template (SAM `CodeUri`/`ContentUri`,
//! CloudFormation `Code`/`Content` given as a path) are zipped deterministically, uploaded to
//! Kindling's S3, and the template is rewritten to point at them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::client::{Client, sha256_hex};

/// A local artifact to upload: which property of which resource, and from where.
struct Artifact {
    logical_id: String,
    property: &'static str,
    /// As the template names it.
    given: String,
    path: PathBuf,
}

fn local(value: &Value) -> Option<&str> {
    value
        .as_str()
        .filter(|s| !s.starts_with("s3://") && !s.starts_with("https://"))
}

fn artifacts(doc: &Value, base: &Path) -> Vec<Artifact> {
    let mut out = Vec::new();
    let Some(resources) = doc.get("Resources").and_then(Value::as_object) else {
        return out;
    };
    for (id, r) in resources {
        let t = r.get("Type").and_then(Value::as_str).unwrap_or_default();
        let Some(props) = r.get("Properties") else {
            continue;
        };
        let property = match t {
            "AWS::Serverless::Function" => "CodeUri",
            "AWS::Serverless::LayerVersion" => "ContentUri",
            "AWS::Lambda::Function" => "Code",
            "AWS::Lambda::LayerVersion" => "Content",
            _ => continue,
        };
        if let Some(p) = props.get(property).and_then(local) {
            out.push(Artifact {
                logical_id: id.clone(),
                property,
                given: p.to_string(),
                path: base.join(p),
            });
        }
    }
    out
}

/// Zips a folder (sorted entries, fixed times, permissions kept) or a single file.
fn zip_path(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip") || e.eq_ignore_ascii_case("jar"))
    {
        return std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    }
    let mut files = Vec::new();
    if meta.is_file() {
        files.push((
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path.to_path_buf(),
        ));
    } else {
        walk(path, path, &mut files)?;
        files.sort();
    }
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, file) in files {
            let mode = file_mode(&file);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .last_modified_time(zip::DateTime::default())
                .unix_permissions(mode);
            zip.start_file(name, options)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            zip.write_all(&bytes)?;
        }
        zip.finish()?;
    }
    Ok(buf.into_inner())
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_: &Path) -> u32 {
    0o644
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() || kind.is_symlink() && path.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Uploads every local artifact of `doc` (paths relative to `base`) to `bucket` and points the
/// template at them. Prints one line per upload.
pub fn package(client: &Client, doc: &mut Value, base: &Path, bucket: &str) -> anyhow::Result<()> {
    let list = artifacts(doc, base);
    if list.is_empty() {
        return Ok(());
    }
    client.ensure_bucket(bucket)?;
    for a in list {
        if !a.path.exists() {
            bail!(
                "{} of {} is {}, which does not exist",
                a.property,
                a.logical_id,
                a.path.display()
            );
        }
        let zip = zip_path(&a.path)?;
        let key = format!("{}.zip", &sha256_hex(&zip)[..32]);
        let size = zip.len();
        client.put_object(bucket, &key, zip)?;
        println!(
            "Uploaded {} ({} bytes) to s3://{bucket}/{key} for {}",
            a.given, size, a.logical_id
        );
        let props = doc
            .get_mut("Resources")
            .and_then(|r| r.get_mut(&a.logical_id))
            .and_then(|r| r.get_mut("Properties"))
            .and_then(Value::as_object_mut)
            .context("template changed while packaging")?;
        let value = match a.property {
            "CodeUri" | "ContentUri" => json!(format!("s3://{bucket}/{key}")),
            _ => json!({ "S3Bucket": bucket, "S3Key": key }),
        };
        props.insert(a.property.to_string(), value);
    }
    Ok(())
}
