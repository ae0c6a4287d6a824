"""Architectures: an arm64 custom runtime (a static aarch64 binary, cross-compiled by the test
with Debian's gcc-aarch64-linux-gnu) and a `lambda_runtime` Rust function cross-compiled for
aarch64-unknown-linux-gnu run through qemu-user emulation on an x86-64 host, or are refused at
CreateFunction when the host cannot emulate them; a binary of one architecture never runs as a
function of the other."""

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

import server_support as s

SOURCE = Path(__file__).parent / "arm64" / "echo_runtime.c"
RUST_ECHO = s.REPO / "tests" / "fixtures" / "rust-echo"
RUST_ARM64_TARGET = s.REPO / "target" / "arm64-fixture"
# rustup's toolchain here has no aarch64 standard library and cannot fetch one offline; Debian's
# rustc-web with libstd-rust-web-dev:arm64 (multiarch) has it (.ci/run installs them).
DEBIAN_RUSTC = Path("/usr/bin/rustc")
BINFMT = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="emulation tests are for x86-64 hosts")


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not ELF"
    return int.from_bytes(head[18:20], "little")


def compile_runtime(compiler: str, out: Path) -> Path:
    cc = shutil.which(compiler)
    assert cc, f"{compiler} is needed (Debian: apt-get install gcc-aarch64-linux-gnu)"
    subprocess.run([cc, "-static", "-O2", "-o", str(out), str(SOURCE)], check=True)
    return out


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    d = tmp_path_factory.mktemp("arch")
    arm = compile_runtime("aarch64-linux-gnu-gcc", d / "arm64")
    x86 = compile_runtime("gcc", d / "x86_64")
    assert elf_machine(arm) == 0xB7 and elf_machine(x86) == 0x3E
    return {"arm64": arm.read_bytes(), "x86_64": x86.read_bytes()}


@pytest.fixture(scope="module")
def rust_arm64() -> bytes:
    """tests/fixtures/rust-echo (the `lambda_runtime` crate) built for aarch64-unknown-linux-gnu,
    statically linked, with Debian's rustc and gcc-aarch64-linux-gnu as the linker."""
    out = subprocess.run([str(DEBIAN_RUSTC), "--print", "sysroot"], capture_output=True, text=True)
    std = Path(out.stdout.strip()) / "lib" / "rustlib" / "aarch64-unknown-linux-gnu"
    assert out.returncode == 0 and std.is_dir(), (
        "an aarch64 Rust standard library is needed: dpkg --add-architecture arm64; apt-get "
        "update; apt-get install rustc-web libstd-rust-web-dev:arm64")
    env = dict(os.environ, RUSTC=str(DEBIAN_RUSTC), CARGO_TARGET_DIR=str(RUST_ARM64_TARGET),
               CARGO_TERM_COLOR="never", RUSTFLAGS="-C target-feature=+crt-static",
               CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="aarch64-linux-gnu-gcc")
    proc = subprocess.run(["cargo", "build", "--release", "--target", "aarch64-unknown-linux-gnu",
                           "--bin", "rust-echo", "--manifest-path", str(RUST_ECHO / "Cargo.toml")],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    binary = RUST_ARM64_TARGET / "aarch64-unknown-linux-gnu" / "release" / "rust-echo"
    assert elf_machine(binary) == 0xB7
    return binary.read_bytes()


def package(binary: bytes) -> bytes:
    return s.zip_files({"bootstrap": (binary, 0o755)})


def emulation_available() -> bool:
    try:
        text = BINFMT.read_text()
    except OSError:
        return False
    return text.startswith("enabled") and "flags:" in text and "F" in text.split("flags:")[1].split()[0]


def need_emulation() -> None:
    """.ci/run registers the emulator: a host without it fails these tests (never a silent
    pass); the refusal such a host gives is what the first test checks there."""
    if not emulation_available():
        pytest.fail(f"{BINFMT} is not an enabled qemu-aarch64 entry with the F flag "
                    "(.ci/run registers it: qemu-user-static, binfmt-support)")


def test_arm64_binary_runs_through_emulation(lam, binaries):
    if not emulation_available():
        code, status, message = s.api_error(
            lam.create_function, FunctionName=s.unique("arm"), Runtime="provided.al2023",
            Role=s.ROLE, Handler="x", Architectures=["arm64"], Code={"ZipFile": package(binaries["arm64"])})
        assert (code, status) == ("InvalidParameterValueException", 400), message
        assert "qemu-user-static" in message, message
        return
    name = s.create(lam, "provided.al2023", "x", package(binaries["arm64"]), Architectures=["arm64"])
    inv = s.invoke(lam, name, {"n": 1})
    assert inv.ok() == {"machine": "aarch64", "event": {"n": 1}}, inv.payload
    lines = s.log_lines(inv)
    assert any("Kindling WARNING" in l and "emulation" in l for l in lines), lines
    assert any("echo runtime up on aarch64" in l for l in lines), lines
    # Warm invocations reuse the emulated process.
    assert s.invoke(lam, name, [2]).ok() == {"machine": "aarch64", "event": [2]}
    assert lam.get_function_configuration(FunctionName=name)["Architectures"] == ["arm64"]


def test_rust_lambda_runtime_function_on_arm64(lam, rust_arm64):
    need_emulation()
    name = s.create(lam, "provided.al2023", "bootstrap", package(rust_arm64),
                    Architectures=["arm64"])
    inv = s.invoke(lam, name, {"n": 1})
    assert inv.ok() == {"n": 1}, inv.payload
    assert any("Kindling WARNING" in l and "emulation" in l for l in s.log_lines(inv))
    # The handler's context and warm state: the same emulated process serves the next invoke.
    info = s.invoke(lam, name, {"info": True, "env": "AWS_LAMBDA_FUNCTION_NAME"}).ok()
    assert info["env"] == {"AWS_LAMBDA_FUNCTION_NAME": name}, info
    assert info["count"] == 2, info
    body = s.invoke(lam, name, {"fail": True, "message": "on arm64"}).error()
    assert (body["errorType"], body["errorMessage"]) == ("FixtureError", "on arm64"), body


def test_x86_binary_never_runs_as_arm64(lam, binaries):
    need_emulation()
    name = s.create(lam, "provided.al2023", "x", package(binaries["x86_64"]), Architectures=["arm64"])
    body = s.invoke(lam, name).error()
    assert body["errorType"] == "Runtime.InvalidEntrypoint", body
    assert "is a x86_64 binary, but the function's architecture is arm64" in body["errorMessage"], body


def test_arm64_binary_never_runs_as_x86_64(lam, binaries):
    name = s.create(lam, "provided.al2023", "x", package(binaries["arm64"]))
    body = s.invoke(lam, name).error()
    assert body["errorType"] == "Runtime.InvalidEntrypoint", body
    assert "is a arm64 binary, but the function's architecture is x86_64" in body["errorMessage"], body


def test_switching_architecture_with_update_function_code(lam, binaries):
    need_emulation()
    name = s.create(lam, "provided.al2023", "x", package(binaries["x86_64"]))
    assert s.invoke(lam, name, 1).ok() == {"machine": "x86_64", "event": 1}
    lam.update_function_code(FunctionName=name, ZipFile=package(binaries["arm64"]), Architectures=["arm64"])
    s.k.wait_active(lam, name)
    assert s.invoke(lam, name, 2).ok() == {"machine": "aarch64", "event": 2}


def test_python_on_arm64_says_it_uses_the_host_interpreter(lam):
    code = s.zip_files({"app.py": "import platform\ndef handler(e, c):\n    return platform.machine()\n"})
    name = s.create(lam, "python3.12", "app.handler", code, Architectures=["arm64"])
    inv = s.invoke(lam, name)
    assert inv.ok() == "x86_64"
    assert any("architecture arm64" in l and "interpreter" in l for l in s.log_lines(inv)), s.log_lines(inv)
