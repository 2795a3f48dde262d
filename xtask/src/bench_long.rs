//! The long run: `pintrace record` for minutes on a target at ~1 M events/s,
//! its memory sampled as it goes, then `report` of the multi-GB file, its
//! speed and peak memory beside those of a 5-second file from the same run.
use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{
    bench_util::{on_cpu_ns, read_until, status_mib, wait_rusage, Target},
    root,
};

/// How often the recording's memory is sampled.
const SAMPLE: Duration = Duration::from_secs(10);

struct Recorded {
    events: u64,
    lost: u64,
    bytes: u64,
    secs: f64,
    cpu_pct: f64,
    /// (seconds since the start, VmRSS MiB)
    rss: Vec<(f64, f64)>,
    peak_mib: f64,
}

/// Records `pid` for `secs` seconds into `file`, sampling pintrace's memory.
fn record(pintrace: &Path, pid: u32, secs: u64, file: &Path) -> Result<Recorded> {
    let mut child = Command::new(pintrace)
        .args(["record", "--pid", &pid.to_string(), "-d", &format!("{secs}s"), "-o"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting pintrace record")?;
    let mut err = BufReader::new(child.stderr.take().context("stderr")?);
    read_until(&mut err, "pintrace: recording", "pintrace record")?;
    let me = child.id();
    let start = Instant::now();
    let mut rss = Vec::new();
    let end = Duration::from_secs(secs);
    while start.elapsed() + SAMPLE < end {
        thread::sleep(SAMPLE.min(end.saturating_sub(start.elapsed())));
        rss.push((start.elapsed().as_secs_f64(), status_mib(me, "VmRSS")?));
    }
    // Its CPU time is read just before it ends.
    thread::sleep(end.saturating_sub(start.elapsed() + Duration::from_millis(300)));
    let cpu_ns = on_cpu_ns(me).unwrap_or(0);
    let elapsed = start.elapsed().as_secs_f64();
    let (_, peak_kib) = wait_rusage(&mut child).context("pintrace record")?;
    // "pintrace: duration reached; recorded N events (L lost) in S s to F: B bytes, X bytes/event"
    let mut last = String::new();
    for line in err.lines() {
        let line = line?;
        if line.contains(" events (") {
            last = line;
        }
    }
    let num = |s: &str| s.replace(',', "").parse::<f64>().ok();
    let after = |key: &str| last.split(key).nth(1).and_then(|r| r.split_whitespace().next()).and_then(num);
    let before = |key: &str| last.split(key).next().and_then(|l| l.split_whitespace().last()).and_then(num);
    let (Some(events), Some(lost), Some(secs), Some(bytes)) =
        (after("recorded "), after("events ("), after(") in "), before(" bytes,"))
    else {
        bail!("pintrace record did not end with its summary line: {last:?}");
    };
    Ok(Recorded {
        events: events as u64,
        lost: lost as u64,
        bytes: bytes as u64,
        secs,
        cpu_pct: cpu_ns as f64 / 1e9 / elapsed * 100.0,
        rss,
        peak_mib: peak_kib as f64 / 1024.0,
    })
}

struct Reported {
    wall: f64,
    events: u64,
    peak_mib: f64,
    complete: bool,
}

fn report(pintrace: &Path, file: &Path) -> Result<Reported> {
    let start = Instant::now();
    let mut child = Command::new(pintrace)
        .args(["report", "--json"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting pintrace report")?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("stdout")?, &mut out)?;
    let (_, peak_kib) = wait_rusage(&mut child).context("pintrace report")?;
    let wall = start.elapsed().as_secs_f64();
    let json: serde_json::Value = serde_json::from_str(&out).context("report --json")?;
    Ok(Reported {
        wall,
        events: json["events"].as_u64().unwrap_or(0),
        peak_mib: peak_kib as f64 / 1024.0,
        complete: json["complete"] == true,
    })
}

pub fn run(pintrace: &Path, bins: &Path, secs: u64) -> Result<String> {
    let scratch = root().join("target/bench");
    std::fs::create_dir_all(&scratch)?;
    // paced 500 1000: the pipe ping-pong pair on CPU 0, ~1 M events/s (bench_top's load).
    let mut target = Target::start(&bins.join("paced"), &[500, 1000])?;
    target.go()?;
    let (short_file, long_file) = (scratch.join("long-5s.ptr"), scratch.join("long.ptr"));
    eprintln!("bench: long run, a 5 s recording for comparison");
    let short = record(pintrace, target.pid, 5, &short_file)?;
    let short_report = report(pintrace, &short_file)?;
    eprintln!("bench: long run, recording {secs} s at ~1 M events/s");
    let long = record(pintrace, target.pid, secs, &long_file)?;
    drop(target);
    eprintln!("bench: long run, reporting {:.1} GB", long.bytes as f64 / 1e9);
    let long_report = report(pintrace, &long_file)?;
    let _ = std::fs::remove_file(&short_file);
    let _ = std::fs::remove_file(&long_file);

    let mib = |v: f64| format!("{v:.1} MiB");
    let rate = |events: u64, wall: f64| format!("{:.1} M events/s", events as f64 / wall / 1e6);
    let rss_first = long.rss.first().map_or(f64::NAN, |r| r.1);
    let rss_last = long.rss.last().map_or(f64::NAN, |r| r.1);
    let rss_max = long.rss.iter().map(|r| r.1).fold(f64::NAN, f64::max);
    let mut o = String::new();
    let _ = writeln!(o, "## A long recording at ~1 M events/s (`paced 500 1000`), and its report\n");
    let _ = writeln!(o, "| measurement | {secs} s recording | 5 s recording | goal |");
    let _ = writeln!(o, "|---|---|---|---|");
    let _ = writeln!(
        o,
        "| events recorded (lost) | {} ({}) | {} ({}) | 0 lost |",
        long.events, long.lost, short.events, short.lost
    );
    let _ = writeln!(
        o,
        "| event rate | {:.2} M/s | {:.2} M/s | ~1 M/s |",
        long.events as f64 / long.secs / 1e6,
        short.events as f64 / short.secs / 1e6
    );
    let _ = writeln!(
        o,
        "| file (bytes per event) | {:.2} GB ({:.1}) | {:.1} MB ({:.1}) | |",
        long.bytes as f64 / 1e9,
        long.bytes as f64 / long.events.max(1) as f64,
        short.bytes as f64 / 1e6,
        short.bytes as f64 / short.events.max(1) as f64
    );
    let _ = writeln!(o, "| pintrace record's CPU | {:.1} % of a core | {:.1} % | |", long.cpu_pct, short.cpu_pct);
    let _ = writeln!(
        o,
        "| record's RSS at {:.0} s / at {:.0} s / max sampled / peak (VmHWM) | {} / {} / {} / {} | peak {} | flat |",
        long.rss.first().map_or(0.0, |r| r.0),
        long.rss.last().map_or(0.0, |r| r.0),
        mib(rss_first),
        mib(rss_last),
        mib(rss_max),
        mib(long.peak_mib),
        mib(short.peak_mib)
    );
    let _ = writeln!(
        o,
        "| `report --json`: time, speed | {:.1} s, {} | {:.2} s, {} | the same speed |",
        long_report.wall,
        rate(long_report.events, long_report.wall),
        short_report.wall,
        rate(short_report.events, short_report.wall)
    );
    let _ = writeln!(
        o,
        "| `report --json`: peak RSS | {} | {} | < 100 MiB |",
        mib(long_report.peak_mib),
        mib(short_report.peak_mib)
    );
    let _ = writeln!(
        o,
        "| `report`: whole file read (complete), events it counts | {}, {} | {}, {} | complete |",
        long_report.complete, long_report.events, short_report.complete, short_report.events
    );
    let series: Vec<String> = long.rss.iter().map(|(t, m)| format!("{t:.0} s {m:.1}")).collect();
    let _ = writeln!(o, "\nrecord's VmRSS (MiB) every {} s: {}\n", SAMPLE.as_secs(), series.join(", "));
    Ok(o)
}
