//! `cargo xtask bench`, the live screen: what `pintrace top` itself costs
//! while it shows a process, measured on the real TUI in a 160×45 tmux pane
//! whose process is pintrace (`exec`).
//!
//! - CPU: utime + stime of pintrace from /proc/PID/stat over a 10 s window,
//!   2 s after the first full screen, for a target at ~1 M and ~100 k
//!   events/s and one that wakes 10 times a second. The target's event rate
//!   comes from `pintrace top --batch --json` run just after the window on
//!   the same, still running target: a second tracer during the window
//!   would compete with the screen for the two CPUs.
//! - Memory: VmHWM of pintrace over a session in which the target creates
//!   and exits 10,000 threads (1,000 a second for 10 s).
//! - Start-up: from starting the command to the first screen that has the
//!   thread table's header and the target's PID, polled every 10 ms.
//!
//! The sessions live on a private tmux server (`-L ptbench`, no config
//! file) and are named `ptbench-*`; each is killed when done.
use std::{
    fmt::Write as _,
    io::BufRead,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::bench_util::{clock_ticks_per_sec, cpu_ticks, median, on_cpu_ns, read_until, status_mib, Target};

const SOCKET: &str = "ptbench";
const SETTLE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(10);
const FIRST_SCREEN_TIMEOUT: Duration = Duration::from_secs(10);
const STARTUP_RUNS: usize = 5;

fn tmux() -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", SOCKET, "-f", "/dev/null"]);
    c
}

fn tmux_out(args: &[&str]) -> Result<String> {
    let out =
        tmux().args(args).stderr(Stdio::null()).output().context("running tmux (cargo xtask setup installs it)")?;
    if !out.status.success() {
        bail!("tmux {} failed", args.join(" "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `pintrace top --pid PID` on the real TUI, in its own tmux session.
struct Screen {
    session: String,
    /// The pane's process: pintrace itself.
    pid: u32,
    started: Instant,
}

impl Screen {
    fn open(name: &str, pintrace: &Path, target: u32) -> Result<Screen> {
        // Built first, so that a failure below kills the session.
        let mut screen = Screen { session: format!("ptbench-{name}"), pid: 0, started: Instant::now() };
        let session = screen.session.as_str();
        let _ = tmux_out(&["kill-session", "-t", session]);
        let cmd = format!("exec '{}' top --pid {target}", pintrace.display());
        let new = ["new-session", "-d", "-s", session, "-x", "160", "-y", "45", &cmd];
        // The pane stays after pintrace exits, so that an early exit's message can be shown.
        let keep = [";", "set-option", "-w", "-t", session, "remain-on-exit", "on"];
        screen.started = Instant::now();
        tmux_out(&[&new[..], &keep[..]].concat())?;
        let pid = tmux_out(&["list-panes", "-t", session, "-F", "#{pane_pid}"])?;
        screen.pid = pid.trim().parse().with_context(|| format!("tmux list-panes: no pane PID in {pid:?}"))?;
        Ok(screen)
    }

    fn capture(&self) -> Result<String> {
        tmux_out(&["capture-pane", "-p", "-t", &self.session])
    }

    fn dead(&self) -> bool {
        tmux_out(&["display-message", "-p", "-t", &self.session, "#{pane_dead}"]).map_or(true, |s| s.trim() == "1")
    }

    /// Waits for the thread table's header and the target's PID; returns the time since `open`.
    fn wait_full(&self, target: u32) -> Result<Duration> {
        let pid = target.to_string();
        loop {
            let text = self.capture()?;
            let header = text.lines().any(|l| l.contains("TID") && l.contains("NAME"));
            if header && text.split(|c: char| !c.is_ascii_digit()).any(|w| w == pid) {
                return Ok(self.started.elapsed());
            }
            if self.dead() {
                bail!("pintrace top exited before its first screen:\n{}", text.trim_end());
            }
            if self.started.elapsed() > FIRST_SCREEN_TIMEOUT {
                bail!("no full screen after {FIRST_SCREEN_TIMEOUT:?}; the pane shows:\n{}", text.trim_end());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Presses q and waits for pintrace to exit; false if it had to be killed.
    fn quit(&self) -> Result<bool> {
        if self.dead() {
            bail!("pintrace top exited by itself:\n{}", self.capture()?.trim_end());
        }
        tmux_out(&["send-keys", "-t", &self.session, "q"])?;
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(3) {
            if self.dead() {
                return Ok(true);
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = tmux_out(&["kill-session", "-t", &self.session]);
    }
}

/// Resident KiB of the process's mappings of BPF maps (the ring buffer's data pages are mapped twice).
fn bpf_map_rss_kib(pid: u32) -> Result<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let (mut in_map, mut sum) = (false, 0);
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if in_map {
                sum += rss.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
            }
        } else if line.split_whitespace().next().is_some_and(|f| f.contains('-') && !f.ends_with(':')) {
            in_map = line.split_whitespace().nth(5).is_some_and(|n| n.starts_with("anon_inode:bpf-map"));
        }
    }
    Ok(sum)
}

/// The `lost N` count on the screen's status line.
fn lost_on_screen(text: &str) -> Option<u64> {
    let after = text.split("lost ").nth(1)?;
    after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The target's events per second (median of 3 one-second intervals), lost
/// events, and `top --batch`'s own CPU percentage, from `top --batch --json`.
fn event_rate(pintrace: &Path, pid: u32) -> Result<(f64, u64, f64)> {
    let out = Command::new(pintrace)
        .args(["top", "--batch", "--json", "--count", "3", "--pid", &pid.to_string()])
        .stderr(Stdio::null())
        .output()
        .context("pintrace top --batch")?;
    let lines: Vec<serde_json::Value> =
        out.stdout.lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect();
    if lines.is_empty() {
        bail!("pintrace top --batch --json printed nothing ({})", out.status);
    }
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let rate = median(lines.iter().map(|l| f(&l["process"]["events_per_sec"])).collect());
    let lost = lines.iter().map(|l| l["process"]["lost_events"].as_u64().unwrap_or(0)).sum();
    let cpu = median(lines.iter().map(|l| f(&l["pintrace_cpu_pct"])).collect());
    Ok((rate, lost, cpu))
}

fn si(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e4 => format!("{:.0} k", x / 1e3),
        x if x >= 1e3 => format!("{:.1} k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

struct Row {
    what: String,
    load: String,
    result: String,
    goal: String,
    met: bool,
}

/// pintrace's CPU (percent of one core) while the screen shows `paced ROUND_TRIPS BATCHES_PER_SEC`.
fn cpu_row(pintrace: &Path, paced: &Path, what: &str, args: [u64; 2], goal_pct: f64) -> Result<Row> {
    let mut target = Target::start(paced, &args)?;
    target.go()?;
    let screen = Screen::open(&format!("cpu-{}x{}", args[0], args[1]), pintrace, target.pid)?;
    screen.wait_full(target.pid)?;
    thread::sleep(SETTLE);
    let (t0, c0, n0) = (Instant::now(), cpu_ticks(screen.pid)?, on_cpu_ns(screen.pid)?);
    thread::sleep(WINDOW);
    let (c1, n1, secs) = (cpu_ticks(screen.pid)?, on_cpu_ns(screen.pid)?, t0.elapsed().as_secs_f64());
    let pct = (c1 - c0) as f64 / clock_ticks_per_sec() / secs * 100.0;
    let exact = n1.saturating_sub(n0) as f64 / 1e9 / secs * 100.0;
    let by_q = screen.quit()?;
    drop(screen);
    let (rate, lost, batch_cpu) = event_rate(pintrace, target.pid)?;
    let mut load = format!(
        "`paced {} {}`: {} events/s, {lost} lost; `top --batch` itself: {batch_cpu:.1} %",
        args[0],
        args[1],
        si(rate)
    );
    if !by_q {
        load.push_str("; **q did not quit: killed**");
    }
    Ok(Row {
        what: format!("CPU, {what}"),
        load,
        result: format!("{pct:.2} % of a core ({} ticks in {secs:.1} s; schedstat: {exact:.2} %)", c1 - c0),
        goal: format!("< {goal_pct} %"),
        met: pct < goal_pct && by_q,
    })
}

/// pintrace's peak memory over a session of `churn RATE SECONDS`.
fn memory_row(pintrace: &Path, churn: &Path) -> Result<Row> {
    const GOAL_MIB: f64 = 64.0;
    let (rate, secs) = (1000, 10);
    let mut target = Target::start(churn, &[rate, secs])?;
    let screen = Screen::open("churn", pintrace, target.pid)?;
    screen.wait_full(target.pid)?;
    let (before, anon_before) = (status_mib(screen.pid, "VmHWM")?, status_mib(screen.pid, "RssAnon")?);
    // Measured now: pintrace unmaps the ring buffer once its target has exited.
    let maps = bpf_map_rss_kib(screen.pid)? as f64 / 1024.0;
    target.go()?;
    read_until(&mut target.out, "created", "churn")?;
    // The target has exited; the screen stays with the final numbers.
    thread::sleep(SETTLE);
    let hwm = status_mib(screen.pid, "VmHWM").context("pintrace top exited with its target")?;
    let anon = status_mib(screen.pid, "RssAnon")?;
    let lost = lost_on_screen(&screen.capture()?).map_or("?".into(), |n| n.to_string());
    let by_q = screen.quit()?;
    let mut load = format!("`churn {rate} {secs}`: {} threads created and exited; {lost} lost", rate * secs);
    if !by_q {
        load.push_str("; **q did not quit: killed**");
    }
    Ok(Row {
        what: "peak memory (VmHWM) over 10,000 short-lived threads".into(),
        load,
        result: format!(
            "{hwm:.1} MiB ({before:.1} at the first screen, {maps:.1} of it mapped BPF maps; anonymous memory \
             {anon_before:.1} → {anon:.1})"
        ),
        goal: format!("< {GOAL_MIB} MiB"),
        met: hwm < GOAL_MIB && by_q,
    })
}

/// Median time from starting `pintrace top` to its first full screen.
fn startup_row(pintrace: &Path, paced: &Path) -> Result<Row> {
    let mut target = Target::start(paced, &[1, 10])?;
    target.go()?;
    let (mut times, mut killed) = (Vec::new(), 0);
    for run in 0..STARTUP_RUNS {
        let screen = Screen::open(&format!("start-{run}"), pintrace, target.pid)?;
        times.push(screen.wait_full(target.pid)?.as_secs_f64());
        killed += usize::from(!screen.quit()?);
    }
    let med = median(times.clone());
    let all: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
    let mut load = "`paced 1 10` (wakes 10 times a second)".to_string();
    if killed > 0 {
        load.push_str(&format!("; **q did not quit {killed} times: killed**"));
    }
    Ok(Row {
        what: format!("start to first full screen (median of {STARTUP_RUNS})"),
        load,
        result: format!("{med:.3} s (runs: {} s)", all.join(", ")),
        goal: "< 1 s".into(),
        met: med < 1.0,
    })
}

/// Runs every measurement of the live screen and returns its report section.
pub fn run(pintrace: &Path, bins: &Path) -> Result<String> {
    let (paced, churn) = (bins.join("paced"), bins.join("churn"));
    let mut rows = Vec::new();
    // paced: the pipe ping-pong pair on CPU 0, ROUND_TRIPS round trips in a
    // batch, BATCHES_PER_SEC batches a second; a round trip is two events
    // (two switches; wake-ups are not recorded where sched_switch reads the
    // waits). 500,000 round trips a second is about all CPU 0 does.
    let loads = [
        ("target at ~1 M events/s", [500, 1000], 10.0),
        ("target at ~100 k events/s", [50, 1000], 3.0),
        ("nearly idle target (wakes 10×/s)", [1, 10], 0.5),
    ];
    for (what, args, goal) in loads {
        eprintln!("bench: pintrace top, {what}");
        rows.push(cpu_row(pintrace, &paced, what, args, goal).with_context(|| format!("pintrace top, {what}"))?);
    }
    eprintln!("bench: pintrace top, 10,000 threads created and exited");
    rows.push(memory_row(pintrace, &churn).context("pintrace top over thread churn")?);
    eprintln!("bench: pintrace top, time to the first screen");
    rows.push(startup_row(pintrace, &paced).context("pintrace top's start-up")?);

    let mut o = String::new();
    let _ = writeln!(o, "## pintrace top: the live screen's own cost (real TUI in a 160×45 tmux pane)\n");
    let _ = writeln!(o, "| measurement | target and its load | measured | goal | met |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for r in &rows {
        let met = if r.met { "yes" } else { "**no**" };
        let _ = writeln!(o, "| {} | {} | {} | {} | {met} |", r.what, r.load, r.result, r.goal);
    }
    let _ = writeln!(
        o,
        "\nCPU is pintrace's utime + stime over {} s, {} s after its first full screen (one tick = {:.2} % over \
         the window; schedstat sums the exact on-CPU time of its threads); the event rate is from `top --batch \
         --json` run on the same target just afterwards. VmHWM counts the mapped ring buffer's pages (twice: its \
         data pages are mapped twice); other processes (e.g. a compiler) may share the 2 CPUs.\n",
        WINDOW.as_secs(),
        SETTLE.as_secs(),
        100.0 / clock_ticks_per_sec() / WINDOW.as_secs_f64()
    );
    Ok(o)
}
