//! `pintrace replay`: a record file on the live screen (or in batch form).
use std::process::ExitCode;

use anyhow::Result;

use super::{batch::BatchSink, ReplayArgs};
use crate::{
    run::{self, FileFeed, Options, Pace, Signals},
    tui::screen::{self, TuiSink},
};

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let mut feed = FileFeed::open(&args.file)?;
    let header = feed.header().clone();
    let opts = Options { interval: Some(args.interval), duration: None };
    let (batch, why) = screen::batch_mode(args.batch, &[("--json", args.json)])?;
    // (Output that is not a terminal is batch output without a word, as `cat` would.)
    if let Some(why) = why.filter(|_| screen::is_terminal()) {
        eprintln!("pintrace: {why}: printing one block per interval, as with --batch");
    }
    let runtime = run::runtime()?;
    let _entered = runtime.enter();
    let mut signals = Signals::install(!batch)?;
    if batch {
        let mut sink = BatchSink::new(&header, args.json, None, args.findings.thresholds());
        runtime.block_on(run::replay(&mut feed, &mut sink, opts, Pace::Max, None, &mut signals))?;
    } else {
        let speed = Some(args.speed).filter(|x| x.is_finite());
        let pace = speed.map_or(Pace::Max, Pace::Speed);
        let status = screen::replay_status(&header, &args.file, speed, args.interval);
        let mut sink = TuiSink::open(&header, status, &[])?.thresholds(args.findings.thresholds());
        let keys = Some(crossterm::event::EventStream::new());
        let outcome = runtime.block_on(run::replay(&mut feed, &mut sink, opts, pace, keys, &mut signals));
        drop(sink);
        outcome?;
    }
    if let Some(problem) = &feed.problem {
        let problem = crate::fmt::clean(&problem.to_string()).into_owned();
        eprintln!("pintrace: {}: {problem}: played the events before it", args.file.display());
        return Ok(ExitCode::from(super::report::EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}
