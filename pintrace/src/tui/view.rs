//! Draws a frame from `&App`: a pure function of the app's (possibly
//! frozen) snapshot and its view state. No locks, no I/O, no model.
//!
//! The main screen, top to bottom: a header that flows its figures over as
//! many lines as the width needs, the thread table and its legend, history
//! sparklines, the event log and a footer of keys. Charts and log give way
//! to the table on short terminals; below `MIN_WIDTH` x `MIN_HEIGHT` only a
//! "too small" notice is drawn (80 columns fit the table's eleven columns
//! with a readable name; 20 rows fit the header, a page of threads and the
//! help screen).
use ratatui::{
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Cell, Paragraph, Row, Sparkline, Table, TableState},
    Frame,
};

use super::app::{App, Mode, Screen, SortColumn};
use crate::findings::Severity;
use crate::{
    fmt::{clean, count, ns},
    model::live::{HistoryPoint, LiveSnapshot, LogKind, RunState, ThreadDetail, ThreadRow},
};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 20;

const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().add_modifier(Modifier::DIM);
const SEP: &str = " │ ";

/// The table's columns, left to right.
const COLUMNS: [SortColumn; 12] = [
    SortColumn::Tid,
    SortColumn::Name,
    SortColumn::State,
    SortColumn::Go,
    SortColumn::Cpu,
    SortColumn::LastCpu,
    SortColumn::Migrations,
    SortColumn::Involuntary,
    SortColumn::Voluntary,
    SortColumn::Sigurg,
    SortColumn::RunqP99,
    SortColumn::Age,
];

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = vec![
            Line::from(format!("terminal too small: {}x{}", area.width, area.height)),
            Line::from(format!("pintrace needs {MIN_WIDTH}x{MIN_HEIGHT}")),
        ];
        let y = area.y + area.height.saturating_sub(2) / 2;
        let at = Rect { y, height: area.height.min(2), ..area };
        frame.render_widget(Paragraph::new(msg).centered(), at);
        return;
    }
    match app.screen() {
        Screen::Main => draw_main(frame, app, area),
        Screen::Detail => detail::draw(frame, app, area),
        Screen::Help => help::draw(frame, app, area),
    }
}

/// A foreground colour, or plain when colours are off.
fn fg(app: &App, c: Color) -> Style {
    if app.color {
        Style::new().fg(c)
    } else {
        Style::new()
    }
}

/// Red and bold when `n` is not zero: something the user must not miss.
fn alarm(app: &App, n: u64) -> Style {
    if n > 0 {
        fg(app, Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    }
}

struct MainAreas {
    header: Rect,
    table: Rect,
    charts: Rect,
    log: Rect,
    footer: Rect,
}

fn main_areas(app: &App, area: Rect) -> MainAreas {
    let head = header::lines(app, area.width, true).len() as u16;
    let rest = area.height.saturating_sub(head + 1);
    let (charts, log) = match rest {
        30.. => (11, 8),
        20.. => (6, 4),
        14.. => (6, 0),
        _ => (0, 0),
    };
    let [header, table, charts, log, footer] = Layout::vertical([
        Constraint::Length(head),
        Constraint::Min(0),
        Constraint::Length(charts),
        Constraint::Length(log),
        Constraint::Length(1),
    ])
    .areas(area);
    MainAreas { header, table, charts, log, footer }
}

/// How many thread rows the main screen shows at the app's terminal size
/// (0 before the first `Resize`).
pub fn table_capacity(app: &App) -> usize {
    let (w, h) = app.size();
    let a = main_areas(app, Rect::new(0, 0, w, h));
    // Title, column headers and legend.
    usize::from(a.table.height.saturating_sub(3))
}

fn draw_main(frame: &mut Frame, app: &App, area: Rect) {
    let a = main_areas(app, area);
    frame.render_widget(Paragraph::new(header::lines(app, area.width, true)), a.header);
    draw_table(frame, app, a.table);
    if let Some(snap) = app.snapshot() {
        draw_charts(frame, app, snap, a.charts);
        draw_log(frame, app, snap, a.log);
    }
    frame.render_widget(Paragraph::new(footer(app)), a.footer);
}

fn section(title: &str, rest: String) -> Line<'static> {
    Line::from(vec![Span::styled(title.to_string(), BOLD), Span::styled(rest, DIM)])
}

fn draw_table(frame: &mut Frame, app: &App, area: Rect) {
    let rows = app.rows();
    let total = app.snapshot().map_or(0, |s| s.threads.len());
    let (col, _) = app.sort();
    let arrow = if app.sort_descending() { '▼' } else { '▲' };
    let [title, body, legend] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    let mut info = format!(": {} of {}, sorted by {} {arrow}", rows.len(), total, col.label());
    if app.editing_filter() || !app.filter().is_empty() {
        let cursor = if app.editing_filter() { "▏" } else { "" };
        info += &format!(", filter \"{}{cursor}\"", clean(app.filter()));
    }
    frame.render_widget(section("threads", info), title);

    let right = |c: SortColumn| !matches!(c, SortColumn::Tid | SortColumn::Name | SortColumn::State);
    let header = Row::new(COLUMNS.map(|c| {
        let label = if c == col { format!("{}{arrow}", c.label()) } else { c.label().to_string() };
        let line = if right(c) { Line::from(label).right_aligned() } else { Line::from(label) };
        Cell::from(line).style(if c == col { BOLD.add_modifier(Modifier::UNDERLINED) } else { BOLD })
    }));
    // Wide enough for the longest name and its marks, within reason.
    let name = rows.iter().map(|t| clean(&t.comm).chars().count() + role_tag(t).chars().count()).max().unwrap_or(0);
    let name = (name as u16 + 2).clamp(10, 34);
    let widths = COLUMNS.map(|c| {
        let value = match c {
            SortColumn::Name => return Constraint::Max(name),
            SortColumn::Tid => 7,
            SortColumn::State => 1,
            SortColumn::Go => 4,
            SortColumn::LastCpu => 3,
            SortColumn::RunqP99 => 6,
            _ => 5,
        };
        Constraint::Length(value.max(c.label().len() as u16 + u16::from(c == col)))
    });
    let now = app.snapshot().map_or(0, |s| s.now_ns);
    let lines = rows.iter().map(|t| {
        let cells = COLUMNS.map(|c| {
            let text = cell_text(app, t, c, now);
            if right(c) {
                Cell::from(Line::from(text).right_aligned())
            } else {
                Cell::from(text)
            }
        });
        Row::new(cells).style(row_style(app, t))
    });
    let selected = rows.iter().position(|t| Some(t.tid) == app.selected());
    let table = Table::new(lines, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD));
    let mut state = TableState::new().with_offset(app.offset()).with_selected(selected);
    frame.render_stateful_widget(table, body, &mut state);

    let parts = [
        "+ new  † exited  ~ short-lived (<1s)".to_string(),
        "R running W waiting S sleeping X exited".to_string(),
        "GO: run goroutine, sys syscall, cgo, idle, spin looking for work, lock waits for its locked goroutine, lkwp its locked goroutine waits for a P".to_string(),
        format!("rates per second over the last {}", ns(app.status.interval.as_nanos() as u64)),
    ];
    let mut text = String::new();
    for p in parts {
        if text.is_empty() {
            text = p;
        } else if text.chars().count() + SEP.chars().count() + p.chars().count() <= usize::from(area.width) {
            text = format!("{text}{SEP}{p}");
        }
    }
    frame.render_widget(Line::styled(text, DIM), legend);
}

/// A Go thread's state in four letters (see the legend), "-" when not a Go M.
fn go_short(s: Option<crate::goruntime::GoState>) -> &'static str {
    use crate::goruntime::GoState;
    match s {
        Some(GoState::Running) => "run",
        Some(GoState::Syscall) => "sys",
        Some(GoState::Cgo) => "cgo",
        Some(GoState::Idle) => "idle",
        Some(GoState::Spinning) => "spin",
        Some(GoState::LockedIdle) => "lock",
        Some(GoState::LockedRunnable) => "lkwp",
        Some(GoState::Unknown) => "?",
        None => "-",
    }
}

fn row_style(app: &App, t: &ThreadRow) -> Style {
    if t.died_ns.is_some() {
        DIM
    } else if t.new {
        fg(app, Color::Green)
    } else {
        Style::new()
    }
}

fn cell_text(app: &App, t: &ThreadRow, c: SortColumn, now: u64) -> String {
    match c {
        SortColumn::Tid => t.tid.to_string(),
        SortColumn::Name => {
            let first = if t.died_ns.is_some() {
                '†'
            } else if t.new {
                '+'
            } else {
                ' '
            };
            let second = if t.short_lived { '~' } else { ' ' };
            format!("{first}{second}{}{}", clean(&t.comm), role_tag(t))
        }
        SortColumn::State => t.state.letter().to_string(),
        SortColumn::Go => go_short(t.go_state).to_string(),
        SortColumn::Cpu => format!("{:.1}", t.cpu_pct),
        SortColumn::LastCpu => t.last_cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
        SortColumn::Migrations => rate(t.migrations_per_sec),
        SortColumn::Involuntary => rate(t.involuntary_switches_per_sec),
        SortColumn::Voluntary => rate(t.voluntary_switches_per_sec),
        SortColumn::Sigurg => rate(t.sigurg_received_per_sec),
        SortColumn::RunqP99 if t.runq_latency_ns.count == 0 => "-".to_string(),
        SortColumn::RunqP99 => ns(t.runq_latency_ns.p99),
        SortColumn::Age => match (t.born_ns, t.died_ns) {
            (Some(b), Some(d)) => short(d.saturating_sub(b)),
            (Some(b), None) => short(now.saturating_sub(b)),
            // There before the trace began: at least as old as the trace (was).
            (None, end) => format!(">{}", short(end.unwrap_or(now).saturating_sub(app.status.start_ns))),
        },
    }
}

fn role_tag(t: &ThreadRow) -> String {
    crate::fmt::role_tag(t.role, t.pinned)
}

/// A history chart: its name, the value of a point (rates in tenths), and how to print one.
struct Series {
    name: &'static str,
    get: fn(&HistoryPoint) -> u64,
    show: fn(u64) -> String,
    color: Color,
}

fn tenths(v: f64) -> u64 {
    (v * 10.0).round().max(0.0) as u64
}

fn per_sec_tenths(v: u64) -> String {
    rate(v as f64 / 10.0)
}

const SERIES: [Series; 7] = [
    Series { name: "threads", get: |h| h.threads, show: count, color: Color::Cyan },
    Series { name: "created/s", get: |h| tenths(h.created_per_sec), show: per_sec_tenths, color: Color::Green },
    Series { name: "migr/s", get: |h| tenths(h.migrations_per_sec), show: per_sec_tenths, color: Color::Blue },
    Series { name: "SIGURG/s", get: |h| tenths(h.sigurg_per_sec), show: per_sec_tenths, color: Color::Yellow },
    Series { name: "runq p99", get: |h| h.runq_p99_ns, show: ns, color: Color::Red },
    // Goroutines waiting for a P in the Go scheduler (mean of the interval's samples).
    Series { name: "Go queue", get: |h| tenths(h.go_queued_mean), show: plain_tenths, color: Color::LightBlue },
    Series { name: "throttled", get: |h| tenths(h.throttled_pct), show: pct_tenths, color: Color::Magenta },
];

fn plain_tenths(v: u64) -> String {
    format!("{:.1}", v as f64 / 10.0)
}

fn pct_tenths(v: u64) -> String {
    format!("{:.0}%", v as f64 / 10.0)
}

fn draw_charts(frame: &mut Frame, app: &App, snap: &LiveSnapshot, area: Rect) {
    if area.height < 2 {
        return;
    }
    const LABEL: u16 = 32;
    let width = usize::from(area.width.saturating_sub(LABEL));
    let shown = &snap.history[snap.history.len().saturating_sub(width)..];
    let info = format!(", last {} points: now and max", shown.len());
    frame.render_widget(section("history", info), Rect { height: 1, ..area });
    let per = ((area.height - 1) / SERIES.len() as u16).max(1);
    for (i, s) in SERIES.iter().enumerate() {
        let y = area.y + 1 + i as u16 * per;
        if y + per > area.y + area.height {
            break;
        }
        let data: Vec<u64> = shown.iter().map(s.get).collect();
        let (cur, max) = (data.last().copied().unwrap_or(0), data.iter().copied().max().unwrap_or(0));
        let label = format!("{:<10}{:>8}  max {:>8}", s.name, (s.show)(cur), (s.show)(max));
        frame.render_widget(Line::from(label), Rect::new(area.x, y, LABEL, 1));
        let spark = Sparkline::default().data(data).max(max.max(1)).style(fg(app, s.color));
        frame.render_widget(spark, Rect::new(area.x + LABEL, y, area.width.saturating_sub(LABEL), per));
    }
}

fn draw_log(frame: &mut Frame, app: &App, snap: &LiveSnapshot, area: Rect) {
    if area.height < 2 {
        return;
    }
    frame.render_widget(section("events", ", newest last".to_string()), Rect { height: 1, ..area });
    let n = usize::from(area.height - 1);
    let lines: Vec<Line> = snap.log[snap.log.len().saturating_sub(n)..]
        .iter()
        .map(|e| {
            let style = match e.kind {
                LogKind::Lost { .. } => alarm(app, 1),
                LogKind::SigurgBurst { .. }
                | LogKind::Churn { .. }
                | LogKind::Throttled { .. }
                | LogKind::CpuLimit { .. } => fg(app, Color::Yellow),
                LogKind::Born { .. } => fg(app, Color::Green),
                LogKind::Exited { .. } => DIM,
                LogKind::Exec { .. }
                | LogKind::ChildProcesses { .. }
                | LogKind::GoMaxProcs { .. }
                | LogKind::Pinned { .. }
                | LogKind::Unpinned { .. }
                | LogKind::PinChurn { .. } => Style::new(),
            };
            let at = format!("{:>8}  ", rel(e.ts_ns.saturating_sub(app.status.start_ns)));
            Line::from(vec![Span::styled(at, DIM), Span::styled(e.kind.to_string(), style)])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), Rect { y: area.y + 1, height: area.height - 1, ..area });
}

fn footer(app: &App) -> Line<'static> {
    if app.editing_filter() {
        let text = format!("filter: {}▏", clean(app.filter()));
        return Line::from(vec![Span::styled(text, BOLD), Span::raw("   Enter keep · Esc clear")]);
    }
    let mut keys: Vec<(&str, &str)> = match app.screen() {
        Screen::Main => vec![
            ("q", "quit"),
            ("?", "help"),
            ("p", "pause"),
            ("↑↓", "select"),
            ("⏎", "detail"),
            ("s/S", "sort"),
            ("/", "filter"),
            ("r", "reset"),
            ("+/-", "refresh"),
        ],
        Screen::Detail => vec![("Esc", "back"), ("↑↓", "other thread"), ("p", "pause"), ("?", "help"), ("q", "quit")],
        Screen::Help => vec![("Esc ?", "back"), ("q", "quit")],
    };
    if app.status.replay() && app.screen() != Screen::Help {
        keys.extend([(".", "step"), ("</>", "speed")]);
    }
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(k.to_string(), BOLD.add_modifier(Modifier::REVERSED)));
        spans.push(Span::raw(format!(" {what} ")));
    }
    Line::from(spans)
}

/// A per-second rate in at most five characters.
fn rate(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v < 10.0 {
        format!("{v:.1}")
    } else if v < 1e3 {
        format!("{v:.0}")
    } else if v < 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v < 1e6 {
        format!("{:.0}k", v / 1e3)
    } else if v < 1e7 {
        format!("{:.1}M", v / 1e6)
    } else {
        format!("{:.0}M", v / 1e6)
    }
}

/// A duration in hours, minutes and seconds: "1h02m03s", "4m05s", "12s".
fn hms(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
    }
}

/// A time since the start of the trace: "+12.3s".
fn rel(ns: u64) -> String {
    if ns < 1_000_000_000_000 {
        format!("+{:.1}s", ns as f64 / 1e9)
    } else {
        format!("+{}", hms(ns))
    }
}

/// An age in at most five characters: "850ms", "12s", "5m", "3h".
fn short(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0 => format!("{}ms", ns / 1_000_000),
        1..100 => format!("{s}s"),
        100..6000 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// A horizontal bar of `width` cells for `v` out of `max`, in eighths of a
/// cell; a non-zero value shows at least a sliver.
fn bar(v: u64, max: u64, width: usize) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = if max == 0 { 0 } else { (u128::from(v) * width as u128 * 8 / u128::from(max)) as usize };
    let eighths = if v > 0 { eighths.max(1) } else { eighths };
    let mut s = "█".repeat(eighths / 8);
    s.push_str(PARTS[eighths % 8]);
    let used = eighths / 8 + usize::from(eighths % 8 > 0);
    s.push_str(&" ".repeat(width.saturating_sub(used)));
    s
}

mod header {
    //! The header: flowed "chips" of figures, the banner when tracing ended.
    use super::*;

    type Chip = Vec<Span<'static>>;

    fn bold(s: impl Into<String>) -> Span<'static> {
        Span::styled(s.into(), BOLD)
    }

    fn plain(s: impl Into<String>) -> Span<'static> {
        Span::raw(s.into())
    }

    /// Chips laid out left to right, wrapping to the next line when full.
    fn flow(chips: Vec<Chip>, width: u16) -> Vec<Line<'static>> {
        let width = usize::from(width);
        let (mut lines, mut cur, mut w) = (Vec::new(), Vec::new(), 0);
        for chip in chips {
            let cw: usize = chip.iter().map(Span::width).sum();
            if w > 0 && w + SEP.len() + cw > width {
                lines.push(Line::from(std::mem::take(&mut cur)));
                w = 0;
            }
            if w > 0 {
                cur.push(Span::styled(SEP, DIM));
                w += SEP.chars().count();
            }
            w += cw;
            cur.extend(chip);
        }
        if !cur.is_empty() {
            lines.push(Line::from(cur));
        }
        lines
    }

    /// The header; only its title (and the end-of-tracing banner) when not `full`.
    pub(super) fn lines(app: &App, width: u16, full: bool) -> Vec<Line<'static>> {
        let st = &app.status;
        let mut lines = Vec::new();
        if let Some(why) = &st.ended {
            let text = format!(" ■ TRACING ENDED: {} — final numbers below; q quits ", clean(why));
            let style = if app.color {
                Style::new().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                BOLD.add_modifier(Modifier::REVERSED)
            };
            lines.push(Line::styled(text, style));
        }
        let now = app.snapshot().map_or(st.start_ns, |s| s.now_ns);
        let mut title: Vec<Chip> = vec![
            vec![bold("pintrace")],
            vec![bold(clean(&st.target.comm).into_owned()), plain(format!(" (pid {})", st.target.pid_label()))],
            vec![plain(format!("up {}", hms(now.saturating_sub(st.start_ns))))],
        ];
        title.push(match &st.mode {
            Mode::Live => vec![plain(format!("live, refresh {}", ns(st.interval.as_nanos() as u64)))],
            Mode::Replay { file, speed, end_ns } => {
                let mut at = format!("replay {} at {speed}, {}", clean(file), rel(now.saturating_sub(st.start_ns)));
                if let Some(end) = end_ns {
                    at += &format!(" of {}", rel(end.saturating_sub(st.start_ns)));
                }
                vec![plain(at)]
            }
        });
        if let Some(s) = app.snapshot().filter(|s| s.totals_since_ns > st.start_ns) {
            title.push(vec![plain(format!("totals since {}", rel(s.totals_since_ns - st.start_ns)))]);
        }
        if app.paused() {
            let style = BOLD.add_modifier(Modifier::REVERSED).patch(fg(app, Color::Yellow));
            title.push(vec![Span::styled(" PAUSED ", style)]);
        }
        lines.extend(flow(title, width));
        if !full {
            return lines;
        }
        let cmd: String = clean(&st.target.cmdline).into_owned();
        let room = usize::from(width).saturating_sub(5);
        let cmd = if cmd.chars().count() > room {
            cmd.chars().take(room.saturating_sub(1)).chain(['…']).collect()
        } else {
            cmd
        };
        lines.push(Line::from(vec![Span::styled("cmd  ", DIM), plain(cmd)]));
        match app.snapshot() {
            Some(s) => lines.extend(flow(figures(app, s), width)),
            None => lines.push(Line::styled("waiting for the first interval…", DIM)),
        }
        for f in &st.findings {
            let (mark, style) = match f.severity {
                Severity::Critical => ("▲▲", fg(app, Color::Red).add_modifier(Modifier::BOLD)),
                Severity::Warning => ("▲ ", fg(app, Color::Yellow).add_modifier(Modifier::BOLD)),
                Severity::Info => ("· ", Style::new()),
            };
            let text = format!("{mark} {}: {}", f.rule, f.message);
            let room = usize::from(width);
            let text = if text.chars().count() > room {
                text.chars().take(room.saturating_sub(1)).chain(['…']).collect()
            } else {
                text
            };
            lines.push(Line::styled(text, style));
        }
        lines
    }

    fn figures(app: &App, s: &LiveSnapshot) -> Vec<Chip> {
        let (st, p, rt) = (&app.status, &s.totals.process, &s.interval.rates);
        let q = &s.interval.process.runq_latency_ns;
        let mut urg = vec![plain("SIGURG "), bold(rate(rt.sigurg_per_sec)), plain("/s")];
        if s.threads.iter().any(|t| t.role == Some(crate::goruntime::GoRole::Sysmon)) {
            urg.extend([plain(" (sysmon "), bold(rate(rt.sigurg_from_sysmon_per_sec)), plain("/s)")]);
        }
        for (i, x) in s.sigurg_senders.iter().take(2).enumerate() {
            urg.push(plain(if i == 0 { " from " } else { ", " }));
            urg.push(plain(format!("{} {}", x.tid, clean(&x.comm))));
        }
        let runq = if q.count == 0 {
            vec![plain("runq -")]
        } else {
            vec![plain("runq p50 "), bold(ns(q.p50)), plain(" p99 "), bold(ns(q.p99)), plain(" max "), bold(ns(q.max))]
        };
        let lost = s.totals.lost_events;
        let mut chips = vec![
            vec![
                plain("threads "),
                bold(count(p.threads_now)),
                plain(" now · "),
                bold(count(p.threads_peak)),
                plain(" peak · "),
                bold(count(p.threads_at_start)),
                plain(" at start"),
            ],
            vec![
                plain("created "),
                bold(rate(rt.threads_created_per_sec)),
                plain("/s · exited "),
                bold(rate(rt.threads_exited_per_sec)),
                plain("/s"),
            ],
            vec![plain("migrations "), bold(rate(rt.migrations_per_sec)), plain("/s")],
            vec![
                plain("switches invol "),
                bold(rate(rt.involuntary_switches_per_sec)),
                plain("/s · vol "),
                bold(rate(rt.voluntary_switches_per_sec)),
                plain("/s"),
            ],
            urg,
            runq,
            vec![plain("CPU "), bold(format!("{:.2}", rt.cpus_used)), plain(format!(" of {} cores", st.nr_cpus))],
            vec![Span::styled(format!("lost {}", count(lost)), alarm(app, lost))],
            vec![Span::styled(format!("decode errors {}", count(st.decode_errors)), alarm(app, st.decode_errors))],
        ];
        if let Some(c) = &st.capacity {
            let over = c.threads > c.expected_max;
            chips.push(vec![
                plain("capacity "),
                Span::styled(
                    count(c.threads),
                    if over { fg(app, Color::Red).add_modifier(Modifier::BOLD) } else { BOLD },
                ),
                plain(format!(
                    " threads ≤ {} = GOMAXPROCS {} + {} pinned + {}",
                    c.expected_max, c.gomaxprocs, c.pinned, c.baseline
                )),
            ]);
        }
        let ip = &s.interval.process;
        if ip.throttled_switches > 0 {
            chips.push(vec![
                plain("threads throttled "),
                bold(ns(ip.throttled_ns)),
                plain(format!(" in {} waits", count(ip.throttled_switches))),
            ]);
        }
        if let Some(pct) = st.self_cpu_pct {
            chips.push(vec![plain(format!("pintrace {pct:.1}% CPU"))]);
        }
        chips.push(match (st.bpf_stats_on, st.bpf) {
            (true, Some(u)) => {
                vec![plain(format!("BPF {}/s, {} runs/s", ns(u.ns_per_sec as u64), rate(u.runs_per_sec)))]
            }
            (true, None) => vec![plain("BPF stats on")],
            (false, _) => vec![Span::styled("b: BPF stats", DIM)],
        });
        for (k, v) in &st.extra {
            chips.push(vec![plain(format!("{k} ")), bold(v.clone())]);
        }
        chips
    }
}

mod detail {
    //! The detail view of one thread.
    use super::*;

    pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
        let head = header::lines(app, area.width, false);
        let [h, body, foot] =
            Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Min(0), Constraint::Length(1)])
                .areas(area);
        frame.render_widget(Paragraph::new(head), h);
        frame.render_widget(Paragraph::new(footer(app)), foot);
        let snap = app.snapshot();
        let tid = app.focus();
        let row = snap.and_then(|s| s.threads.iter().find(|t| Some(t.tid) == tid));
        let detail = snap.and_then(|s| s.detail.as_ref()).filter(|d| Some(d.totals.tid) == tid);
        let (Some(snap), Some(d)) = (snap, detail) else {
            let tid = tid.map_or_else(|| "-".to_string(), |t| t.to_string());
            let text = match row {
                None => format!("thread {tid} is no longer traced; Esc goes back"),
                Some(_) => format!("the detail of thread {tid} comes with the next refresh"),
            };
            frame.render_widget(Line::from(text), body);
            return;
        };
        let senders = d.signalled_by.len().clamp(1, 5) as u16;
        let bars = d.cpu_time_ns.len().max(runq_groups(&d.runq_histogram, usize::MAX).len()).max(1) as u16;
        let [top, mid, sig, tl, _] = Layout::vertical([
            Constraint::Length(5),
            Constraint::Max(1 + bars),
            Constraint::Length(2 + senders),
            Constraint::Length(5),
            Constraint::Fill(1),
        ])
        .areas(body);
        frame.render_widget(Paragraph::new(summary(app, snap, d)), top);
        let [left, right] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).spacing(2).areas(mid);
        let since = since_label(app, snap);
        frame.render_widget(Paragraph::new(cpu_bars(app, d, &since, left)), left);
        frame.render_widget(Paragraph::new(runq_bars(app, d, &since, right)), right);
        frame.render_widget(Paragraph::new(signallers(d, &since, sig.height)), sig);
        frame.render_widget(Paragraph::new(timeline(app, snap, d, tl.width)), tl);
    }

    fn state_name(s: RunState) -> &'static str {
        match s {
            RunState::Running => "running",
            RunState::Waiting => "waiting for a CPU",
            RunState::Throttled => "throttled (CPU quota used up)",
            RunState::Sleeping => "sleeping",
            RunState::Exited => "exited",
        }
    }

    fn summary(app: &App, snap: &LiveSnapshot, d: &ThreadDetail) -> Vec<Line<'static>> {
        let t = &d.totals;
        let cpu = d.last_cpu.map_or_else(|| "-".to_string(), |c| c.to_string());
        // The totals' birth and death are relative to `totals_since_ns`.
        let since = snap.totals_since_ns.saturating_sub(app.status.start_ns);
        let life = match (t.born_ns, t.died_ns) {
            (Some(b), Some(e)) => format!("born {}, exited {} (lived {})", rel(since + b), rel(since + e), ns(e - b)),
            (Some(b), None) => format!("born {}", rel(since + b)),
            (None, Some(e)) => format!("there at start, exited {}", rel(since + e)),
            (None, None) => "there at start".to_string(),
        };
        let q = &t.runq_latency_ns;
        vec![
            Line::from(vec![
                Span::styled(format!("thread {} {}", t.tid, clean(&t.comm)), BOLD),
                Span::raw(format!("  {}, last on CPU {cpu}, {life}", state_name(d.state))),
            ]),
            Line::raw(format!(
                "{}: on CPU {}, {} migrations, {} involuntary / {} voluntary switches",
                since_label(app, snap),
                ns(t.on_cpu_ns),
                count(t.migrations),
                count(t.involuntary_switches),
                count(t.voluntary_switches)
            )),
            Line::raw(format!(
                "SIGURG {} received, {} sent; other signals {} received, {} sent",
                count(t.sigurg_received),
                count(t.sigurg_sent),
                count(t.signals_received),
                count(t.signals_sent),
            )),
            Line::raw(format!(
                "run queue: {} waits, p50 {} p99 {} max {} mean {}; throttled (CPU quota) {} in {} waits",
                count(q.count),
                ns(q.p50),
                ns(q.p99),
                ns(q.max),
                ns(q.mean),
                ns(t.throttled_ns),
                count(t.throttled_switches)
            )),
            Line::raw(go_line(t)),
        ]
        .into_iter()
        .map(|l| if d.state == RunState::Exited { l.patch_style(DIM) } else { l })
        .collect()
    }

    /// What the Go runtime says of the thread.
    fn go_line(t: &crate::model::ThreadStats) -> String {
        let Some(role) = t.role else { return "Go: not an M of a Go runtime (or not read)".to_string() };
        let mut s = format!("Go: {} thread", role.label());
        if let Some(state) = t.go_state {
            s += &format!(", {}", state.label().replace('_', " "));
            if let Some(g) = &t.goroutine {
                s += &format!(" goroutine {} ({})", g.id, g.function.as_deref().map_or("?", clean_fn));
            }
        }
        if t.pinned {
            s += &format!(
                ", locked (LockOSThread) to a goroutine started by {}",
                t.pinned_by.as_deref().map_or("?", clean_fn)
            );
        }
        if t.lock_calls > 0 {
            s += &format!(
                "; {} LockOSThread calls, last from {}",
                count(t.lock_calls),
                t.last_lock_caller.as_deref().map_or("?", clean_fn)
            );
        }
        if t.sigurg_received > 0 {
            s += &format!("; SIGURG from sysmon {} of {}", count(t.sigurg_from_sysmon), count(t.sigurg_received));
        }
        s
    }

    fn clean_fn(f: &str) -> &str {
        if f.chars().any(char::is_control) {
            "(unprintable)"
        } else {
            f
        }
    }

    /// What the detail's totals count from.
    fn since_label(app: &App, snap: &LiveSnapshot) -> String {
        match snap.totals_since_ns.saturating_sub(app.status.start_ns) {
            0 => "since start".to_string(),
            t => format!("since the reset at {}", rel(t)),
        }
    }

    fn cpu_bars(app: &App, d: &ThreadDetail, since: &str, area: Rect) -> Vec<Line<'static>> {
        let mut lines = vec![section("on-CPU time by CPU", format!(", {since}"))];
        let rows = usize::from(area.height.saturating_sub(1));
        let mut cpus = d.cpu_time_ns.clone();
        if cpus.len() > rows {
            cpus.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            cpus.truncate(rows);
            cpus.sort_unstable();
        }
        let total: u64 = d.cpu_time_ns.iter().map(|c| c.1).sum();
        let max = cpus.iter().map(|c| c.1).max().unwrap_or(0);
        let width = usize::from(area.width).saturating_sub(20);
        for (cpu, t) in cpus {
            let pct = if total == 0 { 0.0 } else { 100.0 * t as f64 / total as f64 };
            lines.push(Line::from(vec![
                Span::raw(format!("cpu{cpu:<3} ")),
                Span::styled(bar(t, max, width), fg(app, Color::Green)),
                Span::raw(format!(" {:>6} {pct:>3.0}%", ns(t))),
            ]));
        }
        lines
    }

    /// The fine histogram regrouped in 1-2-5 steps from 1 µs to 10 s; the
    /// lowest groups merge when there are more than `rows`.
    pub(super) fn runq_groups(hist: &[(u64, u64)], rows: usize) -> Vec<(u64, u64)> {
        let mut bounds = Vec::new();
        let mut decade = 1_000u64;
        while decade <= 10_000_000_000 {
            bounds.extend([decade, 2 * decade, 5 * decade]);
            decade *= 10;
        }
        bounds.push(u64::MAX);
        let mut groups: Vec<(u64, u64)> = bounds.iter().map(|&b| (b, 0)).collect();
        for &(ub, n) in hist {
            let i = bounds.iter().position(|&b| ub <= b).unwrap_or(bounds.len() - 1);
            groups[i].1 += n;
        }
        let first = groups.iter().position(|g| g.1 > 0).unwrap_or(0);
        let last = groups.iter().rposition(|g| g.1 > 0).unwrap_or(0);
        let mut groups = groups[first..=last].to_vec();
        while groups.len() > rows.max(1) {
            let low = groups.remove(0);
            groups[0].1 += low.1;
        }
        groups
    }

    fn runq_bars(app: &App, d: &ThreadDetail, since: &str, area: Rect) -> Vec<Line<'static>> {
        let mut lines = vec![section("run-queue waits", format!(", {since}"))];
        let groups = runq_groups(&d.runq_histogram, usize::from(area.height.saturating_sub(1)));
        if d.runq_histogram.is_empty() {
            lines.push(Line::styled("no waits for a CPU", DIM));
            return lines;
        }
        let max = groups.iter().map(|g| g.1).max().unwrap_or(0);
        let width = usize::from(area.width).saturating_sub(18);
        for (ub, n) in groups {
            let label = if ub == u64::MAX { ">10s".to_string() } else { format!("≤{}", ns(ub)) };
            lines.push(Line::from(vec![
                Span::raw(format!("{label:<7} ")),
                Span::styled(bar(n, max, width), fg(app, Color::Yellow)),
                Span::raw(format!(" {:>8}", count(n))),
            ]));
        }
        lines
    }

    fn signallers(d: &ThreadDetail, since: &str, height: u16) -> Vec<Line<'static>> {
        let mut lines = vec![Line::raw(""), section("signalled by", format!(", {since}"))];
        if d.signalled_by.is_empty() {
            lines.push(Line::styled("no signals", DIM));
        }
        for (tid, comm, urg, other) in d.signalled_by.iter().take(usize::from(height.saturating_sub(2))) {
            lines.push(Line::raw(format!(
                "{tid:>8}  {:<18} SIGURG {:>8}  other {:>6}",
                clean(comm),
                count(*urg),
                count(*other)
            )));
        }
        lines
    }

    /// The thread's states over the last `window`, one cell per slot: the
    /// state it spent most of that slot in (blank: not known). The window
    /// is the shortest of 10 ms, 20 ms, 50 ms, ... 10 s that covers what
    /// the timeline holds.
    pub(super) fn strip(tl: &[(u64, RunState)], end: u64, width: usize) -> (u64, String) {
        let span = tl.first().map_or(0, |f| end.saturating_sub(f.0));
        let window = [10u64, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]
            .map(|ms| ms * 1_000_000)
            .into_iter()
            .find(|&w| w >= span)
            .unwrap_or(10_000_000_000);
        let start = end.saturating_sub(window);
        let cells = (0..width as u64)
            .map(|i| {
                let (a, b) = (start + window * i / width as u64, start + window * (i + 1) / width as u64);
                let mut time = [0u64; 4];
                for (k, &(ts, st)) in tl.iter().enumerate() {
                    let until = tl.get(k + 1).map_or(end, |n| n.0);
                    let overlap = until.min(b).saturating_sub(ts.max(a));
                    let i = match st {
                        RunState::Running => 0,
                        RunState::Waiting | RunState::Throttled => 1,
                        RunState::Sleeping => 2,
                        RunState::Exited => 3,
                    };
                    time[i] += overlap;
                }
                match time.iter().enumerate().max_by_key(|&(i, &t)| (t, std::cmp::Reverse(i))) {
                    Some((_, 0)) | None => ' ',
                    Some((0, _)) => '█',
                    Some((1, _)) => '▒',
                    Some((2, _)) => '·',
                    Some(_) => ' ',
                }
            })
            .collect();
        (window, cells)
    }

    fn timeline(app: &App, snap: &LiveSnapshot, d: &ThreadDetail, width: u16) -> Vec<Line<'static>> {
        let end = d.timeline.last().map_or(snap.now_ns, |l| l.0.max(snap.now_ns));
        let w = usize::from(width);
        let (window, cells) = strip(&d.timeline, end, w);
        let spans = cells
            .chars()
            .map(|c| {
                let style = match c {
                    '█' => fg(app, Color::Green),
                    '▒' => fg(app, Color::Red),
                    _ => DIM,
                };
                Span::styled(c.to_string(), style)
            })
            .collect::<Vec<_>>();
        let (left, mid) = (format!("-{}", ns(window)), format!("-{}", ns(window / 2)));
        let mut scale: Vec<char> = format!("{left:<w$}").chars().collect();
        let m = (w / 2).saturating_sub(mid.len() / 2);
        for (i, c) in mid.chars().enumerate() {
            if let Some(slot) = scale.get_mut(m + i) {
                *slot = c;
            }
        }
        let scale: String = scale.into_iter().take(w.saturating_sub(3)).chain("now".chars()).collect();
        vec![
            Line::raw(""),
            section("timeline", format!(", the last {}", ns(window))),
            Line::from(spans),
            Line::styled(scale, DIM),
            Line::styled("█ on CPU   ▒ waiting for a CPU   · sleeping   blank: not known", DIM),
        ]
    }
}

mod help {
    //! The help screen: keys, marks, states and columns.
    use super::*;

    const KEYS: [(&str, &str); 17] = [
        ("q Ctrl-C", "quit"),
        ("p space", "pause (tracing goes on)"),
        ("↑↓ k j", "select a thread"),
        ("PgUp PgDn", "a page up / down"),
        ("Home g", "first thread"),
        ("End G", "last thread"),
        ("Enter", "detail of the thread"),
        ("Esc", "back; clear the filter"),
        ("s → ←", "next / previous sort column"),
        ("S", "reverse the sort order"),
        ("/", "filter by name or TID"),
        ("r", "reset the totals"),
        ("+ = -", "refresh faster / slower"),
        ("b", "BPF run-time stats on/off"),
        ("? F1", "this help"),
        (".", "replay: one step forward"),
        ("> <", "replay: faster / slower"),
    ];

    const LEGEND: [(&str, &str); 16] = [
        ("+ name", "born in the last interval"),
        ("† name", "exited (dim)"),
        ("~ name", "short-lived: under 1s"),
        ("[sysmon]", "Go role: main sysmon template signal"),
        ("[pinned]", "locked to a goroutine (LockOSThread)"),
        ("R W T", "running, waiting for a CPU, throttled"),
        ("S X", "sleeping, exited"),
        ("GO", "run sys cgo idle spin lock lkwp"),
        ("%CPU CPU", "% of a CPU; last CPU it ran on"),
        ("MIGR/s", "moves between CPUs"),
        ("INVOL/s", "preempted while runnable"),
        ("VOL/s", "switched out to block/sleep"),
        ("URG/s", "SIGURG received: Go preempts"),
        ("RUNQ p99", "wait for a CPU, p99"),
        ("AGE", "since birth; exited: lifetime"),
        ("█ ▒ ·", "on CPU, waiting, sleeping"),
    ];

    fn column(title: &str, rows: &[(&str, &str)], key_width: usize) -> Vec<Line<'static>> {
        let mut lines = vec![Line::styled(title.to_string(), BOLD), Line::raw("")];
        for (k, what) in rows {
            lines.push(Line::from(vec![Span::styled(format!("{k:<key_width$} "), BOLD), Span::raw(what.to_string())]));
        }
        lines
    }

    pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
        let [body, foot] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
        let [left, right] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(body);
        frame.render_widget(Paragraph::new(column("keys", &KEYS, 9)), left);
        frame.render_widget(Paragraph::new(column("marks, states and columns", &LEGEND, 8)), right);
        frame.render_widget(Paragraph::new(footer(app)), foot);
    }
}

#[cfg(test)]
mod tests {
    use ratatui::{backend::TestBackend, buffer::Buffer, Terminal};

    use super::*;
    use crate::{
        model::live::RunState::*,
        tui::app::{fixture::*, BpfUsage, Msg, Speed},
    };

    fn buffer(app: &App, w: u16, h: u16) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        t.draw(|f| draw(f, app)).expect("draw");
        t.backend().buffer().clone()
    }

    fn text(b: &Buffer) -> Vec<String> {
        let a = b.area;
        (a.y..a.bottom()).map(|y| (a.x..a.right()).map(|x| b[(x, y)].symbol()).collect()).collect()
    }

    fn screen(app: &App) -> Vec<String> {
        text(&buffer(app, 120, 40))
    }

    fn line<'a>(lines: &'a [String], needle: &str) -> &'a str {
        let found = lines.iter().find(|l| l.contains(needle));
        found.unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
    }

    /// The words of the table row of `tid`.
    fn row(lines: &[String], tid: u32) -> Vec<&str> {
        let found = lines.iter().find(|l| l.split_whitespace().next() == Some(tid.to_string().as_str()));
        found.unwrap_or_else(|| panic!("no row of {tid} in\n{}", lines.join("\n"))).split_whitespace().collect()
    }

    /// The table's rows (TIDs) from top to bottom, as drawn.
    fn table_tids(lines: &[String]) -> Vec<u32> {
        let head = lines.iter().position(|l| l.contains("TID") && l.contains("NAME")).expect("table header");
        lines[head + 1..].iter().map_while(|l| l.split_whitespace().next().and_then(|w| w.parse().ok())).collect()
    }

    #[test]
    fn header_shows_the_figures() {
        let (mut app, _) = app();
        app.status.decode_errors = 3;
        app.status.self_cpu_pct = Some(1.5);
        app.status.extra = vec![("GOMAXPROCS".into(), "4".into())];
        let s = screen(&app).join("\n");
        for want in [
            "app (pid 100)",
            "up 1s",
            "live, refresh 1s",
            "cmd  /srv/app --listen :8080",
            "threads 6 now · 7 peak · 6 at start",
            "created 1.0/s · exited 1.0/s",
            "migrations 3.0/s",
            "switches invol 1.0/s · vol 3.0/s",
            "SIGURG 5.0/s from 102 sysmon",
            "runq p50 20ms p99 20ms max 20ms",
            "CPU 1.23 of 8 cores",
            "lost 7",
            "decode errors 3",
            "pintrace 1.5% CPU",
            "b: BPF stats",
            "GOMAXPROCS 4",
        ] {
            assert!(s.contains(want), "{want:?} missing from\n{s}");
        }
        assert!(!s.contains("PAUSED"));
        app.status.bpf_stats_on = true;
        app.status.bpf = Some(BpfUsage { ns_per_sec: 2_500_000.0, runs_per_sec: 12_000.0 });
        app.update(Msg::TogglePause);
        let s = screen(&app).join("\n");
        assert!(s.contains("BPF 2.5ms/s, 12k runs/s"), "{s}");
        assert!(s.contains(" PAUSED "));
    }

    #[test]
    fn losses_are_red_only_with_colour_and_no_colour_means_no_colour() {
        let (mut app, _) = app();
        let lost_fg = |app: &App| {
            let b = buffer(app, 120, 40);
            let lines = text(&b);
            let y = lines.iter().position(|l| l.contains("lost 7")).expect("lost shown");
            let x = lines[y].find("lost 7").expect("lost shown");
            let x = lines[y][..x].chars().count() as u16;
            (b[(x, y as u16)].fg, b.content().iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset))
        };
        assert_eq!(lost_fg(&app), (Color::Reset, true));
        app.color = true;
        assert_eq!(lost_fg(&app), (Color::Red, false));
    }

    #[test]
    fn replay_and_the_end_of_tracing_are_announced() {
        let (mut app, _) = app();
        app.status.mode = Mode::Replay { file: "t.ptr".into(), speed: Speed::X10, end_ns: Some(S + 60 * 1_000 * MS) };
        app.status.ended = Some("target exited".into());
        let lines = screen(&app);
        assert!(lines[0].contains("TRACING ENDED: target exited"), "the first line: {}", lines[0]);
        assert!(line(&lines, "replay").contains("replay t.ptr at 10×, +1.0s of +60.0s"));
        assert!(lines[39].contains(". step"), "replay keys in the footer: {}", lines[39]);
    }

    #[test]
    fn table_is_sorted_marked_and_follows_the_selection() {
        let (mut app, _) = app();
        let lines = screen(&app);
        assert_eq!(table_tids(&lines), [101, 100, 103, 102, 104, 105, 106]);
        let head = line(&lines, "NAME");
        for col in ["TID", "S", "GO", "%CPU▼", "CPU", "MIGR/s", "INVOL/s", "VOL/s", "URG/s", "RUNQ p99", "AGE"] {
            assert!(head.contains(col), "{col} in {head}");
        }
        assert_eq!(
            row(&lines, 101),
            ["101", "worker", "S", "-", "63.0", "3", "3.0", "1.0", "1.0", "5.0", "20ms", ">1s"]
        );
        assert_eq!(row(&lines, 104)[..3], ["104", "+", "worker"], "new thread marked");
        assert_eq!(row(&lines, 105)[..4], ["105", "†", "old", "X"], "exited thread marked");
        assert!(line(&lines, "+ new").contains("† exited"), "legend");

        app.update(Msg::Down);
        app.update(Msg::Down);
        app.update(Msg::SortReverse);
        let b = buffer(&app, 120, 40);
        let lines = text(&b);
        assert!(line(&lines, "NAME").contains("%CPU▲"));
        assert_eq!(table_tids(&lines), [102, 104, 105, 106, 100, 103, 101]);
        // The selected row (103) is drawn reversed.
        let y = lines.iter().position(|l| l.trim_start().starts_with("103")).expect("row of 103") as u16;
        assert!(b[(0, y)].modifier.contains(Modifier::REVERSED));
        assert!(!b[(0, y - 1)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn short_lived_threads_are_marked() {
        let (mut app, mut m) = app();
        m.apply(&born(1_200, 108, "blip"));
        m.apply(&exit(1_300, 108, "blip"));
        m.tick(S + 2_000 * MS);
        app.show(m.live(None));
        assert_eq!(row(&screen(&app), 108)[..2], ["108", "†~blip"]);
    }

    #[test]
    fn hostile_names_are_escaped() {
        let (app, _) = app();
        let b = buffer(&app, 120, 40);
        assert_eq!(row(&text(&b), 106)[1], "\\x1b[2Jevil\\n");
        assert!(b.content().iter().all(|c| !c.symbol().chars().any(char::is_control)), "no control characters");
    }

    #[test]
    fn filter_narrows_the_table() {
        let (mut app, _) = app();
        app.update(Msg::FilterStart);
        for c in "work".chars() {
            app.update(Msg::FilterInput(c));
        }
        let lines = screen(&app);
        assert_eq!(table_tids(&lines), [101, 104]);
        assert!(line(&lines, "threads: 2 of 7").contains("filter \"work▏\""));
        assert!(line(&lines, "filter: work").contains("Esc clear"), "the footer while typing");
    }

    #[test]
    fn go_roles_follow_the_names_and_the_filter_finds_them() {
        use crate::goruntime::GoRole;
        let (mut app, mut m) = app();
        let go = |tid, role, locked_ext| crate::event::EventKind::GoThread {
            tid,
            role,
            locked_ext,
            locked_int: 0,
            locked_g: None,
        };
        m.apply(&ev(1_000, crate::event::NO_CPU, go(102, GoRole::Sysmon, 0)));
        m.apply(&ev(1_000, crate::event::NO_CPU, go(104, GoRole::Pinned, 1)));
        let state = |tid, state, goid, func: Option<&str>| crate::event::EventKind::GoState {
            tid,
            state,
            goid,
            func: func.map(ustr::ustr),
        };
        use crate::goruntime::GoState;
        m.apply(&ev(1_000, crate::event::NO_CPU, state(102, GoState::Idle, 0, None)));
        m.apply(&ev(1_000, crate::event::NO_CPU, state(104, GoState::Running, 17, Some("main.worker"))));
        m.tick(S + 2_000 * MS);
        app.show(m.live(None));
        let lines = screen(&app);
        assert!(row(&lines, 102).concat().contains("[sysmon]"), "{lines:?}");
        assert!(row(&lines, 104).concat().contains("[pinned]"), "{lines:?}");
        // The GO column, after the state.
        let r104 = row(&lines, 104);
        let s = r104.iter().position(|w| *w == "S" || *w == "R").expect("state");
        assert_eq!(r104[s + 1], "run", "{r104:?}");
        let r102 = row(&lines, 102);
        assert!(r102.contains(&"idle"), "{r102:?}");
        // The detail names the goroutine.
        while app.selected() != Some(104) {
            app.update(Msg::Down);
        }
        app.update(Msg::Open);
        app.show(m.live(app.focus()));
        let detail = screen(&app).join("\n");
        assert!(detail.contains("Go: pinned thread, running goroutine 17 (main.worker)"), "{detail}");
        app.update(Msg::Back);
        app.show(m.live(app.focus()));
        app.update(Msg::FilterStart);
        "pinned".chars().for_each(|c| {
            app.update(Msg::FilterInput(c));
        });
        assert_eq!(table_tids(&screen(&app)), [104]);
    }

    #[test]
    fn pause_keeps_the_frozen_frame_until_unpaused() {
        let (mut app, mut m) = app();
        app.update(Msg::TogglePause);
        m.apply(&born(1_500, 107, "late"));
        m.tick(S + 2_000 * MS);
        app.show(m.live(app.focus()));
        assert!(!table_tids(&screen(&app)).contains(&107));
        app.update(Msg::TogglePause);
        assert!(table_tids(&screen(&app)).contains(&107));
    }

    #[test]
    fn charts_and_log_show_the_history() {
        let (app, _) = app();
        let lines = screen(&app);
        assert!(line(&lines, "SIGURG/s").contains("5.0  max      5.0"));
        assert!(line(&lines, "threads  ").contains("max"));
        assert!(line(&lines, "runq p99 ").contains("20ms"));
        assert!(line(&lines, "thread 104 (worker) born").trim_start().starts_with("+0.5s"));
        assert!(line(&lines, "7 events lost").contains("+1.0s"));
        let log = lines.iter().position(|l| l.contains("born")).expect("log");
        let lost = lines.iter().position(|l| l.contains("events lost")).expect("log");
        assert!(log < lost, "newest last");
    }

    #[test]
    fn detail_view_shows_cpus_runq_senders_and_a_timeline() {
        let (mut app, m) = app();
        app.update(Msg::Open);
        app.show(m.live(app.focus()));
        let lines = screen(&app);
        let s = lines.join("\n");
        assert!(s.contains("thread 101 worker"), "{s}");
        assert!(s.contains("since start: on CPU 630ms, 3 migrations, 1 involuntary / 1 voluntary switches"), "{s}");
        assert!(s.contains("SIGURG 5 received, 0 sent"), "{s}");
        assert!(s.contains("run queue: 1 waits, p50 20ms p99 20ms max 20ms mean 20ms"), "{s}");
        let cpu1 = line(&lines, "cpu1 ");
        assert!(cpu1.contains("████") && cpu1.contains("600ms") && cpu1.contains(" 95%"), "{cpu1}");
        let cpu3 = line(&lines, "cpu3 ");
        assert!(cpu3.contains("30ms") && cpu3.contains("5%"), "{cpu3}");
        assert!(cpu1.matches('█').count() > 10 * cpu3.matches('█').count().max(1) / 2);
        assert!(line(&lines, "≤20ms").contains("█"), "runq bucket");
        let from = &lines[lines.iter().position(|l| l.starts_with("signalled by")).expect("senders") + 1];
        assert!(from.contains("102") && from.contains("SIGURG        5"), "{from}");
        let tl = lines.iter().position(|l| l.starts_with("timeline")).expect("timeline");
        assert!(lines[tl].contains("last 1s"));
        assert!(lines[tl + 1].contains('█') && lines[tl + 1].contains('▒') && lines[tl + 1].contains('·'));
        assert!(lines[tl + 2].starts_with("-1s") && lines[tl + 2].trim_end().ends_with("now"));
    }

    #[test]
    fn detail_of_a_thread_not_yet_asked_for() {
        let (mut app, _) = app();
        app.update(Msg::Down); // 100; the snapshot holds the detail of 101
        app.update(Msg::Open);
        assert!(screen(&app).join("\n").contains("the detail of thread 100 comes with the next refresh"));
    }

    #[test]
    fn timeline_strip_picks_the_main_state_of_each_slot() {
        let tl = [(0, Running), (50 * MS, Waiting), (60 * MS, Sleeping)];
        let (window, cells) = detail::strip(&tl, 100 * MS, 10);
        assert_eq!(window, 100 * MS);
        assert_eq!(cells, "█████▒····");
        let (window, cells) = detail::strip(&[], 100 * MS, 4);
        assert_eq!((window, cells.as_str()), (10 * MS, "    "));
    }

    #[test]
    fn runq_histogram_groups() {
        let hist = [(900, 1), (1_500, 2), (1_900, 1), (40_000, 5), (3_000_000_000, 1)];
        let g = detail::runq_groups(&hist, 100);
        assert_eq!(g.first(), Some(&(1_000, 1)));
        assert_eq!(g[1], (2_000, 3));
        assert_eq!(g.last(), Some(&(5_000_000_000, 1)));
        let g = detail::runq_groups(&hist, 3);
        assert_eq!(g, [(1_000_000_000, 9), (2_000_000_000, 0), (5_000_000_000, 1)], "the lowest merge into \"≤1s\"");
    }

    #[test]
    fn help_lists_the_keys_and_marks() {
        let (mut app, _) = app();
        app.update(Msg::Help);
        let s = text(&buffer(&app, 80, 20)).join("\n");
        for want in [
            "quit",
            "pause",
            "select a thread",
            "filter by name or TID",
            "reverse the sort order",
            "reset the totals",
            "refresh faster / slower",
            "BPF run-time stats",
            "replay: one step forward",
            "replay: faster / slower",
            "† name",
            "short-lived",
            "waiting for a CPU",
            "RUNQ p99",
            "spin lock lkwp",
        ] {
            assert!(s.contains(want), "{want:?} missing from\n{s}");
        }
    }

    #[test]
    fn too_small_terminal_gets_only_a_notice() {
        let (app, _) = app();
        let lines = text(&buffer(&app, 30, 8));
        let shown: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
        assert_eq!(shown, ["terminal too small: 30x8", "pintrace needs 80x20"]);
    }

    #[test]
    fn fits_the_minimum_size() {
        let (mut app, _) = app();
        app.update(Msg::Resize(MIN_WIDTH, MIN_HEIGHT));
        let lines = text(&buffer(&app, MIN_WIDTH, MIN_HEIGHT));
        assert!(table_tids(&lines).len() >= 3, "{}", lines.join("\n"));
        assert!(line(&lines, "threads").contains("now"));
        assert!(lines[usize::from(MIN_HEIGHT) - 1].contains("quit"), "footer");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(
            [0.0, 0.04, 9.94, 999.0, 1_234.0, 56_789.0, 1.5e6, 2.5e7].map(rate),
            ["0", "0.0", "9.9", "999", "1.2k", "57k", "1.5M", "25M"]
        );
        assert_eq!([0, 59, 61, 3_725].map(|s| hms(s * 1_000_000_000)), ["0s", "59s", "1m01s", "1h02m05s"]);
        assert_eq!(rel(12_345_000_000), "+12.3s");
        assert_eq!(bar(1, 100, 4), "▏   ");
        assert_eq!(bar(100, 100, 4), "████");
        assert_eq!(bar(50, 100, 3), "█▌ ");
    }
}
