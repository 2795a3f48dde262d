//! `cargo xtask bench --only-go` (and part of the full bench): what the Go
//! runtime reading, the LockOSThread uprobe and the throttle-flag read cost,
//! measured side by side against the previous version of pintrace
//! ([`PREV_COMMIT`], built from a git worktree by [`prev_pintrace`]).
//!
//! - Per-interval reading (GOMAXPROCS, the runtime's M list, the cgroup's
//!   cpu.stat): pintrace's own CPU while `pintrace top --batch --pid P`
//!   traces `tests/go/pinned 1000` (1,000 goroutines locked to their OS
//!   threads, parked), new and previous version alternately on the same
//!   process, [`CPU_ROUNDS`] runs each. CPU is utime + stime of pintrace
//!   from /proc/PID/stat and the exact on-CPU time from its threads'
//!   schedstat, over [`WINDOW`], [`SETTLE`] after its first block. The
//!   difference also holds formatting and modelling the 1,000 threads'
//!   new fields.
//! - The LockOSThread uprobe: `tests/go/lockloop N` times its own loop of N
//!   LockOSThread/UnlockOSThread pairs, untraced, under the previous
//!   version's `pintrace record` (no uprobe) and the new one's, in an
//!   order that rotates each round.
//! - The throttle-flag read at each involuntary switch-out of a target
//!   thread: wall time of `taskset -c 0 perf bench sched pipe -T` (two
//!   threads on one CPU; about 40 % of their switches are involuntary),
//!   the same way; then, with `kernel.bpf_stats_enabled` on for a few
//!   seconds (restored after), the BPF programs' run time per target switch
//!   from each pintrace's program fdinfo.
use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{
    bench_util::{
        bpf_prog_stats, clock_ticks_per_sec, cpu_ticks, endless_pipe, finish, median, on_cpu_ns, recorded,
        start_record, BpfStats, Workload,
    },
    build_go, root, setup,
};

/// The previous version: pintrace before the Go runtime reading, the uprobe and the throttle flag.
pub const PREV_COMMIT: &str = "fb1de80b04547f7fbe0fde8f54ce7ad1cede6c58";
const CPU_ROUNDS: usize = 3;
const SETTLE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(10);
const PINNED_THREADS: u32 = 1000;
const LOCK_CALLS: u64 = 200_000;
const PIPE_OPS: u64 = 400_000;
const BPF_ROUNDS: usize = 3;
const BPF_WINDOW: Duration = Duration::from_secs(3);

/// The previous version's worktree, inside the (ignored) target directory.
fn prev_dir() -> PathBuf {
    root().join("target/bench-prev-src")
}

/// The previous version's binary: adds the worktree if it is missing and
/// builds it (a no-op when up to date) into target/bench-prev.
pub fn prev_pintrace() -> Result<PathBuf> {
    let dir = prev_dir();
    if !dir.join("Cargo.toml").exists() {
        eprintln!("bench: adding a git worktree of {PREV_COMMIT} at {}", dir.display());
        crate::run(
            Command::new("git").arg("-C").arg(root()).args(["worktree", "add", "--detach"]).arg(&dir).arg(PREV_COMMIT),
        )?;
    }
    let head = Command::new("git").arg("-C").arg(&dir).args(["rev-parse", "HEAD"]).output()?;
    let head = String::from_utf8_lossy(&head.stdout);
    if head.trim() != PREV_COMMIT {
        bail!(
            "{} is at {:?}, not {PREV_COMMIT}: remove it (git worktree remove) and run again",
            dir.display(),
            head.trim()
        );
    }
    let target = root().join("target/bench-prev");
    crate::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&dir)
            .args(["build", "--release", "--package", "pintrace"])
            .env("CARGO_TARGET_DIR", &target),
    )
    .context("building the previous version of pintrace")?;
    Ok(target.join("release/pintrace"))
}

/// (voluntary, involuntary) context switches of a process's live threads.
fn ctx_switches(pid: u32) -> Result<(u64, u64)> {
    let (mut vol, mut invol) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let status = std::fs::read_to_string(task?.path().join("status")).unwrap_or_default();
        for l in status.lines() {
            let n = |v: &str| v.trim().parse::<u64>().unwrap_or(0);
            if let Some(v) = l.strip_prefix("voluntary_ctxt_switches:") {
                vol += n(v);
            } else if let Some(v) = l.strip_prefix("nonvoluntary_ctxt_switches:") {
                invol += n(v);
            }
        }
    }
    Ok((vol, invol))
}

/// Run time (ns) summed over the BPF programs a process holds open (their fdinfo).
fn bpf_prog_ns(pid: u32) -> Result<u64> {
    Ok(bpf_prog_stats(pid)?.0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Prev,
    New,
}

struct Bins<'a> {
    new: &'a Path,
    prev: &'a Path,
}

impl Bins<'_> {
    fn get(&self, v: Version) -> &Path {
        match v {
            Version::Prev => self.prev,
            Version::New => self.new,
        }
    }
}

/// What one `top --batch` run measured.
struct TopCpu {
    /// Percent of one core, from utime + stime.
    ticks_pct: f64,
    /// Percent of one core, from schedstat.
    exact_pct: f64,
    /// The last "N pinned now" of the new version's blocks.
    pinned: Option<u64>,
    warnings: Vec<String>,
}

/// "…; 1000 pinned now, 0.0 LockOSThread calls/s" → 1000.
fn pinned_now(line: &str) -> Option<u64> {
    line.split_once(" pinned now")?.0.rsplit(' ').next()?.parse().ok()
}

/// pintrace's own CPU while `top --batch --pid PID` shows the target.
fn top_cpu(pintrace: &Path, pid: u32) -> Result<TopCpu> {
    let mut c = Command::new(pintrace)
        .args(["top", "--batch", "--pid", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", pintrace.display()))?;
    let err = BufReader::new(c.stderr.take().context("stderr")?);
    let errors = thread::spawn(move || err.lines().map_while(Result::ok).collect::<Vec<_>>());
    let mut out = BufReader::new(c.stdout.take().context("stdout")?);
    let mut first = String::new();
    if out.read_line(&mut first)? == 0 {
        let _ = c.wait();
        bail!("pintrace top --batch printed nothing: {}", errors.join().unwrap_or_default().join("; "));
    }
    let blocks = thread::spawn(move || out.lines().map_while(Result::ok).filter_map(|l| pinned_now(&l)).last());
    thread::sleep(SETTLE);
    let (t0, c0, n0) = (Instant::now(), cpu_ticks(c.id())?, on_cpu_ns(c.id())?);
    thread::sleep(WINDOW);
    let (c1, n1, secs) = (cpu_ticks(c.id())?, on_cpu_ns(c.id())?, t0.elapsed().as_secs_f64());
    finish(&mut c, Duration::ZERO)?;
    let warnings = errors.join().unwrap_or_default().into_iter().filter(|l| l.contains("warning")).collect();
    Ok(TopCpu {
        ticks_pct: c1.saturating_sub(c0) as f64 / clock_ticks_per_sec() / secs * 100.0,
        exact_pct: n1.saturating_sub(n0) as f64 / 1e9 / secs * 100.0,
        pinned: blocks.join().ok().flatten(),
        warnings,
    })
}

struct Row {
    what: String,
    workload: String,
    prev: String,
    new: String,
    diff: String,
    goal: String,
    met: bool,
}

fn cpu_row(bins: &Bins) -> Result<(Row, Vec<String>)> {
    let pinned = build_go("pinned")?;
    let mut target = Workload::start(Command::new(&pinned).arg(PINNED_THREADS.to_string()))?;
    let threads = std::fs::read_dir(format!("/proc/{}/task", target.pid))?.count();
    let (mut prev, mut new) = (Vec::new(), Vec::new());
    for round in 0..CPU_ROUNDS {
        let order = if round % 2 == 0 { [Version::New, Version::Prev] } else { [Version::Prev, Version::New] };
        for v in order {
            let s = top_cpu(bins.get(v), target.pid)?;
            eprintln!(
                "bench: go cpu round {} {}: {:.3} % (ticks {:.2} %), pinned {:?}",
                round + 1,
                if v == Version::New { "new" } else { "prev" },
                s.exact_pct,
                s.ticks_pct,
                s.pinned
            );
            if v == Version::New { &mut new } else { &mut prev }.push(s);
        }
    }
    // Still alive: it would have exited with an error otherwise.
    target.child.try_wait()?.map_or(Ok(()), |s| Err(anyhow::anyhow!("pinned exited: {s}")))?;
    let med = |v: &[TopCpu], f: fn(&TopCpu) -> f64| median(v.iter().map(f).collect());
    let (p, n) = (med(&prev, |s| s.exact_pct), med(&new, |s| s.exact_pct));
    let (pt, nt) = (med(&prev, |s| s.ticks_pct), med(&new, |s| s.ticks_pct));
    let seen = new.iter().filter_map(|s| s.pinned).max();
    let mut warnings: Vec<String> = new.iter().flat_map(|s| s.warnings.iter().cloned()).collect();
    warnings.sort();
    warnings.dedup();
    let all = |v: &[TopCpu]| v.iter().map(|s| format!("{:.3}", s.exact_pct)).collect::<Vec<_>>().join(", ");
    let row = Row {
        what: format!("pintrace's own CPU, `top --batch --pid` at 1 s intervals ({CPU_ROUNDS} runs each)"),
        workload: format!(
            "`pinned {PINNED_THREADS}`: {threads} threads, {PINNED_THREADS} locked and parked; new version saw {} pinned",
            seen.map_or("**none**".to_string(), |n| n.to_string())
        ),
        prev: format!("{p:.3} % ({}; ticks {pt:.2} %)", all(&prev)),
        new: format!("{n:.3} % ({}; ticks {nt:.2} %)", all(&new)),
        diff: format!("{:+.3} % of a core", n - p),
        goal: "< 0.5 % of a core".into(),
        met: n - p < 0.5 && seen.is_some_and(|s| s >= u64::from(PINNED_THREADS)),
    };
    Ok((row, warnings))
}

/// One run of `lockloop`: (loop seconds, events recorded, warnings).
fn lock_run(lockloop: &Path, tracer: Option<&Path>, file: &Path) -> Result<(f64, u64, Vec<String>)> {
    let mut w = Workload::start(Command::new(lockloop).arg(LOCK_CALLS.to_string()))?;
    let (mut t, warnings) = match tracer {
        Some(p) => {
            let (c, warn) = start_record(p, w.pid, file)?;
            (Some(c), warn)
        }
        None => (None, Vec::new()),
    };
    w.go()?;
    let ns: f64 = w.line("elapsed")?.parse().context("lockloop's elapsed")?;
    w.wait()?;
    let mut events = 0;
    if let (Some(c), Some(p)) = (t.as_mut(), tracer) {
        finish(c, Duration::from_secs(10))?;
        events = recorded(p, file)?.0;
    }
    Ok((ns / 1e9, events, warnings))
}

/// One run of the pipe ping-pong: (wall seconds, involuntary switches, all switches, lost events).
fn pipe_run(tracer: Option<&Path>, file: &Path) -> Result<(f64, u64, u64, u64)> {
    let script = format!("echo ready && read go && exec taskset -c 0 perf bench sched pipe -T -l {PIPE_OPS}");
    let mut w = Workload::start(Command::new("sh").args(["-c", &script]))?;
    let mut t = tracer.map(|p| start_record(p, w.pid, file)).transpose()?.map(|(c, _)| c);
    let start = Instant::now();
    w.go()?;
    let ru = w.wait()?;
    let wall = start.elapsed().as_secs_f64();
    let mut lost = 0;
    if let (Some(c), Some(p)) = (t.as_mut(), tracer) {
        finish(c, Duration::from_secs(10))?;
        lost = recorded(p, file)?.1;
    }
    let (invol, vol) = (ru.ru_nivcsw as u64, ru.ru_nvcsw as u64);
    Ok((wall, invol, invol + vol, lost))
}

/// While `pintrace` records an endless pipe ping-pong: the BPF run time (ns)
/// of all its programs, and the target's (switches, involuntary switches),
/// over one window.
fn bpf_run(pintrace: &Path, file: &Path) -> Result<(f64, f64, f64)> {
    let mut w = endless_pipe()?;
    let (mut t, _) = start_record(pintrace, w.pid, file)?;
    w.go()?;
    thread::sleep(Duration::from_secs(1));
    let (b0, s0) = (bpf_prog_ns(t.id())?, ctx_switches(w.pid)?);
    thread::sleep(BPF_WINDOW);
    let (b1, s1) = (bpf_prog_ns(t.id())?, ctx_switches(w.pid)?);
    drop(w);
    finish(&mut t, Duration::from_secs(10))?;
    let ns = b1.saturating_sub(b0) as f64;
    let (vol, invol) = (s1.0.saturating_sub(s0.0) as f64, s1.1.saturating_sub(s0.1) as f64);
    Ok((ns, vol + invol, invol))
}

fn ratio(x: f64, base: f64) -> String {
    format!("{:.3}", x / base)
}

/// Runs every measurement and returns the report section.
pub fn run(new: &Path, rounds: usize) -> Result<String> {
    setup::apt(&["linux-perf"])?;
    let prev = prev_pintrace()?;
    let bins = Bins { new, prev: &prev };
    let scratch = root().join("target/bench-go");
    std::fs::create_dir_all(&scratch)?;
    let file = scratch.join("trace.ptr");
    let mut rows = Vec::new();

    eprintln!("bench: go: pintrace top's CPU on {PINNED_THREADS} locked threads");
    let (row, warnings) = cpu_row(&bins).context("pintrace top on 1,000 locked threads")?;
    rows.push(row);

    eprintln!("bench: go: LockOSThread loop");
    let lockloop = build_go("lockloop")?;
    let tracers: [Option<Version>; 3] = [None, Some(Version::Prev), Some(Version::New)];
    let mut lock: [Vec<(f64, u64)>; 3] = Default::default();
    let mut lock_warnings = Vec::new();
    for round in 0..rounds {
        for k in 0..3 {
            let i = (k + round) % 3;
            let (secs, events, warn) = lock_run(&lockloop, tracers[i].map(|v| bins.get(v)), &file)
                .with_context(|| format!("lockloop, round {}", round + 1))?;
            eprintln!("bench: go lockloop round {} tracer {i}: {:.4} s, {events} events", round + 1, secs);
            lock[i].push((secs, events));
            if tracers[i] == Some(Version::New) {
                lock_warnings.extend(warn);
            }
        }
    }
    let secs = |i: usize| median(lock[i].iter().map(|s| s.0).collect());
    let events = |i: usize| median(lock[i].iter().map(|s| s.1 as f64).collect());
    let per_call_ns = (secs(2) - secs(1)) / LOCK_CALLS as f64 * 1e9;
    rows.push(Row {
        what: format!("LockOSThread uprobe: loop time ({rounds} rounds, rotating order)"),
        workload: format!(
            "`lockloop {LOCK_CALLS}`: Lock/UnlockOSThread pairs; untraced {:.2} ms ({:.1} ns a pair); \
             events recorded prev {:.0}, new {:.0}",
            secs(0) * 1e3,
            secs(0) / LOCK_CALLS as f64 * 1e9,
            events(1),
            events(2)
        ),
        prev: format!("{:.2} ms (×{})", secs(1) * 1e3, ratio(secs(1), secs(0))),
        new: format!("{:.2} ms (×{})", secs(2) * 1e3, ratio(secs(2), secs(0))),
        diff: format!("{per_call_ns:+.0} ns per LockOSThread call"),
        goal: "< 3 µs per call".into(),
        met: per_call_ns < 3000.0 && events(2) - events(1) >= LOCK_CALLS as f64,
    });

    eprintln!("bench: go: pipe ping-pong on one CPU");
    let mut pipe: [Vec<(f64, u64, u64, u64)>; 3] = Default::default();
    for round in 0..rounds {
        for k in 0..3 {
            let i = (k + round) % 3;
            let s = pipe_run(tracers[i].map(|v| bins.get(v)), &file)
                .with_context(|| format!("pipe ping-pong, round {}", round + 1))?;
            eprintln!("bench: go pipe round {} tracer {i}: {:.3} s", round + 1, s.0);
            pipe[i].push(s);
        }
    }
    let wall = |i: usize| median(pipe[i].iter().map(|s| s.0).collect());
    let lost = |i: usize| pipe[i].iter().map(|s| s.3).max().unwrap_or(0);
    let invol = median(pipe[0].iter().map(|s| s.1 as f64).collect());
    let all = median(pipe[0].iter().map(|s| s.2 as f64).collect());
    let (rp, rn) = (wall(1) / wall(0), wall(2) / wall(0));
    rows.push(Row {
        what: format!("throttle-flag read: wall time ({rounds} rounds, rotating order)"),
        workload: format!(
            "`taskset -c 0 perf bench sched pipe -T -l {PIPE_OPS}`: untraced {:.3} s, {:.0} k switches, {:.0} % \
             involuntary; lost prev {}, new {}",
            wall(0),
            all / 1e3,
            invol / all * 100.0,
            lost(1),
            lost(2)
        ),
        prev: format!("{:.3} s (×{rp:.3})", wall(1)),
        new: format!("{:.3} s (×{rn:.3})", wall(2)),
        diff: format!("new/prev ×{:.3}", wall(2) / wall(1)),
        goal: "new/prev < 1.01".into(),
        met: wall(2) / wall(1) < 1.01,
    });

    eprintln!("bench: go: BPF run time per switch (kernel.bpf_stats_enabled on for a while)");
    let mut bpf: [Vec<(f64, f64, f64)>; 2] = Default::default();
    {
        let _stats = BpfStats::on()?;
        for round in 0..BPF_ROUNDS {
            let order = if round % 2 == 0 { [Version::New, Version::Prev] } else { [Version::Prev, Version::New] };
            for v in order {
                let s = bpf_run(bins.get(v), &file).context("BPF run time")?;
                eprintln!("bench: go bpf round {}: {:.1} ns per target switch", round + 1, s.0 / s.1);
                bpf[usize::from(v == Version::New)].push(s);
            }
        }
    }
    let per_switch = |i: usize| median(bpf[i].iter().map(|s| s.0 / s.1).collect());
    let frac = median(bpf[1].iter().map(|s| s.2 / s.1).collect());
    // Runs differ only in the switch-outs that read the flag: the extra ns over those.
    let added = (per_switch(1) - per_switch(0)) / frac;
    rows.push(Row {
        what: format!("throttle-flag read: BPF run time ({BPF_ROUNDS} runs each, {} s windows)", BPF_WINDOW.as_secs()),
        workload: format!(
            "endless pipe ping-pong as above; all of pintrace's programs (every switch on the host) per target \
             switch; {:.0} % of the target's switches involuntary",
            frac * 100.0
        ),
        prev: format!("{:.1} ns per target switch", per_switch(0)),
        new: format!("{:.1} ns per target switch", per_switch(1)),
        diff: format!("{added:+.1} ns per involuntary switch-out"),
        goal: "< 30 ns per read".into(),
        met: added < 30.0,
    });

    let mut o = String::new();
    let _ = writeln!(o, "## Go runtime reading, LockOSThread uprobe, throttle flag: new vs {}\n", &PREV_COMMIT[..7]);
    let _ =
        writeln!(o, "| measurement | workload | previous ({}) | new | difference | goal | met |", &PREV_COMMIT[..7]);
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for r in &rows {
        let met = if r.met { "yes" } else { "**no**" };
        let _ =
            writeln!(o, "| {} | {} | {} | {} | {} | {} | {met} |", r.what, r.workload, r.prev, r.new, r.diff, r.goal);
    }
    let _ = writeln!(
        o,
        "\nCPU is the exact on-CPU time of pintrace's threads (schedstat) over {} s, {} s after its first block, \
         median of the runs listed (utime + stime ticks beside it; one tick = {:.2} %); its difference also holds \
         modelling and formatting the 1,000 threads' new fields. Wall times and loop times are medians; ×r is \
         against untraced. BPF run time is from each pintrace's program fdinfo with kernel.bpf_stats_enabled on \
         (which adds two clock reads per program run).",
        WINDOW.as_secs(),
        SETTLE.as_secs(),
        100.0 / clock_ticks_per_sec() / WINDOW.as_secs_f64()
    );
    let mut warnings = warnings;
    warnings.extend(lock_warnings);
    warnings.sort();
    warnings.dedup();
    for w in &warnings {
        let _ = writeln!(o, "\nThe new version warned: {w}");
    }
    let _ = writeln!(o);
    Ok(o)
}
