//! The probe paths side by side: BTF tracepoints (the default) against the
//! classic tracepoints (`--classic-tracepoints`, the fallback), in one run.
//!
//! The question is who pays. Every context switch on the host runs the
//! scheduler programs, so the first measurement is the slowdown of a
//! workload pintrace is *not* tracing (it records an idle, unrelated
//! process); the second, of the workload it records, beside bpftrace merely
//! counting the same events. Each round runs every configuration once, in an
//! order that rotates from round to round; ratios are of medians. Then, with
//! `kernel.bpf_stats_enabled` on, the BPF run time per program run, from the
//! programs' fdinfo. Beside both, the floor: an empty program on the same
//! BTF tracepoints (`empty_bpf`), which costs what any program there costs.
use std::{
    fmt::Write as _,
    io::BufReader,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::{
    bench_util::{
        bpf_prog_stats, bpftrace_script, endless_pipe, finish, median, read_until, recorded, signal, start_record_with,
        wait_rusage, BpfStats, Workload,
    },
    empty_bpf::EmptyPrograms,
    root,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cfg {
    Untraced,
    /// pintrace records an idle, unrelated process.
    ForeignBtf,
    ForeignClassic,
    /// pintrace records the workload.
    OwnBtf,
    OwnClassic,
    /// bpftrace counts the workload's events in maps.
    Bpftrace,
    /// An empty program on each of pintrace's BTF tracepoints.
    Empty,
}

/// The tracepoints pintrace attaches as BTF tracepoints: the ones that fire
/// for every task on the host (the wake-ups only where `sched_switch` cannot
/// read the kernel's wait accounting, not on this bench's kernel).
const HOT: &[&str] = &["sched_switch", "sched_migrate_task"];

impl Cfg {
    fn name(self) -> &'static str {
        match self {
            Cfg::Untraced => "untraced",
            Cfg::ForeignBtf => "pintrace recording an idle, unrelated process (BTF tracepoints)",
            Cfg::ForeignClassic => "pintrace recording an idle, unrelated process (classic tracepoints)",
            Cfg::OwnBtf => "pintrace recording the workload (BTF tracepoints)",
            Cfg::OwnClassic => "pintrace recording the workload (classic tracepoints)",
            Cfg::Bpftrace => "bpftrace counting the workload's events in maps",
            Cfg::Empty => "an empty BPF program on the same BTF tracepoints (the floor)",
        }
    }

    fn classic(self) -> bool {
        matches!(self, Cfg::ForeignClassic | Cfg::OwnClassic)
    }
}

struct Load {
    name: &'static str,
    /// Run by `sh -c` after `echo ready && read go && exec`, or by itself when
    /// it says `ready` and waits for a line on its own (`own_handshake`).
    cmd: String,
    own_handshake: bool,
    cfgs: &'static [Cfg],
}

#[derive(Default, Clone, Copy)]
struct Sample {
    wall: f64,
    events: u64,
    lost: u64,
    bytes: u64,
}

const ALL: &[Cfg] =
    &[Cfg::Untraced, Cfg::Empty, Cfg::ForeignBtf, Cfg::ForeignClassic, Cfg::OwnBtf, Cfg::OwnClassic, Cfg::Bpftrace];
const OWN: &[Cfg] = &[Cfg::Untraced, Cfg::OwnBtf, Cfg::OwnClassic];

/// An idle process for the foreign configurations: killed on drop.
struct Idle(Child);

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn one(load: &Load, cfg: Cfg, pintrace: &Path, idle: u32, scratch: &Path) -> Result<Sample> {
    let script = if load.own_handshake {
        format!("exec {}", load.cmd)
    } else {
        format!("echo ready && read go && exec {}", load.cmd)
    };
    let mut w = Workload::start(Command::new("sh").args(["-c", &script]))?;
    let file = scratch.join("path.ptr");
    let _ = std::fs::remove_file(&file);
    let extra: &[&str] = if cfg.classic() { &["--classic-tracepoints"] } else { &[] };
    let empty = if cfg == Cfg::Empty { Some(EmptyPrograms::attach(HOT)?) } else { None };
    let mut tracer = match cfg {
        Cfg::Untraced | Cfg::Empty => None,
        Cfg::ForeignBtf | Cfg::ForeignClassic => Some(start_record_with(pintrace, idle, &file, extra)?.0),
        Cfg::OwnBtf | Cfg::OwnClassic => Some(start_record_with(pintrace, w.pid, &file, extra)?.0),
        Cfg::Bpftrace => {
            let script = scratch.join("path.bt");
            std::fs::write(&script, bpftrace_script(w.pid))?;
            let mut c = Command::new("bpftrace").arg(&script).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
            let mut out = BufReader::new(c.stdout.take().context("stdout")?);
            read_until(&mut out, "attached", "bpftrace")?;
            thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            Some(c)
        }
    };
    let start = Instant::now();
    w.go()?;
    w.wait()?;
    let mut s = Sample { wall: start.elapsed().as_secs_f64(), ..Sample::default() };
    drop(empty);
    if let Some(c) = tracer.as_mut() {
        if cfg == Cfg::Bpftrace {
            signal(c, libc::SIGINT);
            wait_rusage(c)?;
        } else {
            // A foreign target does not exit: interrupt at once.
            let timeout = if matches!(cfg, Cfg::OwnBtf | Cfg::OwnClassic) { 10 } else { 0 };
            finish(c, Duration::from_secs(timeout))?;
            let (events, lost) = recorded(pintrace, &file)?;
            s.events = events;
            s.lost = lost;
            s.bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(s)
}

/// BPF (run time ns, runs) of the empty programs over a window while the
/// ping-pong runs.
fn empty_window() -> Result<(f64, f64)> {
    let mut w = endless_pipe()?;
    let empty = EmptyPrograms::attach(HOT)?;
    w.go()?;
    let window = stats_window(std::process::id());
    drop(empty);
    window
}

/// BPF (run time ns, runs) of the programs `pid` holds, over 3 s after 1 s
/// of warm-up.
fn stats_window(pid: u32) -> Result<(f64, f64)> {
    thread::sleep(Duration::from_secs(1));
    let a = bpf_prog_stats(pid)?;
    thread::sleep(Duration::from_secs(3));
    let b = bpf_prog_stats(pid)?;
    Ok((b.0.saturating_sub(a.0) as f64, b.1.saturating_sub(a.1) as f64))
}

/// BPF (run time ns, runs) of pintrace's programs over a window while the
/// ping-pong runs, pintrace recording `target` (None: the ping-pong itself).
fn bpf_window(pintrace: &Path, target: Option<u32>, classic: bool, scratch: &Path) -> Result<(f64, f64)> {
    let mut w = endless_pipe()?;
    let extra: &[&str] = if classic { &["--classic-tracepoints"] } else { &[] };
    let (mut t, _) = start_record_with(pintrace, target.unwrap_or(w.pid), &scratch.join("bpf.ptr"), extra)?;
    w.go()?;
    let window = stats_window(t.id())?;
    drop(w);
    finish(&mut t, Duration::from_secs(0))?;
    Ok(window)
}

pub fn run(pintrace: &Path, bins: &Path, rounds: usize) -> Result<String> {
    let scratch = root().join("target/bench");
    std::fs::create_dir_all(&scratch)?;
    let idle = Idle(Command::new("sleep").arg("100000").spawn().context("starting an idle process")?);
    let idle_pid = idle.0.id();
    let loads = [
        Load {
            name: "`perf bench sched pipe -T` on 1 CPU (500k round trips, ~1.5 M switches/s)",
            cmd: "taskset -c 0 perf bench sched pipe -T -l 500000".into(),
            own_handshake: false,
            cfgs: ALL,
        },
        Load {
            name: "`perf bench sched messaging -t -p` (10 groups, 1000 loops)",
            cmd: "perf bench sched messaging -t -p -g 10 -l 1000".into(),
            own_handshake: false,
            cfgs: OWN,
        },
        Load {
            name: "thread churn: 20,000 threads created, each sleeping 2 ms",
            cmd: format!("{} 20000", bins.join("threads").display()),
            own_handshake: true,
            cfgs: OWN,
        },
        Load {
            name: "syscalls: `perf bench syscall basic` (10 M)",
            cmd: "perf bench syscall basic -l 10000000".into(),
            own_handshake: false,
            cfgs: OWN,
        },
        Load {
            name: "tight loop (awk, no syscalls)",
            cmd: "awk 'BEGIN { for (i = 0; i < 20000000; i++) s += i }'".into(),
            own_handshake: false,
            cfgs: OWN,
        },
    ];
    let mut results: Vec<Vec<Vec<Sample>>> = loads.iter().map(|l| vec![Vec::new(); l.cfgs.len()]).collect();
    for round in 0..rounds {
        for (li, load) in loads.iter().enumerate() {
            for k in 0..load.cfgs.len() {
                let ci = (k + round) % load.cfgs.len();
                let cfg = load.cfgs[ci];
                let s = one(load, cfg, pintrace, idle_pid, &scratch)
                    .with_context(|| format!("{} under {}", load.name, cfg.name()))?;
                eprintln!("bench: path round {} {} {}: {:.3} s", round + 1, load.name, cfg.name(), s.wall);
                results[li][ci].push(s);
            }
        }
    }

    eprintln!("bench: path: BPF run time per program run (kernel.bpf_stats_enabled on)");
    let stats = BpfStats::on()?;
    let mut per_run: Vec<[Vec<f64>; 5]> = Vec::new();
    for round in 0..3 {
        let mut r: [Vec<f64>; 5] = Default::default();
        for (i, (target, classic)) in
            [(Some(idle_pid), false), (Some(idle_pid), true), (None, false), (None, true)].into_iter().enumerate()
        {
            let (ns, runs) = bpf_window(pintrace, target, classic, &scratch)?;
            r[i].push(if runs > 0.0 { ns / runs } else { f64::NAN });
            r[i].push(runs / 3.0);
        }
        let (ns, runs) = empty_window()?;
        r[4].push(if runs > 0.0 { ns / runs } else { f64::NAN });
        r[4].push(runs / 3.0);
        eprintln!(
            "bench: path bpf round {}: foreign {:.1}/{:.1} ns, own {:.1}/{:.1} ns (BTF/classic), empty {:.1} ns",
            round + 1,
            r[0][0],
            r[1][0],
            r[2][0],
            r[3][0],
            r[4][0]
        );
        per_run.push(r);
    }
    drop(stats);
    drop(idle);

    let mut o = String::new();
    let _ = writeln!(
        o,
        "## Probe paths: BTF tracepoints (default) against classic tracepoints (fallback), {rounds} rounds, \
         rotating order, medians\n"
    );
    for (li, load) in loads.iter().enumerate() {
        let base = median(results[li][0].iter().map(|s| s.wall).collect());
        let _ = writeln!(o, "### {}\n", load.name);
        let _ = writeln!(o, "| configuration | median wall (s) | vs untraced | events | lost | bytes/event |");
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for (ci, cfg) in load.cfgs.iter().enumerate() {
            let s = &results[li][ci];
            let wall = median(s.iter().map(|s| s.wall).collect());
            let events = median(s.iter().map(|s| s.events as f64).collect());
            let bytes = median(s.iter().map(|s| s.bytes as f64).collect());
            let lost = s.iter().map(|s| s.lost).max().unwrap_or(0);
            let recorded = matches!(cfg, Cfg::OwnBtf | Cfg::OwnClassic);
            let (events, lost, per) = if recorded {
                (format!("{events:.0}"), lost.to_string(), format!("{:.1}", bytes / events.max(1.0)))
            } else {
                ("-".into(), "-".into(), "-".into())
            };
            let _ = writeln!(o, "| {} | {wall:.3} | {:.3} | {events} | {lost} | {per} |", cfg.name(), wall / base);
        }
        let _ = writeln!(o);
    }
    let col = |i: usize, j: usize| median(per_run.iter().map(|r| r[i][j]).collect());
    let _ = writeln!(
        o,
        "BPF run time per program run while `perf bench sched pipe -T` runs on CPU 0 (3 windows of 3 s, medians; \
         kernel.bpf_stats_enabled adds its own clock reads to each run):\n"
    );
    let _ = writeln!(o, "| pintrace records | BTF tracepoints | classic tracepoints | goal (BTF) |");
    let _ = writeln!(o, "|---|---|---|---|");
    let _ = writeln!(
        o,
        "| an idle, unrelated process (every run is a foreign event) | {:.1} ns ({:.0} runs/s) | {:.1} ns ({:.0} runs/s) | < 15 ns |",
        col(0, 0),
        col(0, 1),
        col(1, 0),
        col(1, 1)
    );
    let _ = writeln!(
        o,
        "| the ping-pong (nearly every run records an event) | {:.1} ns ({:.0} runs/s) | {:.1} ns ({:.0} runs/s) | < 50 ns |",
        col(2, 0),
        col(2, 1),
        col(3, 0),
        col(3, 1)
    );
    let floor = col(4, 0);
    let _ = writeln!(
        o,
        "| nothing: an empty program on the same BTF tracepoints (the floor) | {floor:.1} ns ({:.0} runs/s) | - | - |\n",
        col(4, 1)
    );
    let _ = writeln!(
        o,
        "Above the floor, pintrace's own work per run (BTF tracepoints): {:.1} ns for a foreign event, \
         {:.1} ns for a recorded one.\n",
        col(0, 0) - floor,
        col(2, 0) - floor
    );
    Ok(o)
}
