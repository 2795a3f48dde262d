//! `cargo xtask bench`: what tracing costs, measured side by side in one run.
//!
//! Each round runs every workload untraced, under `pintrace record`, under
//! a bpftrace script that counts the same tracepoints in kernel maps, and
//! under `perf record` of the same tracepoints, in an order that rotates
//! from round to round. Wall times are compared as medians. pintrace's own
//! CPU time and peak memory come from wait4(2); events, losses and bytes
//! per event from its record file.
//!
//! Then the live screen's own cost: `pintrace top`'s CPU and memory and its
//! time to the first screen (bench_top.rs); `--only-top` runs only that.
//! Last, the Go runtime reading, the LockOSThread uprobe and the throttle
//! flag against the previous version (bench_go.rs); `--only-go` runs only that.
//! Then a long recording at ~1 M events/s and its report (bench_long.rs);
//! `--only-long` runs only that. And the probe paths, BTF tracepoints against
//! classic ones, for an unrelated process and the traced one (bench_path.rs);
//! `--only-path` runs only that. Last, the findings on the corpus of Go
//! programs (bench_diagnosis.rs): `--only-diagnosis`.
use std::{
    fmt::Write as _,
    io::{BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::{
    bench_util::{bpftrace_script, median, read_until, signal, wait_rusage},
    build_pintrace, root, setup,
};

#[derive(clap::Args)]
pub struct Args {
    /// Rounds (each runs every workload under every tracer once)
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Only measure the live screen (`pintrace top`): CPU, peak memory, time to the first screen
    #[arg(long)]
    only_top: bool,
    /// Only measure the Go runtime reading, the LockOSThread uprobe and the throttle flag against fb1de80
    #[arg(long, conflicts_with = "only_top")]
    only_go: bool,
    /// Only the long run: a recording at ~1 M events/s (memory flat, nothing lost) and its report
    #[arg(long, conflicts_with_all = ["only_top", "only_go"])]
    only_long: bool,
    /// Only the probe paths: BTF against classic tracepoints, for an unrelated and for the traced process
    #[arg(long, conflicts_with_all = ["only_top", "only_go", "only_long"])]
    only_path: bool,
    /// Only the findings on the corpus of Go programs (tests/go), both Go versions:
    /// what fired, what was expected, how long it took, precision and recall
    #[arg(long, conflicts_with_all = ["only_top", "only_go", "only_long", "only_path"])]
    only_diagnosis: bool,
    /// How long the long run records, in seconds
    #[arg(long, default_value_t = 300)]
    long_secs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tracer {
    None,
    Pintrace,
    Bpftrace,
    Perf,
}

const TRACERS: [Tracer; 4] = [Tracer::None, Tracer::Pintrace, Tracer::Bpftrace, Tracer::Perf];

impl Tracer {
    fn name(self) -> &'static str {
        match self {
            Tracer::None => "untraced",
            Tracer::Pintrace => "pintrace record",
            Tracer::Bpftrace => "bpftrace (counting in maps)",
            Tracer::Perf => "perf record -p",
        }
    }
}

struct Workload {
    name: &'static str,
    /// A command that prints nothing it needs and waits for a line on stdin before working.
    argv: Vec<String>,
}

/// What one traced run measured.
#[derive(Default, Clone, Copy)]
struct Sample {
    wall: f64,
    /// The workload's own user + system CPU time: the kernel programs run in its context.
    work_cpu: f64,
    events: u64,
    lost: u64,
    bytes: u64,
    cpu: f64,
    rss_kib: u64,
}

const TRACEPOINTS: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_migrate_task",
    "sched:sched_wakeup",
    "sched:sched_wakeup_new",
    "signal:signal_generate",
    "task:task_newtask",
    "sched:sched_process_exit",
    "task:task_rename",
];

fn one_run(w: &Workload, tracer: Tracer, pintrace: &Path, scratch: &Path) -> Result<Sample> {
    let mut work = Command::new(&w.argv[0])
        .args(&w.argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", w.argv[0]))?;
    let pid = work.id();
    let file = scratch.join(format!("{}.out", w.name));
    let _ = std::fs::remove_file(&file);
    let mut tracer_child = match tracer {
        Tracer::None => None,
        Tracer::Pintrace => {
            let mut c = Command::new(pintrace)
                .args(["record", "--pid", &pid.to_string(), "-o"])
                .arg(&file)
                .stderr(Stdio::piped())
                .spawn()?;
            let mut err = BufReader::new(c.stderr.take().context("stderr")?);
            read_until(&mut err, "pintrace: recording", "pintrace")?;
            thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            Some(c)
        }
        Tracer::Bpftrace => {
            let script = scratch.join("count.bt");
            std::fs::write(&script, bpftrace_script(pid))?;
            let mut c = Command::new("bpftrace").arg(&script).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
            // BEGIN's line arrives once every probe is attached.
            let mut out = BufReader::new(c.stdout.take().context("stdout")?);
            read_until(&mut out, "attached", "bpftrace")?;
            let mut sink = std::fs::File::create(&file)?;
            thread::spawn(move || std::io::copy(&mut out, &mut sink));
            Some(c)
        }
        Tracer::Perf => {
            let c = Command::new("perf")
                .args(["record", "-q", "-o"])
                .arg(&file)
                .args(TRACEPOINTS.iter().flat_map(|t| ["-e", t]))
                .args(["-p", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            // perf record says nothing once attached: give it time.
            thread::sleep(Duration::from_secs(2));
            Some(c)
        }
    };
    let started = Instant::now();
    writeln!(work.stdin.as_mut().context("stdin")?, "go")?;
    let (work_cpu, _) = wait_rusage(&mut work).with_context(|| format!("{} failed", w.name))?;
    let wall = started.elapsed().as_secs_f64();
    let mut sample = Sample { wall, work_cpu, ..Sample::default() };
    if let Some(mut c) = tracer_child.take() {
        if tracer == Tracer::Bpftrace {
            signal(&c, libc::SIGINT);
        }
        let (cpu, rss) = wait_rusage(&mut c)?;
        sample.cpu = cpu;
        sample.rss_kib = rss;
        sample.bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        if tracer == Tracer::Pintrace {
            let out = Command::new(pintrace).args(["report", "--json"]).arg(&file).output()?;
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).context("pintrace report --json")?;
            sample.events = report["events"].as_u64().unwrap_or(0);
            sample.lost = report["lost_events"].as_u64().unwrap_or(0);
        }
        if tracer == Tracer::Perf {
            let out = Command::new("perf").args(["script", "-F", "event", "-i"]).arg(&file).output()?;
            sample.events = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    Ok(sample)
}

pub fn run(args: &Args) -> Result<()> {
    if !args.only_top && !args.only_go && !args.only_long && !args.only_diagnosis {
        setup::apt(&["linux-perf", "bpftrace"])?;
    }
    if args.only_path {
        let pintrace = build_pintrace(true)?;
        build_tests_bins()?;
        let report = crate::bench_path::run(&pintrace, &root().join("target/release"), args.rounds)?;
        print!("{report}");
        std::fs::write(root().join("target/bench-path.md"), &report)?;
        eprintln!("bench: written to target/bench-path.md");
        return Ok(());
    }
    let pintrace = build_pintrace(true)?;
    if args.only_diagnosis {
        setup::all()?;
        let report = crate::bench_diagnosis::run(&pintrace)?;
        print!("{report}");
        std::fs::write(root().join("target/bench-diagnosis.md"), &report)?;
        eprintln!("bench: written to target/bench-diagnosis.md");
        return Ok(());
    }
    if args.only_go {
        let report = crate::bench_go::run(&pintrace, args.rounds)?;
        print!("{report}");
        std::fs::write(root().join("target/bench-go.md"), &report)?;
        eprintln!("bench: written to target/bench-go.md");
        return Ok(());
    }
    build_tests_bins()?;
    let bins = root().join("target/release");
    if args.only_long {
        let report = crate::bench_long::run(&pintrace, &bins, args.long_secs)?;
        print!("{report}");
        std::fs::write(root().join("target/bench-long.md"), &report)?;
        eprintln!("bench: written to target/bench-long.md");
        return Ok(());
    }
    let (mut report, out) = if args.only_top {
        (String::new(), root().join("target/bench-top.md"))
    } else {
        (overhead(args, &pintrace, &bins)?, root().join("target/bench.md"))
    };
    report.push_str(&crate::bench_top::run(&pintrace, &bins)?);
    if !args.only_top {
        report.push_str(&crate::bench_path::run(&pintrace, &bins, args.rounds)?);
        report.push_str(&crate::bench_go::run(&pintrace, args.rounds)?);
        report.push_str(&crate::bench_long::run(&pintrace, &bins, args.long_secs)?);
        report.push_str(&crate::bench_diagnosis::run(&pintrace)?);
    }
    print!("{report}");
    std::fs::write(&out, &report)?;
    eprintln!("bench: written to {}", out.display());
    Ok(())
}

/// The workload programs of tests/src/bin the benchmarks run, into target/release.
fn build_tests_bins() -> Result<()> {
    crate::run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(root()).args([
        "build",
        "--release",
        "--package",
        "pintrace-tests",
        "--bin",
        "pingpong",
        "--bin",
        "paced",
        "--bin",
        "churn",
        "--bin",
        "threads",
    ]))
}

/// The tracers side by side on each workload: the report's first sections.
fn overhead(args: &Args, pintrace: &Path, bins: &Path) -> Result<String> {
    let scratch: PathBuf = root().join("target/bench");
    std::fs::create_dir_all(&scratch)?;
    let pingpong = bins.join("pingpong").display().to_string();
    let workloads = [
        Workload {
            name: "perf bench sched messaging -t -p (10 groups x 40 threads over pipes, 1000 loops)",
            argv: ["sh", "-c", "read go && exec perf bench sched messaging -t -p -g 10 -l 1000"]
                .map(String::from)
                .to_vec(),
        },
        Workload {
            name: "pipe ping-pong, 2 threads on 1 CPU (400k round trips)",
            argv: vec![pingpong, "400000".into()],
        },
    ];
    let mut results: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); TRACERS.len()]; workloads.len()];
    for round in 0..args.rounds {
        for (wi, w) in workloads.iter().enumerate() {
            for k in 0..TRACERS.len() {
                let ti = (k + round) % TRACERS.len();
                let s = one_run(w, TRACERS[ti], pintrace, &scratch)
                    .with_context(|| format!("{} under {}", w.name, TRACERS[ti].name()))?;
                eprintln!("bench: round {} {} {}: {:.3} s", round + 1, w.name, TRACERS[ti].name(), s.wall);
                results[wi][ti].push(s);
            }
        }
    }
    Ok(summarise(&workloads, &results, args.rounds))
}

fn summarise(workloads: &[Workload], results: &[Vec<Vec<Sample>>], rounds: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# pintrace benchmark ({rounds} rounds, tracers in rotating order, medians)\n");
    for (wi, w) in workloads.iter().enumerate() {
        let base = median(results[wi][0].iter().map(|s| s.wall).collect());
        let _ = writeln!(o, "## {}\n", w.name);
        let base_cpu = median(results[wi][0].iter().map(|s| s.work_cpu).collect());
        let _ = writeln!(
            o,
            "| tracer | median wall (s) | wall vs untraced | workload CPU (s) | CPU vs untraced | events | lost | \
             bytes/event | tracer CPU (s) | tracer peak RSS (MiB) |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        for (ti, t) in TRACERS.iter().enumerate() {
            let s = &results[wi][ti];
            let med = |f: fn(&Sample) -> f64| median(s.iter().map(f).collect());
            let wall = med(|s| s.wall);
            let work_cpu = med(|s| s.work_cpu);
            let events = med(|s| s.events as f64);
            let bytes = med(|s| s.bytes as f64);
            let per_event = if events > 0.0 { format!("{:.1}", bytes / events) } else { "-".into() };
            let lost = s.iter().map(|s| s.lost).max().unwrap_or(0);
            let (cpu, rss) = if *t == Tracer::None {
                ("-".to_string(), "-".to_string())
            } else {
                (format!("{:.3}", med(|s| s.cpu)), format!("{:.1}", med(|s| s.rss_kib as f64) / 1024.0))
            };
            let events = if events > 0.0 { format!("{events:.0}") } else { "-".into() };
            let _ = writeln!(
                o,
                "| {} | {wall:.3} | {:.3} | {work_cpu:.3} | {:.3} | {events} | {lost} | {per_event} | {cpu} | {rss} |",
                t.name(),
                wall / base,
                work_cpu / base_cpu
            );
        }
        let pin = &results[wi][1];
        let rate = median(pin.iter().map(|s| s.events as f64 / s.wall).collect());
        let _ = writeln!(
            o,
            "\npintrace sustained {rate:.0} events/s (median), max lost in any run: {}\n",
            pin.iter().map(|s| s.lost).max().unwrap_or(0)
        );
    }
    o
}
