//! `cargo xtask`: prerequisites, the demo, the tests and the benchmarks.
//!
//! The BPF object itself is built by `pintrace/build.rs`; this only makes
//! sure that what that build needs is installed, and runs things.
use std::{path::PathBuf, process::Command};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

mod bench;
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
    /// Record the bundled Go demo workload for a few seconds and print the report (root)
    Demo {
        /// How long to record
        #[arg(long, default_value_t = 5)]
        seconds: u32,
    },
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
    setup::all()?;
    setup::require_root("cargo xtask demo")?;
    let pintrace = build_pintrace(true)?;
    let demo = build_go("demo")?;
    let file = root().join("target/demo.ptr");
    println!("xtask: starting the demo workload (Go: busy goroutines, LockOSThread churn, a pinned idle worker)");
    let mut workload = Command::new(&demo)
        .arg(format!("{}", seconds + 2))
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting the demo workload")?;
    println!("xtask: recording it for {seconds} s: pintrace record --pid {} -o {}", workload.id(), file.display());
    let recorded = Command::new(&pintrace)
        .args(["record", "--pid", &workload.id().to_string(), "--duration", &format!("{seconds}s"), "-o"])
        .arg(&file)
        .status();
    let _ = workload.kill();
    let _ = workload.wait();
    if !recorded.context("starting pintrace")?.success() {
        bail!("pintrace record failed");
    }
    println!("xtask: pintrace report {}\n", file.display());
    run(Command::new(&pintrace).arg("report").arg(&file))
}

fn test(args: &[String]) -> Result<()> {
    setup::all()?;
    setup::require_root("cargo xtask test (the integration tests load BPF programs)")?;
    let pintrace = build_pintrace(false)?;
    // Unit tests, render and CLI tests of the default members, then the
    // privileged integration tests one at a time: they measure scheduling,
    // so they must not compete with each other for the two CPUs.
    run(cargo().args(["test", "--workspace", "--exclude", "pintrace-tests"]).args(args))?;
    run(cargo()
        .args(["test", "--package", "pintrace-tests"])
        .args(args)
        .args(["--", "--test-threads=1"])
        .env("PINTRACE_BIN", &pintrace)
        .env("PINTRACE_GO", setup::GO))
}
