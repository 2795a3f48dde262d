//! `cargo xtask bench --only-diagnosis`: the findings on a corpus of Go
//! programs written for it (tests/go), healthy and pathological, each
//! built by Go 1.19 and by the current Go. For each program and version:
//! the findings expected, those that fired, and how long each took from
//! the start of the recording; then the confusion counts, precision and
//! recall over the whole corpus. The goal: every expected finding within
//! 10 s and no other.
//!
//! Some cases need a setting: a second process of CPU-bound loops beside
//! the program (noisy neighbours), a CPU quota (a cgroup v1 `cpu` group,
//! removed after), a GOMAXPROCS in the environment.
use std::{
    collections::BTreeSet,
    fmt::Write as _,
    io::{BufRead, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{root, setup};

/// Every expected finding must fire within this long.
const GOAL: Duration = Duration::from_secs(10);

/// What runs beside a program.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setting {
    None,
    /// Two CPU-bound shell loops of another process, one on each CPU.
    Hogs,
    /// A 0.5-CPU quota on the program's group.
    Quota,
}

struct Case {
    program: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    setting: Setting,
    expected: &'static [&'static str],
    /// Built with cgo.
    cgo: bool,
}

const fn case(program: &'static str, args: &'static [&'static str], expected: &'static [&'static str]) -> Case {
    Case { program, args, env: &[], setting: Setting::None, expected, cgo: false }
}

fn corpus() -> Vec<Case> {
    vec![
        // Healthy, of different kinds.
        case("healthy", &["8000"], &[]),
        case("httpserver", &["8000"], &[]),
        case("gcbatch", &["8000"], &[]),
        case("timers", &["5000", "8000"], &[]),
        case("pipeline", &["4", "1", "8000"], &[]),
        case("pipeline", &["4", "16", "8000"], &[]),
        case("pool", &["8", "8000", "8000"], &[]),
        case("lockonce", &["8000"], &[]),
        case("busy", &["2", "8000"], &[]),
        case("migrate", &["2", "8000", "self"], &[]),
        Case { setting: Setting::Hogs, ..case("healthy", &["8000"], &[]) },
        // Pathological, each rule by at least two programs of different shape.
        case("lockexit", &["8000"], &["thread_churn"]),
        case("recycle", &["4", "8000"], &["thread_churn"]),
        case("perrequest", &["200", "8000"], &["thread_growth"]),
        case("blocking", &["64", "8000"], &["thread_growth"]),
        Case { cgo: true, ..case("cgocalls", &["64", "8000"], &["thread_growth"]) },
        case("busy", &["4", "8000"], &["sigurg_preemption"]),
        case("busy", &["4", "8000", "1"], &["gomaxprocs_below_cpus", "sigurg_preemption"]),
        Case { env: &[("GOMAXPROCS", "1")], ..case("pipeline", &["4", "16", "8000"], &["gomaxprocs_below_cpus"]) },
        // Six Ps for six goroutines: none waits for a P (they wait for CPUs),
        // so sysmon's preemption frees nothing: no sigurg_preemption.
        case("busy", &["6", "8000", "6"], &["gomaxprocs_over_quota", "runq_latency"]),
        Case { setting: Setting::Quota, ..case("busy", &["2", "8000"], &["gomaxprocs_over_quota"]) },
        // The hot worker's long runs hold a P the others wait for.
        case("starve", &["4", "8000"], &["pinned_starvation", "sigurg_preemption"]),
        case("pool", &["8", "20000", "8000", "3"], &["pinned_starvation", "sigurg_preemption"]),
        // A pinned goroutine in a CPU-bound loop: sysmon preempts it for
        // nothing (the info-level sigurg_preemption).
        case("migrate", &["1", "8000"], &["pinned_migration", "sigurg_preemption"]),
        Case { setting: Setting::Hogs, ..case("busy", &["2", "8000"], &["noisy_neighbor", "runq_latency"]) },
        Case { setting: Setting::Hogs, ..case("gcbatch", &["8000"], &["noisy_neighbor"]) },
    ]
}

/// Builds tests/go/NAME with `go` as a module (go 1.19 in go.mod), offline.
fn build(go: &Path, name: &str, cgo: bool) -> Result<PathBuf> {
    let version = Command::new(go).args(["env", "GOVERSION"]).env("GOTOOLCHAIN", "local").output()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let dir = root().join("target/go-diagnosis").join(&version);
    let module = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(&module)?;
    std::fs::copy(root().join("tests/go").join(name).join("main.go"), module.join("main.go"))?;
    std::fs::write(module.join("go.mod"), format!("module pintrace.test/{name}\n\ngo 1.19\n"))?;
    let out = dir.join(name);
    let status = Command::new(go)
        .current_dir(&module)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "on")
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .env("GOCACHE", root().join("target/go-cache"))
        .status()?;
    if !status.success() {
        bail!("building tests/go/{name} with {} failed", go.display());
    }
    Ok(out)
}

/// Kills its children when dropped.
struct Hogs(Vec<Child>);

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A cgroup v1 cpu group with a quota, removed when dropped.
struct Group(PathBuf);

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(procs) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for p in procs.lines() {
                let _ = std::fs::write("/sys/fs/cgroup/cpu/cgroup.procs", p);
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

struct Outcome {
    fired: Vec<(String, u64)>,
}

fn run_case(pintrace: &Path, bin: &Path, c: &Case, file: &Path) -> Result<Outcome> {
    let _hogs = (c.setting == Setting::Hogs).then(|| {
        Hogs((0..2).filter_map(|_| Command::new("sh").args(["-c", "while :; do :; done"]).spawn().ok()).collect())
    });
    let mut cmd = Command::new(bin);
    cmd.args(c.args).envs(c.env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let pid: u32 = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("{} said {line:?}", bin.display()))?;
    let _group = if c.setting == Setting::Quota {
        let g = PathBuf::from(format!("/sys/fs/cgroup/cpu/pintrace-diagnosis-{}", std::process::id()));
        let _ = std::fs::remove_dir(&g);
        std::fs::create_dir(&g).context("a cgroup v1 cpu group")?;
        std::fs::write(g.join("cpu.cfs_period_us"), "100000")?;
        std::fs::write(g.join("cpu.cfs_quota_us"), "50000")?;
        std::fs::write(g.join("cgroup.procs"), pid.to_string())?;
        Some(Group(g))
    } else {
        None
    };
    let _ = std::fs::remove_file(file);
    let mut rec = Command::new(pintrace)
        .args(["record", "--pid", &pid.to_string(), "-o"])
        .arg(file)
        .stderr(Stdio::piped())
        .spawn()?;
    let mut err = BufReader::new(rec.stderr.take().context("stderr")?);
    let mut l = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !l.contains("recording") {
        l.clear();
        if err.read_line(&mut l)? == 0 || Instant::now() > deadline {
            bail!("pintrace record did not start on {}", bin.display());
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    writeln!(stdin, "go")?;
    loop {
        line.clear();
        if out.read_line(&mut line)? == 0 || line.starts_with("done") {
            break;
        }
    }
    drop(stdin);
    child.wait()?;
    rec.wait()?;
    let report = Command::new(pintrace).args(["report", "--json"]).arg(file).output()?;
    let r: serde_json::Value = serde_json::from_slice(&report.stdout).context("report --json")?;
    let fired = r["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| (f["rule"].as_str().unwrap_or("?").to_string(), f["first_ns"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome { fired })
}

pub fn run(pintrace: &Path) -> Result<String> {
    let versions = [PathBuf::from(setup::GO), setup::go_new()];
    let file = root().join("target/bench-diagnosis.ptr");
    let mut rows = String::new();
    let (mut tp, mut fp, mut fn_, mut late) = (0usize, 0usize, 0usize, 0usize);
    let mut worst = Duration::ZERO;
    let mut clean = 0usize;
    let cases = corpus();
    for c in &cases {
        for go in &versions {
            let bin = build(go, c.program, c.cgo)?;
            let version =
                bin.parent().and_then(|d| d.file_name()).map_or(String::new(), |v| v.to_string_lossy().into());
            let o = run_case(pintrace, &bin, c, &file)?;
            let expected: BTreeSet<&str> = c.expected.iter().copied().collect();
            let fired: BTreeSet<&str> = o.fired.iter().map(|(r, _)| r.as_str()).collect();
            let hits = expected.intersection(&fired).count();
            let misses = expected.difference(&fired).count();
            let extra = fired.difference(&expected).count();
            tp += hits;
            fn_ += misses;
            fp += extra;
            let mut times = Vec::new();
            for (rule, at) in &o.fired {
                let at = Duration::from_nanos(*at);
                if expected.contains(rule.as_str()) {
                    worst = worst.max(at);
                    late += usize::from(at > GOAL);
                }
                times.push(format!("{rule} {:.0}s", at.as_secs_f64()));
            }
            let ok = misses == 0 && extra == 0;
            clean += usize::from(ok);
            let setting = match c.setting {
                Setting::None => "",
                Setting::Hogs => " + 2 CPU hogs",
                Setting::Quota => " in 0.5 CPU",
            };
            let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
            let _ = writeln!(
                rows,
                "| {}{} {}{setting} | {version} | {} | {} | {} |",
                env.concat(),
                c.program,
                c.args.join(" "),
                if expected.is_empty() { "(none)".to_string() } else { c.expected.join(", ") },
                if times.is_empty() { "(none)".to_string() } else { times.join(", ") },
                if ok { "ok" } else { "**differs**" }
            );
            eprintln!("diagnosis: {} {} {version}: {}", c.program, c.args.join(" "), if ok { "ok" } else { "differs" });
        }
    }
    let _ = std::fs::remove_file(&file);
    let precision = if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 };
    let recall = if tp + fn_ == 0 { 1.0 } else { tp as f64 / (tp + fn_) as f64 };
    let mut out = String::new();
    let _ = writeln!(out, "## Diagnosis: findings on the corpus (tests/go), Go 1.19 and current\n");
    let _ = writeln!(out, "| program | Go | expected | fired (first, from the start) | |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    out.push_str(&rows);
    let _ = writeln!(
        out,
        "\n{} runs, {clean} exactly as expected. Expected findings fired: {tp}; missed: {fn_}; fired but not expected: {fp}. \
         Precision {precision:.2}, recall {recall:.2}. Slowest expected finding: {:.0} s (goal {} s; {late} later).\n",
        cases.len() * versions.len(),
        worst.as_secs_f64(),
        GOAL.as_secs()
    );
    Ok(out)
}
