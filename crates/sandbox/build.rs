//! Builds `kindling-init` (src/sys/init.rs), the program an environment's supervisor becomes
//! once its setup is done, into `$OUT_DIR/kindling-init`; the crate embeds it
//! (`sys::init_image`). A no_std, no-libc, static, non-PIE executable of a few kilobytes: no
//! relocations, no loader, so each supervisor owns only its stack and data pages.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/sys/init.rs";
    println!("cargo:rerun-if-changed={source}");
    // Under `cargo clippy`: linted again when the lint flags change (`-D warnings` or not).
    println!("cargo:rerun-if-env-changed=CLIPPY_ARGS");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("kindling-init");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    // Under `cargo clippy` cargo names clippy-driver as the workspace's wrapper (and runs this
    // script in an output directory of its own): the program is then linted like the crate,
    // with the caller's lint flags (CLIPPY_ARGS, inherited), instead of escaping the lints
    // by being no module of the crate.
    let mut command = match env::var_os("RUSTC_WORKSPACE_WRAPPER").filter(|w| !w.is_empty()) {
        Some(wrapper) => {
            let mut command = Command::new(wrapper);
            command.arg(rustc);
            command
        }
        None => Command::new(rustc),
    };
    command
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--crate-name",
            "kindling_init",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "debuginfo=0",
        ])
        .args([
            "-C",
            "relocation-model=static",
            "-C",
            "target-feature=+crt-static",
        ])
        .args([
            "-C",
            "link-arg=-nostartfiles",
            "-C",
            "link-arg=-nostdlib",
            "-C",
            "link-arg=-static",
        ])
        .args(["-C", "strip=symbols"]);
    // A linker configured for the target (cross builds) applies to this program too.
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        command.arg("-C").arg({
            let mut arg = std::ffi::OsString::from("linker=");
            arg.push(linker);
            arg
        });
    }
    let output = command
        .arg("-o")
        .arg(&out)
        .arg(source)
        .output()
        .expect("running rustc for kindling-init");
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "building kindling-init ({source}) failed:\n{diagnostics}"
    );
    // Warnings (clippy's included) would otherwise stay in this script's captured output.
    for line in diagnostics.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning=kindling-init: {line}");
    }
}
