//! The one event loop: a source (the live kernel, or a record file read as
//! fast as possible or paced like the original) feeds a sink (a file
//! writer, the screen, JSON lines, a report). Signals, the duration, the
//! target's exit, interval ticks and keys are handled here and nowhere else.
use std::{fs::File, future::Future, io::BufReader, time::Duration};

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
    time::{interval, Instant, MissedTickBehavior},
};

use crate::{
    event::{Event, EventKind},
    record::{Chunk, ReadError, Reader, RecordHeader, Target, Trailer},
    session::Session,
    source::Source,
    target::monotonic_ns,
};

/// How often the live reader looks at the ring buffer when the kernel has not woken it.
const POLL: Duration = Duration::from_millis(20);
/// How often /proc is asked whether the target still exists.
const ALIVE_CHECK: Duration = Duration::from_millis(200);
/// How often the target's cgroup's throttling counters are read: at least
/// once per CFS period of the default 100 ms, so throttled periods show.
const THROTTLE_POLL: Duration = Duration::from_millis(100);
/// How often a Go target's scheduler is sampled: ten times a second shows
/// run queues building within an interval (measured cost: see
/// `cargo xtask bench --only-go`).
const SCHED_POLL: Duration = Duration::from_millis(100);
/// How often the target's CPU cgroup is looked up again: a process can be
/// moved to another group, and a quota changed (a pod resize), while traced.
const CGROUP_CHECK: Duration = Duration::from_secs(1);
/// How often a paced replay moves its clock on.
const PACE: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Why a trace ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Duration,
    Interrupted,
    Terminated,
    HungUp,
    TargetExited,
    EndOfFile,
    /// The user quit (the screen).
    Quit,
    /// The sink had what it wanted (`--count`).
    Done,
    /// Another signal that ends a process (SIGQUIT, SIGUSR1, SIGALRM...):
    /// the trace ends as for SIGTERM, the terminal and the file intact.
    Signal(&'static str),
    /// A recording played up to damage in it.
    Damaged,
}

impl End {
    /// Ends that the user asked for: a screen closes at once.
    pub fn by_user(self) -> bool {
        matches!(self, End::Interrupted | End::Terminated | End::HungUp | End::Quit | End::Signal(_))
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Duration => "duration reached",
            End::Interrupted => "interrupted",
            End::Terminated => "terminated",
            End::HungUp => "hung up",
            End::TargetExited => "target exited",
            End::EndOfFile => "end of recording",
            End::Quit => "quit",
            End::Done => "count reached",
            End::Signal(name) => return write!(f, "ended by {name}"),
            End::Damaged => "damaged recording: played up to the damage (details on exit)",
        })
    }
}

/// What a sink asks of the loop after a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Control {
    None,
    Quit,
    SetInterval(Duration),
    /// Replay: stop or restart the playback clock.
    Pause(bool),
    /// Replay: play one interval, then stay paused.
    Step,
    /// Replay speed: a multiple of real time, or None for as fast as possible.
    Speed(Option<f64>),
    BpfStats(bool),
}

/// pintrace's own cost, per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BpfRate {
    pub ns_per_sec: f64,
    pub runs_per_sec: f64,
}

/// The loop's own numbers, handed to the sink at each tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub events: u64,
    pub lost: u64,
    pub decode_errors: u64,
    /// pintrace's CPU use over the last interval, in percent of one CPU (live only).
    pub self_cpu_pct: Option<f64>,
    pub bpf: Option<BpfRate>,
}

pub trait Sink {
    /// Events in order, a batch at a time.
    fn events(&mut self, events: &[Event]) -> Result<()>;
    /// The end of an interval at `now_ns` (CLOCK_MONOTONIC of the trace).
    fn tick(&mut self, _now_ns: u64, _stats: &Stats) -> Result<Flow> {
        Ok(Flow::Continue)
    }
    /// The target's name or command line changed (it exec'd).
    fn retarget(&mut self, _target: &Target) {}
    /// The trace ended at `end_ns`; `Continue` keeps the loop for keys until the user quits.
    fn ended(&mut self, _end: End, _end_ns: u64, _stats: &Stats) -> Result<Flow> {
        Ok(Flow::Stop)
    }
    /// A terminal event; `now_ns` is the trace's clock. Keys come in
    /// bursts (auto-repeat, a paste): the sink updates its state here and
    /// draws once in `keys_done`, after the burst.
    fn key(&mut self, _event: crossterm::event::Event, _now_ns: u64) -> Result<Control> {
        Ok(Control::None)
    }
    /// The keys that were waiting have all been handed over.
    fn keys_done(&mut self) -> Result<()> {
        Ok(())
    }
    /// The Go runtime of the target's new program has been read (after an exec).
    fn go_changed(&mut self, _go: Option<&crate::goruntime::GoInfo>) {}
    /// The process is about to stop (SIGTSTP): give the terminal back.
    fn suspend(&mut self) -> Result<()> {
        Ok(())
    }
    /// The process continues after a stop: take the terminal again.
    fn resume(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The signals that end a trace, installed before anything is created
/// (a file, the kernel programs, a child), so that none of them kills
/// pintrace half-way: a signal that comes during the start is seen after
/// it (`pending`), and the start undone. With a screen, also SIGPIPE
/// (without one, pintrace dies quietly of it, as Unix tools do) and
/// SIGTSTP (the screen is put away before the process stops).
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
    quit: Signal,
    usr1: Signal,
    usr2: Signal,
    alrm: Signal,
    pipe: Option<Signal>,
    tstp: Option<Signal>,
}

/// What a signal asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    End(End),
    /// SIGTSTP: stop (with the screen put away), then go on.
    Stop,
}

async fn maybe(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

impl Signals {
    /// Needs a tokio runtime (`runtime()`, entered).
    pub fn install(screen: bool) -> Result<Signals> {
        let install =
            |kind: SignalKind, name: &str| signal(kind).with_context(|| format!("installing the {name} handler"));
        Ok(Signals {
            int: install(SignalKind::interrupt(), "Ctrl-C")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
            quit: install(SignalKind::quit(), "SIGQUIT")?,
            usr1: install(SignalKind::user_defined1(), "SIGUSR1")?,
            usr2: install(SignalKind::user_defined2(), "SIGUSR2")?,
            alrm: install(SignalKind::alarm(), "SIGALRM")?,
            pipe: if screen { Some(install(SignalKind::pipe(), "SIGPIPE")?) } else { None },
            tstp: if screen { Some(install(SignalKind::from_raw(libc::SIGTSTP), "SIGTSTP")?) } else { None },
        })
    }

    /// The next signal.
    async fn recv(&mut self) -> Got {
        tokio::select! {
            _ = self.int.recv() => Got::End(End::Interrupted),
            _ = self.term.recv() => Got::End(End::Terminated),
            _ = self.hup.recv() => Got::End(End::HungUp),
            _ = self.quit.recv() => Got::End(End::Signal("SIGQUIT")),
            _ = self.usr1.recv() => Got::End(End::Signal("SIGUSR1")),
            _ = self.usr2.recv() => Got::End(End::Signal("SIGUSR2")),
            _ = self.alrm.recv() => Got::End(End::Signal("SIGALRM")),
            _ = maybe(&mut self.pipe) => Got::End(End::Signal("SIGPIPE")),
            _ = maybe(&mut self.tstp) => Got::Stop,
        }
    }

    /// An ending signal that came already (during the start), if any. The
    /// runtime's driver hands signals over when it runs: it is given a
    /// moment to.
    pub async fn pending(&mut self) -> Option<End> {
        use futures_util::FutureExt as _;
        tokio::time::sleep(Duration::from_millis(1)).await;
        loop {
            match self.recv().now_or_never()? {
                Got::End(why) => return Some(why),
                Got::Stop => continue, // no screen yet: nothing to put away
            }
        }
    }
}

type Signal = tokio::signal::unix::Signal;

/// Puts the screen away, stops the process as SIGTSTP would have, and
/// takes the screen again when it continues (`fg`).
fn stop_and_continue<S: Sink>(sink: &mut S) -> Result<()> {
    sink.suspend()?;
    // SAFETY: raise has no preconditions; SIGSTOP stops every thread until SIGCONT.
    unsafe { libc::raise(libc::SIGSTOP) };
    sink.resume()
}

/// Hands every key that is waiting to the sink, then lets it draw once.
async fn keys_burst<S: Sink>(
    sink: &mut S,
    first: crossterm::event::Event,
    keys: &mut Keys,
    now_ns: u64,
) -> Result<Control> {
    use futures_util::FutureExt as _;
    burst(sink, first, || next_key(keys).now_or_never().flatten(), now_ns)
}

/// `first`, then the keys `ready` has without waiting (at most
/// `MAX_BURST`, and none after one that asks something of the loop), then
/// one `keys_done`.
fn burst<S: Sink>(
    sink: &mut S,
    first: crossterm::event::Event,
    mut ready: impl FnMut() -> Option<crossterm::event::Event>,
    now_ns: u64,
) -> Result<Control> {
    let mut control = sink.key(first, now_ns)?;
    for _ in 0..MAX_BURST {
        if control != Control::None {
            break;
        }
        let Some(key) = ready() else { break };
        control = sink.key(key, now_ns)?;
    }
    sink.keys_done()?;
    Ok(control)
}

/// Keys handled before the screen is drawn again.
const MAX_BURST: usize = 256;

/// Options of the loop.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Ticks: the sink's interval. None: no ticks (a report).
    pub interval: Option<Duration>,
    /// Stop after this long (live only).
    pub duration: Option<Duration>,
}

pub struct Outcome {
    pub end: End,
    pub end_ns: u64,
    pub stats: Stats,
    /// The first kernel record that could not be decoded, and why.
    pub first_decode_error: Option<String>,
}

/// Terminal events for a screen, or none.
pub type Keys = Option<crossterm::event::EventStream>;

async fn next_key(keys: &mut Keys) -> Option<crossterm::event::Event> {
    match keys {
        Some(k) => match k.next().await {
            Some(Ok(e)) => Some(e),
            // The terminal is gone or unreadable: stop reading it.
            _ => {
                *keys = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// A wall-clock deadline, or never.
fn deadline(after: Option<Duration>) -> Instant {
    Instant::now() + after.unwrap_or(Duration::from_secs(365 * 86400))
}

/// pintrace's own CPU time between two calls, as a share of the wall time.
struct SelfCpu {
    last: (Duration, std::time::Instant),
}

fn own_cpu() -> Duration {
    // SAFETY: a zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

impl SelfCpu {
    fn new() -> Self {
        SelfCpu { last: (own_cpu(), std::time::Instant::now()) }
    }

    fn pct(&mut self) -> f64 {
        let now = (own_cpu(), std::time::Instant::now());
        let wall = now.1.duration_since(self.last.1).as_secs_f64();
        let cpu = now.0.saturating_sub(self.last.0).as_secs_f64();
        self.last = now;
        if wall > 0.0 {
            100.0 * cpu / wall
        } else {
            0.0
        }
    }
}

/// The kernel programs' run time per second, between two calls.
struct BpfMeter {
    last: Option<((u64, u64), std::time::Instant)>,
}

impl BpfMeter {
    fn rate(&mut self, now: Option<(u64, u64)>) -> Option<BpfRate> {
        let Some(now) = now else {
            self.last = None;
            return None;
        };
        let at = std::time::Instant::now();
        let rate = self.last.map(|(prev, t)| {
            let secs = at.duration_since(t).as_secs_f64().max(1e-9);
            BpfRate {
                ns_per_sec: now.0.saturating_sub(prev.0) as f64 / secs,
                runs_per_sec: now.1.saturating_sub(prev.1) as f64 / secs,
            }
        });
        self.last = Some((now, at));
        rate
    }
}

/// Hands a reading of the target's state (cgroup counters, GOMAXPROCS) to
/// the sink as an event when it differs from the last one handed over.
fn send_if_changed<S: Sink>(sink: &mut S, last: &mut Option<EventKind>, reading: Option<Event>) -> Result<()> {
    match reading {
        Some(e) if *last != Some(e.kind) => {
            *last = Some(e.kind);
            sink.events(&[e])
        }
        _ => Ok(()),
    }
}

/// Traces a live session into `sink` until the duration, a signal, the
/// target's exit or the sink ends it. Call inside a tokio runtime.
pub async fn live<S: Sink>(
    session: &mut Session,
    sink: &mut S,
    opts: Options,
    mut keys: Keys,
    signals: &mut Signals,
) -> Result<Outcome> {
    let (ring, lost) = session.take_ring()?;
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(64);
    let (stop_tx, stop_rx) = watch::channel(false);
    let source = Source::new(ring, lost)?;
    let decode_errors = source.decode_errors();
    let reader = tokio::spawn(source.run(tx, stop_rx, POLL));
    let stop_at = deadline(opts.duration);
    let mut ticks = interval(opts.interval.unwrap_or(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.reset();
    let mut alive = interval(ALIVE_CHECK);
    let mut throttle = interval(THROTTLE_POLL);
    let mut last_throttle: Option<EventKind> = None;
    let mut last_gomaxprocs: Option<EventKind> =
        session.initial.iter().rev().map(|e| e.kind).find(|k| matches!(k, EventKind::GoMaxProcs { .. }));
    let mut cgroup_check = interval(CGROUP_CHECK);
    let mut sched_poll = interval(SCHED_POLL);
    let mut self_cpu = SelfCpu::new();
    let mut bpf = BpfMeter { last: None };
    let mut stats = Stats::default();
    let mut end: Option<End> = None;
    let mut end_ns = 0;
    let mut last_ts = 0;
    let mut drained = false;
    let pid = session.target.pid;
    // A signal during the start ends the trace at once.
    let mut early = signals.pending().await;

    loop {
        let mut stop_with: Option<End> = early.take();
        tokio::select! {
            batch = rx.recv(), if !drained => match batch {
                Some(mut batch) => {
                    session.name_go_locks(&mut batch);
                    sink.events(&batch)?;
                    let names = session.name_others(&batch);
                    if !names.is_empty() {
                        sink.events(&names)?;
                    }
                    for e in &batch {
                        last_ts = last_ts.max(e.ts_ns);
                        match e.kind {
                            EventKind::Exit { tgid, group_dead: true, .. } if tgid == pid => {
                                stop_with = Some(End::TargetExited);
                            }
                            EventKind::Exec { tid, .. } if tid == pid => sink.retarget(session.refresh_target()),
                            EventKind::Lost { total } => stats.lost = stats.lost.max(total),
                            _ => {}
                        }
                    }
                }
                None => drained = true,
            },
            got = signals.recv() => match got {
                Got::End(why) => stop_with = Some(why),
                Got::Stop => stop_and_continue(sink)?,
            },
            _ = tokio::time::sleep_until(stop_at), if end.is_none() && opts.duration.is_some() => {
                stop_with = Some(End::Duration);
            }
            _ = throttle.tick(), if end.is_none() && session.cgroup.is_ok() => {
                send_if_changed(sink, &mut last_throttle, session.throttle_event())?;
            }
            _ = sched_poll.tick(), if end.is_none() && session.is_go() && session.go_sched_problem.is_none() => {
                let sample = session.go_sched_events();
                if !sample.is_empty() {
                    sink.events(&sample)?;
                }
            }
            _ = cgroup_check.tick(), if end.is_none() => {
                if let Some(e) = session.cgroup_event() {
                    sink.events(&[e])?;
                    // The next reading is of the new group's counters.
                    last_throttle = None;
                }
            }
            _ = alive.tick(), if end.is_none() => {
                if session.poll_go() {
                    sink.go_changed(session.go_info().as_ref());
                }
                if !session.alive() {
                    stop_with = Some(End::TargetExited);
                }
            }
            _ = ticks.tick(), if end.is_none() && opts.interval.is_some() => {
                send_if_changed(sink, &mut last_gomaxprocs, session.gomaxprocs_event())?;
                let ms = session.go_thread_events();
                if !ms.is_empty() {
                    sink.events(&ms)?;
                }
                stats.decode_errors = decode_errors.get();
                stats.self_cpu_pct = Some(self_cpu.pct());
                stats.bpf = bpf.rate(session.bpf_usage());
                if sink.tick(monotonic_ns(), &stats)? == Flow::Stop {
                    stop_with = Some(End::Done);
                }
            }
            key = next_key(&mut keys) => {
                if let Some(key) = key {
                    match keys_burst(sink, key, &mut keys, monotonic_ns()).await? {
                        Control::Quit => stop_with = Some(End::Quit),
                        Control::SetInterval(d) => {
                            ticks = interval(d);
                            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                            ticks.reset();
                        }
                        Control::BpfStats(on) => {
                            session.set_bpf_stats(on)?;
                            bpf.rate(session.bpf_usage());
                        }
                        Control::None | Control::Pause(_) | Control::Step | Control::Speed(_) => {}
                    }
                }
            }
        }
        if let Some(why) = stop_with {
            if end.is_none() {
                end = Some(why);
                end_ns = monotonic_ns();
            }
            if why.by_user() && drained {
                break; // the user quits after the end: nothing left to drain
            }
            // The source drains what the kernel has written so far, then closes the channel.
            let _ = stop_tx.send(true);
        }
        if drained && end.is_some() && !reader.is_finished() {
            continue;
        }
        if drained {
            let why = end.unwrap_or(End::Interrupted);
            if why == End::TargetExited && last_ts > 0 {
                // The trace ends with the target's last event (its threads' final switches).
                end_ns = last_ts;
            }
            stats.decode_errors = decode_errors.get();
            if why.by_user() || sink.ended(why, end_ns, &stats)? == Flow::Stop {
                break;
            }
            // The sink stays (a screen showing the final numbers) until the user quits.
            loop {
                tokio::select! {
                    got = signals.recv() => match got {
                        Got::End(_) => break,
                        Got::Stop => stop_and_continue(sink)?,
                    },
                    key = next_key(&mut keys) => {
                        let quit = match key {
                            Some(key) => keys_burst(sink, key, &mut keys, end_ns).await? == Control::Quit,
                            None => keys.is_none(),
                        };
                        if quit {
                            break;
                        }
                    }
                }
            }
            break;
        }
    }
    let source_stats = reader.await.context("the ring-buffer reader stopped")??;
    stats.events = source_stats.events;
    stats.lost = source_stats.lost;
    stats.decode_errors = source_stats.decode_errors;
    if end_ns == 0 {
        end_ns = monotonic_ns();
    }
    Ok(Outcome { end: end.unwrap_or(End::Interrupted), end_ns, stats, first_decode_error: decode_errors.first() })
}

/// A record file as a source of events.
pub struct FileFeed {
    reader: Reader<BufReader<File>>,
    pending: std::collections::VecDeque<Event>,
    eof: bool,
    pub trailer: Option<Trailer>,
    /// Damage found while reading: the events before it were delivered.
    pub problem: Option<ReadError>,
    /// Events delivered.
    pub events: u64,
    /// The kernel's count of lost events, as the file says.
    pub lost: u64,
}

impl FileFeed {
    pub fn open(path: &std::path::Path) -> Result<FileFeed> {
        // A damaged header's error can quote its bytes: shown cleaned.
        let reader = Reader::open(path)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), crate::fmt::clean(&e.to_string())))?;
        Ok(FileFeed {
            reader,
            pending: Default::default(),
            eof: false,
            trailer: None,
            problem: None,
            events: 0,
            lost: 0,
        })
    }

    pub fn header(&self) -> &RecordHeader {
        self.reader.header()
    }

    /// The file's format version.
    pub fn version(&self) -> u16 {
        self.reader.version()
    }

    /// The time of the next event, reading a chunk if none is buffered.
    fn peek_ts(&mut self) -> Option<u64> {
        while self.pending.is_empty() && !self.eof {
            match self.reader.next_chunk() {
                Ok(Some(Chunk::Events(events))) => self.pending.extend(events),
                Ok(Some(Chunk::Trailer(t))) => self.trailer = Some(*t),
                Ok(None) => self.eof = true,
                Err(e) => {
                    self.problem = Some(e);
                    self.eof = true;
                }
            }
        }
        self.pending.front().map(|e| e.ts_ns)
    }

    /// Delivers the events up to and including `until` to the sink, a chunk-sized batch at a time.
    fn deliver<S: Sink>(&mut self, sink: &mut S, until: u64, batch: &mut Vec<Event>) -> Result<()> {
        while let Some(ts) = self.peek_ts() {
            if ts > until {
                break;
            }
            batch.clear();
            while let Some(e) = self.pending.front().filter(|e| e.ts_ns <= until) {
                batch.push(*e);
                self.pending.pop_front();
            }
            for e in batch.iter() {
                match e.kind {
                    EventKind::Lost { total } => self.lost = self.lost.max(total),
                    EventKind::ThreadSeen { .. } => {}
                    _ if e.cpu == crate::event::NO_CPU => {}
                    _ => self.events += 1,
                }
            }
            sink.events(batch)?;
        }
        Ok(())
    }

    /// The end of the recording: the trailer's, or the last event's time.
    fn end_ns(&self, last: u64) -> u64 {
        self.trailer.as_ref().map_or(last, |t| t.end_ns.max(last))
    }
}

/// How a file is played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As fast as it can be read.
    Max,
    /// In step with the recording's clock, times this factor.
    Speed(f64),
}

/// Plays a record file into `sink`. With a tick interval, the sink gets a
/// tick at every interval boundary of the recording's clock, so that rates
/// are the recording's whatever the playback speed.
pub async fn replay<S: Sink>(
    feed: &mut FileFeed,
    sink: &mut S,
    opts: Options,
    mut pace: Pace,
    mut keys: Keys,
    signals: &mut Signals,
) -> Result<Outcome> {
    let start = feed.header().start_ns;
    let mut every = opts.interval.map(|d| d.as_nanos() as u64).filter(|&n| n > 0);
    let mut boundary = every.map_or(u64::MAX, |e| start + e);
    // The playback clock: `pos` at wall time `base`.
    let mut pos = start;
    let mut base = (start, std::time::Instant::now());
    let mut paused = false;
    let mut step = false;
    let mut pacer = interval(PACE);
    pacer.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut batch = Vec::with_capacity(crate::source::BATCH);
    let mut last = start;
    let mut stats = Stats::default();
    let mut finished = false;
    let mut ended = false;

    let end = loop {
        let mut target: Option<u64> = None;
        tokio::select! {
            _ = pacer.tick(), if !finished && !paused && pace != Pace::Max => {
                if let Pace::Speed(x) = pace {
                    target = Some(base.0 + (base.1.elapsed().as_nanos() as f64 * x) as u64);
                }
            }
            _ = std::future::ready(()), if !finished && (pace == Pace::Max && !paused || step) => {
                // One interval (or, without ticks, everything) per turn, so keys and signals get theirs.
                target = Some(if step || every.is_some() { boundary } else { u64::MAX });
                step = false;
            }
            got = signals.recv() => match got {
                Got::End(why) => break why,
                Got::Stop => stop_and_continue(sink)?,
            },
            key = next_key(&mut keys) => {
                let Some(key) = key else {
                    if keys.is_none() && finished { break End::Quit }
                    continue;
                };
                match keys_burst(sink, key, &mut keys, pos).await? {
                    Control::Quit => break End::Quit,
                    Control::Pause(p) => {
                        paused = p;
                        base = (pos, std::time::Instant::now());
                    }
                    Control::Step => {
                        paused = true;
                        step = true;
                    }
                    Control::Speed(s) => {
                        pace = s.map_or(Pace::Max, Pace::Speed);
                        base = (pos, std::time::Instant::now());
                    }
                    Control::SetInterval(d) => {
                        every = Some(d.as_nanos() as u64).filter(|&n| n > 0);
                        boundary = every.map_or(u64::MAX, |e| pos + e);
                    }
                    Control::None | Control::BpfStats(_) => {}
                }
            }
        }
        let Some(target) = target else { continue };
        // Deliver up to `target`, ticking at each boundary on the way.
        loop {
            let upto = target.min(boundary);
            feed.deliver(sink, upto, &mut batch)?;
            last = last.max(batch.last().map_or(last, |e| e.ts_ns));
            let more = feed.peek_ts().is_some();
            let end_ns = feed.end_ns(last);
            if boundary <= target && (more || boundary <= end_ns) {
                pos = boundary;
                stats.events = feed.events;
                stats.lost = feed.lost;
                if sink.tick(boundary, &stats)? == Flow::Stop {
                    break;
                }
                boundary += every.unwrap_or(u64::MAX);
                if pace == Pace::Max {
                    break; // one interval per turn
                }
                continue;
            }
            pos = pos.max(target.min(end_ns));
            if !more && pos >= end_ns {
                finished = true;
            }
            break;
        }
        if finished && !ended {
            ended = true;
            let end_ns = feed.end_ns(last);
            stats.events = feed.events;
            stats.lost = feed.lost;
            if every.is_some() && end_ns > boundary.saturating_sub(every.unwrap_or(0)) {
                // The last, partial interval.
                sink.tick(end_ns, &stats)?;
            }
            let end = if feed.problem.is_some() { End::Damaged } else { End::EndOfFile };
            if sink.ended(end, end_ns, &stats)? == Flow::Stop {
                break end;
            }
            if keys.is_none() {
                break end;
            }
        }
    };
    stats.events = feed.events;
    stats.lost = feed.lost;
    // The recording's decode errors, as its trailer says.
    stats.decode_errors = feed.trailer.as_ref().map_or(0, |t| t.decode_errors);
    let first_decode_error = feed.trailer.as_ref().and_then(|t| t.first_decode_error.clone());
    Ok(Outcome { end, end_ns: feed.end_ns(last), stats, first_decode_error })
}

/// Runs `f` on a single-threaded tokio runtime.
pub fn block_on<F: Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

/// The single-threaded tokio runtime of the event loop: created first, so
/// that the signal handlers (`Signals`) can be installed before anything else.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the event loop")
}

#[cfg(test)]
mod tests {
    use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};

    use super::*;

    #[derive(Default)]
    struct Counting {
        keys: usize,
        draws: usize,
    }

    impl Sink for Counting {
        fn events(&mut self, _: &[Event]) -> Result<()> {
            Ok(())
        }

        fn key(&mut self, e: TermEvent, _: u64) -> Result<Control> {
            self.keys += 1;
            let quit = matches!(e, TermEvent::Key(k) if k.code == KeyCode::Char('q'));
            Ok(if quit { Control::Quit } else { Control::None })
        }

        fn keys_done(&mut self) -> Result<()> {
            self.draws += 1;
            Ok(())
        }
    }

    fn key(c: char) -> TermEvent {
        TermEvent::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    /// 300 presses of `j` waiting at once: two draws, not 300.
    #[test]
    fn a_burst_of_keys_is_drawn_once() {
        let mut waiting: std::collections::VecDeque<TermEvent> = (1..300).map(|_| key('j')).collect();
        let mut sink = Counting::default();
        let mut turns = 0;
        let mut first = Some(key('j'));
        while let Some(k) = first.take() {
            assert_eq!(burst(&mut sink, k, || waiting.pop_front(), 0).expect("keys"), Control::None);
            turns += 1;
            first = waiting.pop_front();
        }
        assert_eq!((sink.keys, sink.draws, turns), (300, 2, 2));
        // A key that asks something of the loop ends the burst there.
        let mut waiting: std::collections::VecDeque<TermEvent> = [key('j'), key('q'), key('j')].into();
        let mut sink = Counting::default();
        assert_eq!(burst(&mut sink, key('j'), || waiting.pop_front(), 0).expect("keys"), Control::Quit);
        assert_eq!((sink.keys, sink.draws, waiting.len()), (3, 1, 1));
    }
}
