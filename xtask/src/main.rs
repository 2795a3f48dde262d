//! `cargo xtask`: prerequisites, the demo, the tests and the benchmarks.
//!
//! The BPF object itself is built by `pintrace/build.rs`; this only makes
//! sure that what that build needs is installed, and runs things.
use std::{path::PathBuf, process::Command};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

mod bench;
mod bench_diagnosis;
mod bench_go;
mod bench_long;
mod bench_path;
mod bench_top;
mod bench_util;
mod empty_bpf;
mod setup;

#[derive(Parser)]
#[command(about = "pintrace's developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need (idempotent; says what it does)
    Setup,
    /// Open `pintrace top` on the bundled Go demo workload (root); --batch output without a terminal
    Demo {
        /// How long the demo workload runs
        #[arg(long, default_value_t = 300)]
        seconds: u32,
    },
    /// The checks CI runs before the tests: rustfmt, clippy (user-space crates, then the kernel
    /// crate for its BPF target) and the docs, all with warnings denied
    Lint,
    /// Run every test: unit, CLI, and the privileged integration tests on the real kernel (root)
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter)
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Measure overhead and throughput against bpftrace and perf (root)
    Bench(bench::Args),
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::all(),
        Task::Demo { seconds } => demo(seconds),
        Task::Lint => lint(),
        Task::Test { args } => test(&args),
        Task::Bench(args) => {
            setup::all()?;
            setup::require_root("cargo xtask bench")?;
            bench::run(&args)
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Builds pintrace (with its kernel programs) and returns the binary's path.
pub fn build_pintrace(release: bool) -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--package", "pintrace"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    Ok(root().join("target").join(if release { "release" } else { "debug" }).join("pintrace"))
}

/// Builds a Go program from tests/go/NAME into target/go/NAME.
pub fn build_go(name: &str) -> Result<PathBuf> {
    let out = root().join("target/go").join(name);
    let src = root().join("tests/go").join(name).join("main.go");
    run(Command::new(setup::GO)
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOCACHE", root().join("target/go-cache")))?;
    Ok(out)
}

fn demo(seconds: u32) -> Result<()> {
    use std::io::IsTerminal as _;
    setup::all()?;
    setup::require_root("cargo xtask demo")?;
    let pintrace = build_pintrace(true)?;
    let demo = build_go("demo")?;
    println!("xtask: the demo workload is Go: busy goroutines, LockOSThread churn, a pinned idle worker");
    let mut cmd = Command::new(&pintrace);
    cmd.arg("top");
    if std::io::stdout().is_terminal() {
        println!("xtask: pintrace top -- {} {seconds}   (q quits, ? lists the keys)", demo.display());
    } else {
        // No terminal to draw on: the same numbers, one block a second.
        println!("xtask: no terminal: pintrace top --batch -- {} {seconds}", demo.display());
        cmd.arg("--batch");
    }
    cmd.arg("--").arg(&demo).arg(seconds.to_string());
    run(&mut cmd)
}

fn lint() -> Result<()> {
    setup::all()?;
    setup::lint_tools()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "pintrace-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The kernel crate on its own target, as aya-build builds it (the
    // architecture cfg included: it selects code), with nightly.
    let mut kernel = Command::new("rustup");
    kernel
        .current_dir(root())
        .args(["run", "nightly", "cargo", "clippy", "--package", "pintrace-ebpf", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core", "--", "-D", "warnings"])
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO")
        .env("CARGO_ENCODED_RUSTFLAGS", format!("--cfg\x1fbpf_target_arch=\"{}\"", std::env::consts::ARCH));
    run(&mut kernel)?;
    run(cargo()
        .args(["doc", "--workspace", "--exclude", "pintrace-ebpf", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))
}

fn test(args: &[String]) -> Result<()> {
    setup::all()?;
    setup::require_root("cargo xtask test (the integration tests load BPF programs)")?;
    let pintrace = build_pintrace(false)?;
    // Unit tests, render and CLI tests of the default members, then the
    // privileged integration tests one at a time: they measure scheduling,
    // so they must not compete with each other for the two CPUs.
    run(cargo().args(["test", "--workspace", "--exclude", "pintrace-tests"]).args(args))?;
    let privileged = |files: &[&str], classic: bool| {
        let mut c = cargo();
        c.args(["test", "--package", "pintrace-tests"]);
        for f in files {
            c.args(["--test", f]);
        }
        c.args(args)
            .args(["--", "--test-threads=1"])
            .env("PINTRACE_BIN", &pintrace)
            .env("PINTRACE_GO", setup::GO)
            .env("PINTRACE_GO_NEW", setup::go_new())
            .env("PINTRACE_CLASSIC", if classic { "1" } else { "0" });
        run(&mut c)
    };
    privileged(&[], false)?;
    // The exactness tests again on the fallback path: classic tracepoints,
    // as on kernels without BTF or the BTF tracepoints' arguments.
    eprintln!("xtask: the exactness tests again, on classic tracepoints (--classic-tracepoints)");
    privileged(&["threads", "signals", "affinity", "preemption", "runq", "tidset", "cgroup", "hostile"], true)
}
