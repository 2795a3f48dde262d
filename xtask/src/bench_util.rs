//! What the benchmark scenarios share: workloads and recordings started
//! and ended, the kernel's and /proc's counters read, medians. The
//! scenarios (`bench_top`, `bench_go`, `bench_path`, `bench_long`,
//! `bench_diagnosis`) import this and nothing of each other; `bench` runs
//! them.
use std::{
    io::{BufRead, BufReader, Write as _},
    path::Path,
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// Where the kernel's BPF run-time statistics are turned on and off.
pub(crate) const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Counts what pintrace records, per thread, in kernel maps: bpftrace's
/// cheapest way to see the same events for one process.
pub(crate) fn bpftrace_script(pid: u32) -> String {
    format!(
        r#"BEGIN {{ @tids[{pid}] = 1; printf("attached\n"); }}
tracepoint:sched:sched_switch /@tids[args->prev_pid] || @tids[args->next_pid]/ {{ @switch[args->prev_pid, args->prev_state] = count(); }}
tracepoint:sched:sched_migrate_task /@tids[args->pid]/ {{ @migrate[args->pid] = count(); }}
tracepoint:sched:sched_wakeup,tracepoint:sched:sched_wakeup_new /@tids[args->pid]/ {{ @wakeup[args->pid] = count(); }}
tracepoint:signal:signal_generate /@tids[args->pid] || @tids[tid]/ {{ @signal[tid, args->pid, args->sig] = count(); }}
tracepoint:task:task_newtask /@tids[tid]/ {{ @tids[args->pid] = 1; @new[tid] = count(); }}
tracepoint:sched:sched_process_exit /@tids[args->pid]/ {{ @exit[args->pid] = count(); }}
tracepoint:task:task_rename /@tids[args->pid]/ {{ @rename[args->pid] = count(); }}
"#
    )
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Waits for a child and returns (user + system CPU seconds, peak RSS KiB).
pub(crate) fn wait_rusage(child: &mut Child) -> Result<(f64, u64)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid for wait4 to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; both pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    if pid < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("exited with status {status:#x}");
    }
    Ok((secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss as u64))
}

pub(crate) fn read_until(reader: &mut impl BufRead, prefix: &str, what: &str) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("{what} ended before saying {prefix:?}");
        }
        if line.starts_with(prefix) {
            return Ok(());
        }
    }
}

pub(crate) fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill on our own unreaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// A workload from tests/src/bin: says `ready PID`, works once told to go, killed on drop.
pub(crate) struct Target {
    pub(crate) child: Child,
    pub(crate) out: BufReader<ChildStdout>,
    pub(crate) pid: u32,
}

impl Target {
    pub(crate) fn start(bin: &Path, args: &[u64]) -> Result<Target> {
        let mut child = Command::new(bin)
            .args(args.iter().map(u64::to_string))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let out = BufReader::new(child.stdout.take().context("stdout")?);
        let pid = child.id();
        // Built before the handshake, so that a failure kills the workload.
        let mut target = Target { child, out, pid };
        read_until(&mut target.out, "ready", &bin.display().to_string())?;
        Ok(target)
    }

    pub(crate) fn go(&mut self) -> Result<()> {
        writeln!(self.child.stdin.as_mut().context("stdin")?, "go").context("telling the workload to go")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime + stime of a process (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("pintrace {pid} is gone"))?;
    // Fields after the command name, which ends at the last ')': state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').context("/proc/PID/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

/// On-CPU nanoseconds of a process's live threads (/proc/PID/task/*/schedstat): exact, unlike ticks.
pub(crate) fn on_cpu_ns(pid: u32) -> Result<u64> {
    let mut sum = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat")).unwrap_or_default();
        sum += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(sum)
}

/// A KiB field of /proc/PID/status, as MiB: VmHWM (peak RSS), RssAnon.
pub(crate) fn status_mib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).context(field.to_string())?;
    Ok(line.trim().trim_end_matches("kB").trim().parse::<f64>()? / 1024.0)
}

/// A workload that prints `ready ...` and works once it reads a line; killed on drop.
pub(crate) struct Workload {
    pub(crate) child: Child,
    pub(crate) out: BufReader<ChildStdout>,
    pub(crate) pid: u32,
}

impl Workload {
    pub(crate) fn start(cmd: &mut Command) -> Result<Workload> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let out = BufReader::new(child.stdout.take().context("stdout")?);
        let pid = child.id();
        let mut w = Workload { child, out, pid };
        w.line("ready").with_context(|| format!("{cmd:?}"))?;
        Ok(w)
    }

    pub(crate) fn go(&mut self) -> Result<()> {
        writeln!(self.child.stdin.as_mut().context("stdin")?, "go").context("telling the workload to go")
    }

    /// The rest of the first line that starts with `prefix`.
    pub(crate) fn line(&mut self, prefix: &str) -> Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.out.read_line(&mut line)? == 0 {
                bail!("the workload ended before saying {prefix:?}");
            }
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_string());
            }
        }
    }

    /// Waits for the exit; returns its rusage (the whole process: all its threads).
    pub(crate) fn wait(&mut self) -> Result<libc::rusage> {
        // What it still prints (e.g. a long list of TIDs) must not fill the pipe and block it.
        std::io::copy(&mut self.out, &mut std::io::sink())?;
        let mut status = 0;
        // SAFETY: a zeroed rusage is valid for wait4 to fill.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child; both pointers are valid.
        if unsafe { libc::wait4(self.pid as libc::pid_t, &mut status, 0, &mut ru) } < 0 {
            bail!("wait4: {}", std::io::Error::last_os_error());
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            bail!("the workload exited with status {status:#x}");
        }
        Ok(ru)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pintrace record --pid PID -o FILE`, once it says that every probe is
/// attached; returns it and its warnings.
pub(crate) fn start_record(pintrace: &Path, pid: u32, file: &Path) -> Result<(Child, Vec<String>)> {
    start_record_with(pintrace, pid, file, &[])
}

/// As [`start_record`], with more arguments for `record`.
pub(crate) fn start_record_with(
    pintrace: &Path,
    pid: u32,
    file: &Path,
    extra: &[&str],
) -> Result<(Child, Vec<String>)> {
    let _ = std::fs::remove_file(file);
    let mut c = Command::new(pintrace)
        .args(["record", "--pid", &pid.to_string(), "-o"])
        .arg(file)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", pintrace.display()))?;
    let mut err = BufReader::new(c.stderr.take().context("stderr")?);
    let (mut warnings, mut line) = (Vec::new(), String::new());
    loop {
        line.clear();
        if err.read_line(&mut line)? == 0 {
            let _ = c.wait();
            bail!("pintrace record ended before recording: {}", warnings.join("; "));
        }
        if line.starts_with("pintrace: recording") {
            break;
        }
        warnings.push(line.trim().trim_start_matches("pintrace: ").to_string());
    }
    thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    Ok((c, warnings))
}

/// Waits up to `timeout` for a tracer to exit, then interrupts it, then kills it.
pub(crate) fn finish(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let start = Instant::now();
    let mut interrupted = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let waited = start.elapsed();
        if waited > timeout + Duration::from_secs(3) {
            let _ = child.kill();
            bail!("pintrace did not exit: killed");
        }
        if waited > timeout && !interrupted {
            // SAFETY: kill on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
            interrupted = true;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Events in a record file, from `pintrace report --json`: (events, lost).
pub(crate) fn recorded(pintrace: &Path, file: &Path) -> Result<(u64, u64)> {
    let out = Command::new(pintrace).args(["report", "--json"]).arg(file).output()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).context("pintrace report --json")?;
    Ok((report["events"].as_u64().unwrap_or(0), report["lost_events"].as_u64().unwrap_or(0)))
}

/// (run time ns, runs) summed over the BPF programs a process holds open (their fdinfo).
pub(crate) fn bpf_prog_stats(pid: u32) -> Result<(u64, u64)> {
    let (mut ns, mut runs) = (0, 0);
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let fd = fd?;
        if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog") {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()))?;
            let field = |key: &str| {
                info.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
            };
            ns += field("run_time_ns:");
            runs += field("run_cnt:");
        }
    }
    Ok((ns, runs))
}

/// `kernel.bpf_stats_enabled` on while this lives; the previous value is restored on drop.
pub(crate) struct BpfStats(String);

impl BpfStats {
    pub(crate) fn on() -> Result<BpfStats> {
        let was = std::fs::read_to_string(BPF_STATS).context(BPF_STATS)?;
        std::fs::write(BPF_STATS, "1").context(BPF_STATS)?;
        Ok(BpfStats(was.trim().to_string()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS, &self.0);
    }
}

/// `perf bench sched pipe -T` on CPU 0 that runs until killed, once told to go.
pub(crate) fn endless_pipe() -> Result<Workload> {
    let script = "echo ready && read go && exec taskset -c 0 perf bench sched pipe -T -l 1000000000";
    Workload::start(Command::new("sh").args(["-c", script]))
}
