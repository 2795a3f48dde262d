//! Prerequisites: installs what is missing, says what it does, and is fast when all is there.
use std::{fs, path::Path, process::Command};

use anyhow::{bail, Context as _, Result};

use crate::run;

pub const GO: &str = "/usr/lib/go-1.19/bin/go";
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
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("running rustup: pintrace's kernel programs need the nightly toolchain")?;
    if !out.status.success() {
        bail!("the nightly toolchain is not installed; pintrace's kernel programs need it (with rust-src)");
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("rust-src")))
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
}

/// Everything the build, the demo and the tests need.
pub fn all() -> Result<()> {
    apt(&["llvm-22-dev", "golang-1.19-go", "tmux"])?;
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
