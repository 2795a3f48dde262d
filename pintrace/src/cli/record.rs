//! `pintrace record`: every event of the target, streamed to a file.
use std::{
    fs::File,
    io::BufWriter,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
};

use super::RecordArgs;
use crate::{
    event::{Event, EventKind},
    fmt,
    probe::{LostCounter, Options, ProbeStatus, Probes},
    record::{ProbeRecord, RecordHeader, Target, Trailer, Writer},
    source::Source,
    target,
};

/// How often the reader looks at the ring buffer when the kernel has not woken it.
const POLL: Duration = Duration::from_millis(20);
/// How often buffered events are written out even if a chunk is not full.
const FLUSH: Duration = Duration::from_secs(1);
/// How often /proc is asked whether the target still exists.
const ALIVE_CHECK: Duration = Duration::from_millis(200);

pub fn run(args: RecordArgs) -> Result<ExitCode> {
    let target = target::resolve(args.pid)?;
    let opts = Options { ring_bytes: args.buffer_size, syscalls: args.syscalls };
    let mut probes = Probes::load(&opts)?;
    // Open the output before attaching anything: an unwritable path fails fast.
    let file = File::create(&args.output)
        .with_context(|| format!("cannot create the record file {}", args.output.display()))?;

    let mut tids = probes.take_tids()?;
    let before = target::fill_before_attach(target.pid, &mut tids)?;
    probes.attach_all()?;
    let clock = target::clock_mapping();
    let start_ns = clock.monotonic_ns;
    let seen = target::fill_after_attach(target.pid, &mut tids, &before, start_ns)?;

    let header = RecordHeader {
        pintrace_version: env!("CARGO_PKG_VERSION").to_string(),
        host: target::hostname(),
        kernel: target::kernel_release(),
        nr_cpus: target::nr_cpus(),
        target: target.clone(),
        clock,
        start_ns,
        probes: probes
            .statuses
            .iter()
            .map(|(s, st)| ProbeRecord { name: format!("{}:{}", s.category, s.name), status: st.to_string() })
            .collect(),
        syscalls: args.syscalls,
    };
    let mut writer = Writer::new(BufWriter::with_capacity(1 << 20, file), &header)
        .with_context(|| format!("writing {}", args.output.display()))?;
    for e in &seen {
        writer.push(e).with_context(|| format!("writing {}", args.output.display()))?;
    }

    for (spec, status) in &probes.statuses {
        if !matches!(status, ProbeStatus::Attached | ProbeStatus::Off) {
            eprintln!("pintrace: warning: {}:{} {status}; so {}", spec.category, spec.name, spec.without);
        }
    }
    let attached = probes.statuses.iter().filter(|(_, s)| *s == ProbeStatus::Attached).count();
    eprintln!(
        "pintrace: recording process {} ({}), {} threads, {attached} probes attached, to {}; Ctrl-C to stop",
        target.pid,
        target.comm,
        seen.len(),
        args.output.display()
    );

    let (ring, lost) = (probes.take_ring()?, probes.take_lost()?);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the event loop")?;
    let outcome = runtime.block_on(record_loop(ring, lost, &target, &mut writer, args.duration, &args.output))?;
    drop(probes);

    let trailer = Trailer {
        end_ns: outcome.end_ns,
        end_reason: outcome.reason.to_string(),
        events: outcome.events,
        lost_events: outcome.lost,
        decode_errors: outcome.decode_errors,
    };
    let (bytes, out) = writer.finish(&trailer).with_context(|| format!("writing {}", args.output.display()))?;
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", args.output.display()))?;

    let secs = outcome.end_ns.saturating_sub(start_ns) as f64 / 1e9;
    let per_event = if outcome.events > 0 { bytes as f64 / outcome.events as f64 } else { 0.0 };
    eprintln!(
        "pintrace: {}; recorded {} events ({} lost) in {secs:.2} s to {}: {} bytes, {per_event:.1} bytes/event",
        outcome.reason,
        outcome.events,
        outcome.lost,
        args.output.display(),
        fmt::count(bytes),
    );
    if outcome.lost > 0 {
        eprintln!(
            "pintrace: warning: {} events did not fit in the ring buffer and were lost; counts are low by that much \
             (a larger --buffer-size helps; it is {} KiB)",
            outcome.lost,
            args.buffer_size >> 10
        );
    }
    if outcome.decode_errors > 0 {
        eprintln!("pintrace: warning: {} kernel records could not be decoded", outcome.decode_errors);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    Duration,
    Interrupted,
    Terminated,
    TargetExited,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Duration => "duration reached",
            Reason::Interrupted => "interrupted",
            Reason::Terminated => "terminated",
            Reason::TargetExited => "target exited",
        })
    }
}

struct Outcome {
    reason: Reason,
    end_ns: u64,
    events: u64,
    lost: u64,
    decode_errors: u64,
}

async fn record_loop(
    ring: RingBuf<MapData>,
    lost: LostCounter,
    target: &Target,
    writer: &mut Writer<BufWriter<File>>,
    duration: Option<Duration>,
    path: &Path,
) -> Result<Outcome> {
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let reader = tokio::spawn(Source::new(ring, lost)?.run(tx, stop_rx, POLL));
    let mut sigint = signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    // Without --duration the deadline branch is disabled; a year keeps the timer arithmetic ordinary.
    let deadline =
        tokio::time::Instant::from_std(Instant::now() + duration.unwrap_or(Duration::from_secs(365 * 86400)));
    let mut flush = tokio::time::interval(FLUSH);
    let mut alive = tokio::time::interval(ALIVE_CHECK);
    let mut reason: Option<Reason> = None;
    let mut end_ns = 0;
    let mut last_ts = 0;

    loop {
        let stop_with = tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break };
                for e in &batch {
                    last_ts = last_ts.max(e.ts_ns);
                    writer.push(e).with_context(|| format!("writing {} (it holds everything up to the last whole chunk)", path.display()))?;
                    if let EventKind::Exit { tgid, group_dead: true, .. } = e.kind {
                        if tgid == target.pid {
                            reason.get_or_insert(Reason::TargetExited);
                            let _ = stop_tx.send(true);
                        }
                    }
                }
                None
            }
            _ = sigint.recv() => Some(Reason::Interrupted),
            _ = sigterm.recv() => Some(Reason::Terminated),
            _ = tokio::time::sleep_until(deadline), if reason.is_none() && duration.is_some() => Some(Reason::Duration),
            _ = alive.tick(), if reason.is_none() => (!target::alive(target.pid)).then_some(Reason::TargetExited),
            _ = flush.tick() => {
                writer.flush_chunk().with_context(|| format!("writing {}", path.display()))?;
                None
            }
        };
        if let Some(r) = stop_with {
            if reason.is_none() {
                reason = Some(r);
                end_ns = target::monotonic_ns();
            }
            // The source drains what the kernel has written so far, then closes the channel.
            let _ = stop_tx.send(true);
        }
    }
    let stats = reader.await.context("the ring-buffer reader stopped")??;
    let reason = reason.unwrap_or(Reason::Interrupted);
    if reason == Reason::TargetExited && last_ts > 0 {
        // The window ends with the target's last event (its threads' final switches).
        end_ns = last_ts;
    }
    if end_ns == 0 {
        end_ns = target::monotonic_ns();
    }
    Ok(Outcome { reason, end_ns, events: stats.events, lost: stats.lost, decode_errors: stats.decode_errors })
}
