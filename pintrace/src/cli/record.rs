//! `pintrace record`: every event of the target, streamed to a file.
use std::{fs::File, io::BufWriter, process::ExitCode, time::Duration};

use anyhow::{Context as _, Result};

use super::{output::Output, RecordArgs};
use crate::{
    event::Event,
    fmt,
    record::{Target, Trailer, Writer},
    run::{self, Flow, Options, Signals, Sink, Stats},
};

/// How often buffered events are written out even if a chunk is not full.
const FLUSH: Duration = Duration::from_secs(1);

/// Writes every event to the record file; a tick writes the buffered chunk.
struct FileSink {
    writer: Writer<BufWriter<File>>,
    name: String,
    target: Option<Target>,
}

impl FileSink {
    fn context(&self) -> String {
        format!("writing {} (it holds everything up to the last whole chunk)", self.name)
    }
}

impl Sink for FileSink {
    fn events(&mut self, events: &[Event]) -> Result<()> {
        for e in events {
            if let Err(err) = self.writer.push(e) {
                return Err(err).with_context(|| self.context());
            }
        }
        Ok(())
    }

    fn tick(&mut self, _now_ns: u64, _stats: &Stats) -> Result<Flow> {
        if let Err(err) = self.writer.flush_chunk() {
            return Err(err).with_context(|| self.context());
        }
        Ok(Flow::Continue)
    }

    fn retarget(&mut self, target: &Target) {
        self.target = Some(target.clone());
    }
}

pub fn run(args: RecordArgs) -> Result<ExitCode> {
    // The signal handlers first: a Ctrl-C during the start is seen after
    // it, and undoes it (no file, no child), instead of killing pintrace
    // with a temporary file left behind.
    let runtime = run::runtime()?;
    let _entered = runtime.enter();
    let mut signals = Signals::install(false)?;
    if let Some(pid) = args.target.pid {
        crate::target::resolve(pid)?;
    }
    crate::probe::check_privileges()?;
    // Open the output before attaching anything: an unwritable path fails
    // fast. A new file stays under a temporary name, removed if the start
    // fails, until the command has started and the header is written; an
    // existing file is moved aside only then.
    let mut output = Output::create(&args.output)?;
    let mut session = crate::session::Session::attach(&args.target.spec(false), &args.target.options())?;
    interrupted(&runtime, &mut signals)?;
    // A command that cannot run fails here, before anything is replaced.
    session.release()?;
    let name = output.name.clone();
    let writer = Writer::new(BufWriter::with_capacity(1 << 20, output.file()?), &session.header)
        .with_context(|| format!("writing {name}"))?;
    let mut sink = FileSink { writer, name, target: None };
    sink.events(&session.initial)?;
    sink.writer.flush().with_context(|| format!("writing {}", sink.name))?;
    if let Some(note) = output.commit()? {
        eprintln!("pintrace: {note}");
    }
    for w in session.warnings() {
        eprintln!("pintrace: warning: {w}");
    }
    eprintln!(
        "pintrace: recording process {} ({}), {} threads, {} probes attached, to {}; Ctrl-C to stop",
        session.target.pid,
        fmt::clean(&session.target.comm),
        session.threads_at_start(),
        session.attached(),
        sink.name
    );
    let start_ns = session.header.start_ns;
    let opts = Options { interval: Some(FLUSH), duration: args.duration };
    let outcome = runtime.block_on(run::live(&mut session, &mut sink, opts, None, &mut signals))?;
    let target = sink.target.take().filter(|t| *t != session.header.target);
    let go = if session.header.go.is_none() { session.go_info() } else { None };
    drop(session);

    let stats = outcome.stats;
    let trailer = Trailer {
        end_ns: outcome.end_ns,
        end_reason: outcome.end.to_string(),
        events: stats.events,
        lost_events: stats.lost,
        decode_errors: stats.decode_errors,
        first_decode_error: outcome.first_decode_error.clone(),
        target,
        go,
    };
    let (bytes, out) = sink.writer.finish(&trailer).with_context(|| format!("writing {}", sink.name))?;
    drop(out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", sink.name))?);
    output.sync()?;
    report_end(&args, &sink.name, &outcome, start_ns, bytes);
    Ok(ExitCode::SUCCESS)
}

/// Fails the start if a signal came during it: what it created is undone
/// as the error unwinds (the temporary file removed, a started command ended).
pub fn interrupted(runtime: &tokio::runtime::Runtime, signals: &mut Signals) -> Result<()> {
    match runtime.block_on(signals.pending()) {
        Some(why) => anyhow::bail!("{why} while starting: nothing traced"),
        None => Ok(()),
    }
}

fn report_end(args: &RecordArgs, name: &str, outcome: &run::Outcome, start_ns: u64, bytes: u64) {
    let s = &outcome.stats;
    let secs = outcome.end_ns.saturating_sub(start_ns) as f64 / 1e9;
    let per_event = if s.events > 0 { bytes as f64 / s.events as f64 } else { 0.0 };
    eprintln!(
        "pintrace: {}; recorded {} events ({} lost) in {secs:.2} s to {}: {} bytes, {per_event:.1} bytes/event",
        outcome.end,
        s.events,
        s.lost,
        name,
        fmt::count(bytes),
    );
    if s.lost > 0 {
        eprintln!(
            "pintrace: warning: {} events did not fit in the ring buffer and were lost; counts are low by that much \
             (a larger --buffer-size helps; it is {} KiB)",
            s.lost,
            args.target.buffer_size >> 10
        );
    }
    if s.decode_errors > 0 {
        eprintln!(
            "pintrace: warning: {} kernel records could not be decoded; the first: {}",
            s.decode_errors,
            outcome.first_decode_error.as_deref().unwrap_or("?")
        );
    }
}
