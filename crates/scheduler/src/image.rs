//! Container-image functions: the command and environment of an image's runtime, from its
//! config (`ENTRYPOINT`, `CMD`, `WORKDIR`, `ENV`) and the function's `ImageConfig`.

use std::path::{Path, PathBuf};

use kindling_model::function::{ImageCode, VersionRecord};

use crate::launch::Launch;

/// `PATH` when the image sets none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables the image's `ENV` keeps over Kindling's defaults (they describe the image's
/// file system, which Kindling's defaults do not know).
const IMAGE_WINS: &[&str] = &["PATH", "LD_LIBRARY_PATH", "LANG", "TZ"];

/// The command that starts the image's runtime (host `root` for lookups), or the message of
/// Lambda's `Runtime.InvalidEntrypoint`.
pub(crate) fn launch(
    image: &ImageCode,
    overrides: Option<&serde_json::Value>,
    root: &Path,
) -> Result<Launch, String> {
    let (argv, workdir) = image.command(overrides);
    let Some((first, args)) = argv.split_first() else {
        return Err(format!(
            "The image {} has no ENTRYPOINT or CMD, and ImageConfig sets no EntryPoint or Command.",
            image.image_uri
        ));
    };
    let program = if first.contains('/') {
        PathBuf::from(first)
    } else {
        let path = image
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(first))
            // The entry is looked at, never followed on the host.
            .find(|p| {
                root.join(p.strip_prefix("/").unwrap_or(p))
                    .symlink_metadata()
                    .is_ok()
            })
            .ok_or_else(|| {
                format!("exec: \"{first}\": executable file not found in $PATH ({path})")
            })?
    };
    Ok(Launch {
        program,
        args: args.to_vec(),
        visible: Vec::new(),
        note: None,
        cwd: Some(PathBuf::from(workdir)),
    })
}

/// The environment: the image's `ENV`, then Lambda's variables (`AWS_LAMBDA_RUNTIME_API`
/// and the rest; the image keeps its `PATH`, `LD_LIBRARY_PATH`, `LANG`, `TZ`), then the
/// function's own variables over everything.
pub(crate) fn environment(
    image: &ImageCode,
    lambda: Vec<(String, String)>,
    rec: &VersionRecord,
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = image.env.clone();
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    let user: Vec<&String> = rec
        .spec
        .environment
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    for (k, v) in lambda {
        let image_has = vars.iter().any(|(existing, _)| *existing == k);
        if image_has && IMAGE_WINS.contains(&k.as_str()) && !user.contains(&&k) {
            continue;
        }
        vars.retain(|(existing, _)| *existing != k);
        vars.push((k, v));
    }
    // Lambda's images run without these (they point into the zip runtimes' layout).
    vars.retain(|(k, _)| k != "LAMBDA_RUNTIME_DIR" || image.env.iter().any(|(ik, _)| ik == k));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_in_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/local/bin")).unwrap();
        std::fs::write(dir.path().join("usr/local/bin/python3"), "").unwrap();
        let image = ImageCode {
            image_uri: "127.0.0.1:1/app:v1".into(),
            entrypoint: vec!["python3".into(), "-m".into(), "awslambdaric".into()],
            cmd: vec!["app.handler".into()],
            working_dir: "/var/task".into(),
            env: vec![("PATH".into(), "/usr/local/bin:/usr/bin".into())],
            ..Default::default()
        };
        let l = launch(&image, None, dir.path()).unwrap();
        assert_eq!(l.program, PathBuf::from("/usr/local/bin/python3"));
        assert_eq!(l.args, ["-m", "awslambdaric", "app.handler"]);
        assert_eq!(l.cwd.as_deref(), Some(Path::new("/var/task")));
        let missing = ImageCode {
            entrypoint: vec!["nope".into()],
            ..image.clone()
        };
        assert!(
            launch(&missing, None, dir.path())
                .unwrap_err()
                .contains("not found")
        );
        assert!(launch(&ImageCode::default(), None, dir.path()).is_err());
    }

    #[test]
    fn the_environment_layers_image_lambda_and_user() {
        let image = ImageCode {
            env: vec![
                ("PATH".into(), "/img/bin".into()),
                ("AWS_REGION".into(), "img".into()),
                ("FOO".into(), "img".into()),
            ],
            ..Default::default()
        };
        use kindling_model::function::{CodeInfo, FunctionSpec};
        let mut rec = VersionRecord {
            function_name: "f".into(),
            version: None,
            spec: FunctionSpec::lambda_defaults("f"),
            code: CodeInfo {
                sha256: String::new(),
                size: 0,
                unzipped_size: 0,
                blob: String::new(),
                image: None,
            },
            revision_id: "r".into(),
            last_modified_ms: 0,
        };
        rec.spec.environment = Some([("FOO".to_string(), "user".to_string())].into());
        let env = environment(
            &image,
            vec![
                ("PATH".into(), "/lambda".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
                ("FOO".into(), "user".into()),
            ],
            &rec,
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/img/bin"));
        assert_eq!(get("AWS_REGION"), Some("us-east-1"));
        assert_eq!(get("FOO"), Some("user"));
    }
}
