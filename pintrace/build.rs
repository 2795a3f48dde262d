//! Builds the kernel programs (`pintrace-ebpf`) with nightly for the BPF
//! target and leaves the object in OUT_DIR, where `probe.rs` embeds it.
//!
//! Escape hatch: `AYA_BUILD_SKIP=1 cargo check` (or clippy) works without
//! nightly or bpf-linker; the binary it produces then says that it has no
//! kernel programs when asked to trace.
use std::{env, fs, path::PathBuf};

use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("pintrace");
    println!("cargo:rerun-if-changed=../pintrace-common/src");
    println!("cargo:rerun-if-changed=../pintrace-ebpf/src");
    println!("cargo:rerun-if-changed=../pintrace-ebpf/Cargo.toml");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        // An empty object: `probe::load` refuses it with a clear message.
        fs::write(&object, []).with_context(|| format!("writing {}", object.display()))?;
        return Ok(());
    }
    aya_build::build_ebpf(
        [Package { name: "pintrace-ebpf", root_dir: "../pintrace-ebpf", ..Default::default() }],
        Toolchain::default(),
    )
    .context("building the kernel programs; run `cargo xtask setup` to install nightly's rust-src and bpf-linker")
}
