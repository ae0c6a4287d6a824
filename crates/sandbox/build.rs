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
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("kindling-init");
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let mut command = Command::new(rustc);
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
    let status = command
        .arg("-o")
        .arg(&out)
        .arg(source)
        .status()
        .expect("running rustc for kindling-init");
    assert!(status.success(), "building kindling-init ({source}) failed");
}
