//! `pintrace top`: the live screen, or (`--batch`, or without a terminal)
//! one block or JSON object per interval.
use std::process::ExitCode;

use anyhow::Result;

use super::{batch::BatchSink, TopArgs};
use crate::{
    run::{self, Options, Sink as _},
    session::Session,
    tui::screen::{self, TuiSink},
};

pub fn run(args: TopArgs) -> Result<ExitCode> {
    let batch = args.batch || !screen::is_terminal();
    if !args.batch && batch {
        eprintln!("pintrace: standard output is not a terminal: printing one block per interval, as with --batch");
    }
    // Everything that can fail does so before the screen opens.
    let mut session = Session::attach(&args.target.spec(!batch), &args.target.options())?;
    for w in session.warnings() {
        eprintln!("pintrace: warning: {w}");
    }
    let opts = Options { interval: Some(args.interval), duration: args.duration };
    let header = session.header.clone();
    if batch {
        let mut sink = BatchSink::new(&header, args.json, args.count, args.findings.thresholds());
        sink.events(&session.initial)?;
        eprintln!(
            "pintrace: tracing process {} ({}), {} threads, {} probes attached; Ctrl-C to stop",
            session.target.pid,
            crate::fmt::clean(&session.target.comm),
            session.threads_at_start(),
            session.attached(),
        );
        session.release()?;
        run::block_on(run::live(&mut session, &mut sink, opts, None))??;
    } else {
        session.release()?;
        let mut sink = TuiSink::open(&header, screen::live_status(&header, args.interval), &session.initial)?
            .thresholds(args.findings.thresholds());
        let keys = Some(crossterm::event::EventStream::new());
        let outcome = run::block_on(run::live(&mut session, &mut sink, opts, keys));
        drop(sink);
        outcome??;
    }
    Ok(ExitCode::SUCCESS)
}
