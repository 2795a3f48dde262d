//! `pintrace replay`: a record file on the live screen (or in batch form).
use std::process::ExitCode;

use anyhow::Result;

use super::{batch::BatchSink, ReplayArgs};
use crate::{
    run::{self, FileFeed, Options, Pace},
    tui::screen::{self, TuiSink},
};

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let mut feed = FileFeed::open(&args.file)?;
    let header = feed.header().clone();
    let opts = Options { interval: Some(args.interval), duration: None };
    if args.batch || !screen::is_terminal() {
        let mut sink = BatchSink::new(&header, args.json, None, args.findings.thresholds());
        run::block_on(run::replay(&mut feed, &mut sink, opts, Pace::Max, None))??;
    } else {
        let speed = Some(args.speed).filter(|x| x.is_finite());
        let pace = speed.map_or(Pace::Max, Pace::Speed);
        let status = screen::replay_status(&header, &args.file, speed, args.interval);
        let mut sink = TuiSink::open(&header, status, &[])?.thresholds(args.findings.thresholds());
        let keys = Some(crossterm::event::EventStream::new());
        let outcome = run::block_on(run::replay(&mut feed, &mut sink, opts, pace, keys));
        drop(sink);
        outcome??;
    }
    if let Some(problem) = &feed.problem {
        let problem = crate::fmt::clean(&problem.to_string()).into_owned();
        eprintln!("pintrace: {}: {problem}: played the events before it", args.file.display());
        return Ok(ExitCode::from(super::report::EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
}
