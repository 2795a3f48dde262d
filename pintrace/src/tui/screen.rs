//! The screen as a sink of the event loop: the terminal's set-up and
//! restoration (on every exit path: quit, error, panic, SIGTERM), the model
//! that events fold into, and the app that keys drive.
use std::{
    io::{IsTerminal as _, Stdout},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use ratatui::{
    backend::CrosstermBackend,
    crossterm::{
        cursor,
        event::Event as TermEvent,
        execute,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
    },
    Terminal,
};

use super::{
    app::{Action, App, BpfUsage, Mode, Speed, Status},
    keymap, view,
};
use crate::{
    analysis::Analyzer,
    event::Event,
    findings,
    record::{RecordHeader, Target},
    run::{Control, End, Flow, Sink, Stats},
};

/// Exited threads stay on the screen this long.
pub const RETAIN_EXITED_NS: u64 = 30_000_000_000;
/// At most this many frames a second when ticks come faster (a fast replay).
const MIN_FRAME: Duration = Duration::from_millis(40);

pub fn is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Whether to print intervals instead of drawing the screen, and why not
/// the screen when it was not asked for: standard output is not a
/// terminal, or a terminal that cannot draw one (TERM unset or `dumb`).
/// `--json` and `--count` without `--batch` in a terminal are an error,
/// not a screen that ignores them.
pub fn batch_mode(batch: bool, batch_only: &[(&str, bool)]) -> anyhow::Result<(bool, Option<&'static str>)> {
    if batch {
        return Ok((true, None));
    }
    if !is_terminal() {
        return Ok((true, Some("standard output is not a terminal")));
    }
    if let Some((flag, _)) = batch_only.iter().find(|(_, given)| *given) {
        anyhow::bail!("{flag} is for --batch output: add --batch (the screen has no use for it)");
    }
    match std::env::var("TERM") {
        Ok(t) if !t.is_empty() && t != "dumb" => Ok((false, None)),
        _ => Ok((true, Some("the terminal cannot show the screen (TERM is unset or dumb)"))),
    }
}

/// NO_COLOR (no-color.org): set and not empty turns colours off.
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show);
}

/// Takes the terminal: raw mode, the alternate screen, no cursor.
fn take_terminal() -> Result<()> {
    terminal::enable_raw_mode().context("putting the terminal in raw mode")?;
    if let Err(e) = execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide) {
        restore();
        return Err(e).context("opening the screen");
    }
    Ok(())
}

/// The status of a replay of `file`.
pub fn replay_status(header: &RecordHeader, file: &Path, speed: Option<f64>, interval: Duration) -> Status {
    let speed = match speed {
        None => Speed::Max,
        Some(x) if x >= 100.0 => Speed::X100,
        Some(x) if x >= 10.0 => Speed::X10,
        Some(_) => Speed::X1,
    };
    let mode = Mode::Replay { file: file.display().to_string(), speed, end_ns: None };
    let mut s = Status::new(header.target.clone(), mode, header.start_ns, header.nr_cpus);
    s.interval = interval;
    s
}

pub fn live_status(header: &RecordHeader, interval: Duration) -> Status {
    let mut s = Status::new(header.target.clone(), Mode::Live, header.start_ns, header.nr_cpus);
    s.interval = interval;
    s
}

pub struct TuiSink {
    /// Events into frames (the model, findings, capacity).
    analyzer: Analyzer,
    app: App,
    term: Terminal<CrosstermBackend<Stdout>>,
    last_draw: Option<Instant>,
    /// Keys since the last draw changed what is shown (`keys_done` draws).
    dirty: bool,
    /// ... and the thread in focus, so the figures must be computed again.
    stale: bool,
}

impl TuiSink {
    /// Takes over the terminal (alternate screen, raw mode) and draws the
    /// first screen from the threads that exist at the start.
    pub fn open(header: &RecordHeader, status: Status, initial: &[Event]) -> Result<TuiSink> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        take_terminal()?;
        let term = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e).context("opening the screen");
            }
        };
        let mut analyzer = Analyzer::new(header, findings::Thresholds::default()).retain_exited(RETAIN_EXITED_NS);
        analyzer.apply(initial);
        let mut sink =
            TuiSink { analyzer, app: App::new(status, color()), term, last_draw: None, dirty: false, stale: false };
        let size = sink.term.size().context("reading the terminal's size")?;
        sink.app.update(super::app::Msg::Resize(size.width, size.height));
        sink.app.show(sink.analyzer.frame(None).live);
        sink.draw(true)?;
        Ok(sink)
    }

    /// Judges findings by these thresholds.
    pub fn thresholds(mut self, t: findings::Thresholds) -> Self {
        self.analyzer.set_thresholds(t);
        self.refresh();
        self
    }

    fn draw(&mut self, force: bool) -> Result<()> {
        if !force && self.last_draw.is_some_and(|t| t.elapsed() < MIN_FRAME) {
            return Ok(());
        }
        let app = &self.app;
        self.term.draw(|f| view::draw(f, app)).context("drawing the screen")?;
        self.last_draw = Some(Instant::now());
        self.app.set_page_rows(view::table_capacity(&self.app));
        Ok(())
    }

    fn refresh(&mut self) {
        let frame = self.analyzer.frame(self.app.focus());
        let live = frame.live;
        self.app.status.extra = extras(live.cgroup.as_ref().or(self.analyzer.header().cgroup.as_ref()), &live);
        let p = &live.interval.process;
        let by = &p.wait_by_cause_ns;
        if by.total() > 0 {
            let pct = |x: u64| 100.0 * x as f64 / by.total() as f64;
            let mut waits = format!(
                "{:.0}% (waits: own threads {:.0}%, other processes {:.0}%, kernel {:.0}%, throttled {:.0}%",
                p.cpu_pressure_pct,
                pct(by.own_threads),
                pct(by.other_processes),
                pct(by.kernel),
                pct(by.throttled)
            );
            if let Some(o) = live.other_processes.first() {
                waits += &format!("; most behind {} {}", crate::fmt::clean(&o.comm), o.pid);
            }
            waits.push(')');
            self.app.status.extra.push(("CPU pressure".to_string(), waits));
        }
        if let Some(s) = &live.go_sched {
            let sched = format!(
                "{} goroutines, {} waiting for a P ({:.1} on average), {} idle Ps, {} spinning",
                s.goroutines, s.queued, s.queued_mean, s.idle_ps, s.spinning_threads
            );
            self.app.status.extra.insert(0, ("Go".to_string(), sched));
        }
        if let Some(g) = live.gomaxprocs {
            self.app.status.extra.insert(0, ("GOMAXPROCS".to_string(), g.to_string()));
        }
        self.app.status.findings = frame.findings;
        self.app.status.capacity = frame.capacity;
        self.app.show(live);
    }
}

/// The header's figures about the CPU quota and throttling.
fn extras(cgroup: Option<&crate::cgroup::CpuGroup>, live: &crate::model::live::LiveSnapshot) -> Vec<(String, String)> {
    let Some(g) = cgroup else { return Vec::new() };
    let mut out = vec![("quota".to_string(), g.describe_quota())];
    if g.quota_cpus.is_some() {
        let r = &live.interval.rates;
        if let (Some(pct), Some(ms)) = (r.throttled_periods_pct, r.throttled_ms_per_sec) {
            out.push(("throttled".to_string(), format!("{pct:.0}% of periods, {ms:.0}ms/s")));
        }
    }
    out
}

impl Drop for TuiSink {
    fn drop(&mut self) {
        restore();
    }
}

impl Sink for TuiSink {
    fn events(&mut self, events: &[Event]) -> Result<()> {
        self.analyzer.apply(events);
        Ok(())
    }

    fn tick(&mut self, now_ns: u64, stats: &Stats) -> Result<Flow> {
        self.analyzer.tick(now_ns);
        let s = &mut self.app.status;
        s.decode_errors = stats.decode_errors;
        s.self_cpu_pct = stats.self_cpu_pct;
        s.bpf = stats.bpf.map(|b| BpfUsage { ns_per_sec: b.ns_per_sec, runs_per_sec: b.runs_per_sec });
        self.refresh();
        self.draw(false)?;
        Ok(Flow::Continue)
    }

    fn retarget(&mut self, target: &Target) {
        self.app.status.target = target.clone();
    }

    fn go_changed(&mut self, go: Option<&crate::goruntime::GoInfo>) {
        self.analyzer.set_go(go);
    }

    fn suspend(&mut self) -> Result<()> {
        restore();
        Ok(())
    }

    fn resume(&mut self) -> Result<()> {
        take_terminal()?;
        execute!(std::io::stdout(), terminal::Clear(terminal::ClearType::All)).context("drawing the screen")?;
        // The screen is blank, ratatui's last frame is not: a blank frame
        // first, so that the next draws every cell (Terminal::clear would
        // ask the terminal for the cursor, a read the key reader owns).
        self.term.draw(|f| f.render_widget(ratatui::widgets::Clear, f.area())).context("drawing the screen")?;
        self.draw(true)
    }

    fn keys_done(&mut self) -> Result<()> {
        if std::mem::take(&mut self.stale) {
            self.refresh();
        }
        if std::mem::take(&mut self.dirty) {
            self.draw(true)?;
        }
        Ok(())
    }

    fn ended(&mut self, end: End, end_ns: u64, stats: &Stats) -> Result<Flow> {
        if end.by_user() {
            return Ok(Flow::Stop);
        }
        if end_ns > self.analyzer.last_tick() {
            self.analyzer.tick(end_ns);
        }
        self.app.status.ended = Some(end.to_string());
        self.app.status.decode_errors = stats.decode_errors;
        if let Mode::Replay { end_ns: e, .. } = &mut self.app.status.mode {
            *e = Some(end_ns);
        }
        self.refresh();
        self.draw(true)?;
        Ok(Flow::Continue)
    }

    fn key(&mut self, event: TermEvent, now_ns: u64) -> Result<Control> {
        let msg = match event {
            TermEvent::Key(k) => keymap::msg(k, self.app.editing_filter()),
            TermEvent::Resize(w, h) => Some(super::app::Msg::Resize(w, h)),
            _ => None,
        };
        let Some(msg) = msg else { return Ok(Control::None) };
        let focus = self.app.focus();
        let resized = matches!(msg, super::app::Msg::Resize(..));
        let action = self.app.update(msg);
        if resized {
            // Paging keys in the same burst use the new size.
            self.app.set_page_rows(view::table_capacity(&self.app));
        }
        let control = match action {
            Action::Quit => return Ok(Control::Quit),
            Action::Reset => {
                self.analyzer.reset(now_ns);
                self.refresh();
                Control::None
            }
            Action::SetInterval(d) => Control::SetInterval(d),
            Action::Step => Control::Step,
            Action::SetSpeed(s) => Control::Speed(s.factor().map(f64::from)),
            Action::ToggleBpfStats => {
                let on = !self.app.status.bpf_stats_on;
                self.app.status.bpf_stats_on = on;
                self.app.status.bpf = None;
                Control::BpfStats(on)
            }
            Action::Pause(p) => Control::Pause(p),
            Action::Redraw | Action::None => {
                // Computed once for a burst of keys, in `keys_done`.
                self.stale |= self.app.focus() != focus;
                Control::None
            }
        };
        self.dirty = true;
        Ok(control)
    }
}
