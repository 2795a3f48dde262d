//! `pintrace top`: the live screen, or (`--batch`, or without a terminal)
//! one block or JSON object per interval.
use std::process::ExitCode;

use anyhow::Result;

use super::{batch::BatchSink, record, TopArgs};
use crate::{
    run::{self, Options, Signals, Sink as _},
    session::Session,
    tui::screen::{self, TuiSink},
};

pub fn run(args: TopArgs) -> Result<ExitCode> {
    let (batch, why) = screen::batch_mode(args.batch, &[("--json", args.json), ("--count", args.count.is_some())])?;
    if let Some(why) = why {
        eprintln!("pintrace: {why}: printing one block per interval, as with --batch");
    }
    let runtime = run::runtime()?;
    let _entered = runtime.enter();
    let mut signals = Signals::install(!batch)?;
    // Everything that can fail does so before the screen opens.
    let mut session = Session::attach(&args.target.spec(!batch), &args.target.options())?;
    record::interrupted(&runtime, &mut signals)?;
    for w in session.warnings() {
        eprintln!("pintrace: warning: {w}");
    }
    let opts = Options { interval: Some(args.interval), duration: args.duration };
    if batch {
        eprintln!(
            "pintrace: tracing process {} ({}), {} threads, {} probes attached; Ctrl-C to stop",
            session.target.pid,
            crate::fmt::clean(&session.target.comm),
            session.threads_at_start(),
            session.attached(),
        );
        session.release()?;
        let mut sink = BatchSink::new(&session.header, args.json, args.count, args.findings.thresholds());
        sink.events(&session.initial)?;
        runtime.block_on(run::live(&mut session, &mut sink, opts, None, &mut signals))?;
    } else {
        session.release()?;
        let header = session.header.clone();
        let mut sink = TuiSink::open(&header, screen::live_status(&header, args.interval), &session.initial)?
            .thresholds(args.findings.thresholds());
        let keys = Some(crossterm::event::EventStream::new());
        let outcome = runtime.block_on(run::live(&mut session, &mut sink, opts, keys, &mut signals));
        drop(sink);
        outcome?;
    }
    Ok(ExitCode::SUCCESS)
}
