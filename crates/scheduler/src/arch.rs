//! Architectures: which ones the host runs natively, `arm64` through user-mode emulation
//! (qemu-user with binfmt_misc) on an x86-64 host, and the ELF check that keeps a binary of
//! one architecture from running as a function of the other.

use std::io::Read;
use std::path::Path;

use kindling_model::runtime::Availability;

/// Where the kernel lists its binfmt_misc handlers.
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// An ELF file's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Machine {
    X86_64,
    Aarch64,
    Other(u16),
}

impl Machine {
    /// Lambda's name for it (`x86_64`, `arm64`).
    pub fn lambda_name(self) -> String {
        match self {
            Self::X86_64 => "x86_64".into(),
            Self::Aarch64 => "arm64".into(),
            Self::Other(m) => format!("ELF machine {m:#x}"),
        }
    }
}

/// The machine of an ELF file, `None` when `path` is not ELF (a script, for example).
pub(crate) fn elf_machine(path: &Path) -> Option<Machine> {
    let mut head = [0u8; 20];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    // e_machine at offset 18, in the file's byte order (EI_DATA: 1 little, 2 big endian).
    let m = if head[5] == 2 {
        u16::from_be_bytes([head[18], head[19]])
    } else {
        u16::from_le_bytes([head[18], head[19]])
    };
    Some(match m {
        0x3e => Machine::X86_64,
        0xb7 => Machine::Aarch64,
        other => Machine::Other(other),
    })
}

/// The host's architecture in Lambda's terms.
pub(crate) fn host() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "x86_64",
        other => other,
    }
}

/// The enabled binfmt_misc handler for aarch64 ELF binaries (its interpreter), if any.
fn aarch64_emulator() -> Option<String> {
    let dir = std::fs::read_dir(BINFMT_DIR).ok()?;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.contains("aarch64") || name.contains("aarch64_be") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).ok()?;
        let enabled = text.lines().next() == Some("enabled");
        // Without `F` (fix binary) the kernel opens the interpreter at exec time, inside the
        // sandbox's mount namespace, where it may not exist.
        let fixed = text
            .lines()
            .find_map(|l| l.strip_prefix("flags: "))
            .is_some_and(|f| f.contains('F'));
        let interpreter = text
            .lines()
            .find_map(|l| l.strip_prefix("interpreter "))
            .unwrap_or_default();
        if enabled && fixed && Path::new(interpreter).exists() {
            return Some(interpreter.to_string());
        }
    }
    None
}

/// Whether functions of `architecture` can run here.
pub(crate) fn availability(architecture: &str) -> Availability {
    let host = host();
    if architecture == host {
        return Availability::Exact;
    }
    if architecture == "arm64" && host == "x86_64" {
        return match aarch64_emulator() {
            Some(interpreter) => Availability::Substitute(format!(
                "architecture arm64 runs on this x86_64 host through user-mode emulation \
                 ({interpreter}): expect it to be several times slower than native"
            )),
            None => Availability::Missing(
                "Architecture arm64 cannot run on this x86_64 Kindling host: no enabled \
                 binfmt_misc handler for aarch64 binaries with the fix-binary flag was found \
                 in /proc/sys/fs/binfmt_misc; install Debian's qemu-user-static and \
                 binfmt-support (apt-get install qemu-user-static binfmt-support), then \
                 `update-binfmts --enable qemu-aarch64`."
                    .into(),
            ),
        };
    }
    Availability::Missing(format!(
        "Architecture {architecture} cannot run on this {host} Kindling host."
    ))
}

/// For a runtime Kindling starts with the host's interpreter (Python, Node.js, Java, Ruby):
/// what an `architecture` other than the host's means.
pub(crate) fn interpreter_note(runtime: &str, architecture: &str) -> Option<String> {
    (architecture != host()).then(|| {
        format!(
            "architecture {architecture}: {runtime} runs on this host's {} interpreter (the \
             function's own code behaves the same; native {architecture} libraries in the \
             package or its layers will not load)",
            host()
        )
    })
}

/// Refuses a bootstrap binary built for another architecture than the function's
/// (scripts and other non-ELF files pass: their interpreter decides).
pub(crate) fn check_binary(path: &Path, architecture: &str) -> Result<(), String> {
    match elf_machine(path) {
        None => Ok(()),
        Some(m) if m.lambda_name() == architecture => Ok(()),
        Some(m) => Err(format!(
            "{} is a {} binary, but the function's architecture is {architecture}: build it for \
             {architecture}, or set Architectures to [\"{}\"].",
            path.display(),
            m.lambda_name(),
            m.lambda_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF\x02\x01\x01\x00".to_vec();
        h.resize(18, 0);
        h.extend_from_slice(&machine.to_le_bytes());
        h.resize(64, 0);
        h
    }

    #[test]
    fn reads_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let x86 = dir.path().join("x86");
        std::fs::write(&x86, elf(0x3e)).unwrap();
        let arm = dir.path().join("arm");
        std::fs::write(&arm, elf(0xb7)).unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        assert_eq!(elf_machine(&x86), Some(Machine::X86_64));
        assert_eq!(elf_machine(&arm), Some(Machine::Aarch64));
        assert_eq!(elf_machine(&script), None);
        assert!(check_binary(&arm, "arm64").is_ok());
        assert!(check_binary(&script, "arm64").is_ok());
        let e = check_binary(&x86, "arm64").unwrap_err();
        assert!(e.contains("is a x86_64 binary"), "{e}");
        assert!(check_binary(&arm, "x86_64").is_err());
    }

    #[test]
    fn the_host_architecture_is_exact() {
        assert_eq!(availability(host()), Availability::Exact);
        assert!(matches!(availability("sparc"), Availability::Missing(_)));
    }
}
