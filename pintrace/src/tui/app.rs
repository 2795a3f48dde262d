//! The live screen's view state, and what user intents do to it. Pure: no
//! I/O and no clock. The owner feeds it snapshots (`show`) and intents
//! (`update`), and carries out the `Action` that `update` returns.
use std::{cmp::Ordering, fmt, time::Duration};

use crate::{
    goruntime::GoState,
    model::live::{LiveSnapshot, RunState, ThreadRow},
    record::Target,
};

/// Refresh intervals that `+` and `-` step through.
pub const INTERVALS: [Duration; 5] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
];

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    Quit,
    TogglePause,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// The detail view of the selected thread.
    Open,
    /// Leave the detail view, the help screen or the filter.
    Back,
    SortNext,
    SortPrev,
    SortReverse,
    FilterStart,
    FilterInput(char),
    FilterBackspace,
    FilterDone,
    Reset,
    /// A shorter refresh interval.
    Faster,
    Slower,
    Help,
    ToggleBpfStats,
    /// Replay: one interval forward, then stay paused.
    Step,
    SpeedUp,
    SpeedDown,
    /// The terminal's new size (columns, rows); also sent once at start.
    Resize(u16, u16),
}

/// What the owner has to do after an `update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Start the model's totals again.
    Reset,
    /// Tick the model at this interval from now on (`status.interval` is already set).
    SetInterval(Duration),
    /// Replay: advance one interval and `show` the result. The app is paused
    /// from now on, so the playback clock stays stopped.
    Step,
    /// Replay at this speed (the app's `Mode` is already updated).
    SetSpeed(Speed),
    /// Turn the kernel's BPF run-time statistics on or off, then set
    /// `status.bpf_stats_on` to what it really is.
    ToggleBpfStats,
    /// Replay only: stop (true) or restart (false) the playback clock.
    Pause(bool),
    /// Draw again. If `focus()` changed, the owner may ask the model for its detail now.
    Redraw,
}

/// Replay speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Speed {
    #[default]
    X1,
    X10,
    X100,
    /// As fast as the file reads.
    Max,
}

impl Speed {
    pub fn faster(self) -> Speed {
        match self {
            Speed::X1 => Speed::X10,
            Speed::X10 => Speed::X100,
            Speed::X100 | Speed::Max => Speed::Max,
        }
    }

    pub fn slower(self) -> Speed {
        match self {
            Speed::X1 | Speed::X10 => Speed::X1,
            Speed::X100 => Speed::X10,
            Speed::Max => Speed::X100,
        }
    }

    /// Trace time per wall-clock time; None for `Max`.
    pub fn factor(self) -> Option<u32> {
        match self {
            Speed::X1 => Some(1),
            Speed::X10 => Some(10),
            Speed::X100 => Some(100),
            Speed::Max => None,
        }
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.factor() {
            Some(x) => write!(f, "{x}×"),
            None => f.write_str("max"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Live,
    Replay {
        file: String,
        speed: Speed,
        /// CLOCK_MONOTONIC time of the recording's end, when known.
        end_ns: Option<u64>,
    },
}

/// The kernel's accounting of pintrace's BPF programs (`kernel.bpf_stats_enabled`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BpfUsage {
    pub ns_per_sec: f64,
    pub runs_per_sec: f64,
}

/// What the owner knows that the model does not; the header shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub target: Target,
    pub mode: Mode,
    /// CLOCK_MONOTONIC start of the trace.
    pub start_ns: u64,
    /// The refresh interval.
    pub interval: Duration,
    /// Why tracing ended ("target exited"); the screen keeps the final numbers.
    pub ended: Option<String>,
    pub decode_errors: u64,
    /// pintrace's own CPU use, in percent of one CPU.
    pub self_cpu_pct: Option<f64>,
    pub bpf: Option<BpfUsage>,
    pub bpf_stats_on: bool,
    pub nr_cpus: u32,
    /// Label and value pairs for the header (GOMAXPROCS, CPU quota, ...).
    pub extra: Vec<(String, String)>,
    /// What is wrong now, worst first: one line each under the header.
    pub findings: Vec<crate::findings::Finding>,
    /// Threads against what a Go program needs (None: not Go).
    pub capacity: Option<crate::findings::Capacity>,
}

impl Status {
    /// A status with a one-second refresh and nothing else known yet.
    pub fn new(target: Target, mode: Mode, start_ns: u64, nr_cpus: u32) -> Self {
        Status {
            target,
            mode,
            start_ns,
            interval: Duration::from_secs(1),
            ended: None,
            decode_errors: 0,
            self_cpu_pct: None,
            bpf: None,
            bpf_stats_on: false,
            nr_cpus,
            extra: Vec::new(),
            findings: Vec::new(),
            capacity: None,
        }
    }

    pub fn replay(&self) -> bool {
        matches!(self.mode, Mode::Replay { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Main,
    Detail,
    Help,
}

/// The thread table's sort columns, in the order `s` cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    Cpu,
    Tid,
    Name,
    State,
    Go,
    LastCpu,
    Migrations,
    Involuntary,
    Voluntary,
    Sigurg,
    RunqP99,
    Age,
}

impl SortColumn {
    pub const ALL: [SortColumn; 12] = [
        SortColumn::Cpu,
        SortColumn::Tid,
        SortColumn::Name,
        SortColumn::State,
        SortColumn::Go,
        SortColumn::LastCpu,
        SortColumn::Migrations,
        SortColumn::Involuntary,
        SortColumn::Voluntary,
        SortColumn::Sigurg,
        SortColumn::RunqP99,
        SortColumn::Age,
    ];

    fn position(self) -> usize {
        Self::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }

    pub fn next(self) -> SortColumn {
        Self::ALL[(self.position() + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> SortColumn {
        Self::ALL[(self.position() + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    /// The column's title in the table.
    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Cpu => "%CPU",
            SortColumn::Tid => "TID",
            SortColumn::Name => "NAME",
            SortColumn::State => "S",
            SortColumn::Go => "GO",
            SortColumn::LastCpu => "CPU",
            SortColumn::Migrations => "MIGR/s",
            SortColumn::Involuntary => "INVOL/s",
            SortColumn::Voluntary => "VOL/s",
            SortColumn::Sigurg => "URG/s",
            SortColumn::RunqP99 => "RUNQ p99",
            SortColumn::Age => "AGE",
        }
    }

    /// Whether the column sorts largest first unless reversed: the busy
    /// numbers do; TID, name, state (running first), CPU and age (youngest
    /// first) do not.
    pub fn descending(self) -> bool {
        matches!(
            self,
            SortColumn::Cpu
                | SortColumn::Migrations
                | SortColumn::Involuntary
                | SortColumn::Voluntary
                | SortColumn::Sigurg
                | SortColumn::RunqP99
        )
    }

    /// Compares two rows by this column's value, ascending.
    fn cmp(self, a: &ThreadRow, b: &ThreadRow) -> Ordering {
        fn go_rank(s: Option<GoState>) -> u8 {
            match s {
                Some(GoState::Running) => 0,
                Some(GoState::Syscall) => 1,
                Some(GoState::Cgo) => 2,
                Some(GoState::Spinning) => 3,
                Some(GoState::LockedRunnable) => 4,
                Some(GoState::LockedIdle) => 4,
                Some(GoState::Idle) => 5,
                Some(GoState::Unknown) => 6,
                None => 7,
            }
        }
        fn rank(s: RunState) -> u8 {
            match s {
                RunState::Running => 0,
                RunState::Waiting | RunState::Throttled => 1,
                RunState::Sleeping => 2,
                RunState::Exited => 3,
            }
        }
        match self {
            SortColumn::Cpu => a.cpu_pct.total_cmp(&b.cpu_pct),
            SortColumn::Tid => a.tid.cmp(&b.tid),
            SortColumn::Name => {
                a.comm.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.comm.bytes().map(|c| c.to_ascii_lowercase()))
            }
            SortColumn::State => rank(a.state).cmp(&rank(b.state)),
            SortColumn::Go => go_rank(a.go_state).cmp(&go_rank(b.go_state)),
            SortColumn::LastCpu => a.last_cpu.unwrap_or(u32::MAX).cmp(&b.last_cpu.unwrap_or(u32::MAX)),
            SortColumn::Migrations => a.migrations_per_sec.total_cmp(&b.migrations_per_sec),
            SortColumn::Involuntary => a.involuntary_switches_per_sec.total_cmp(&b.involuntary_switches_per_sec),
            SortColumn::Voluntary => a.voluntary_switches_per_sec.total_cmp(&b.voluntary_switches_per_sec),
            SortColumn::Sigurg => a.sigurg_received_per_sec.total_cmp(&b.sigurg_received_per_sec),
            SortColumn::RunqP99 => a.runq_latency_ns.p99.cmp(&b.runq_latency_ns.p99),
            // Younger is smaller: born later. Threads there at the start are the oldest.
            SortColumn::Age => b.born_ns.unwrap_or(0).cmp(&a.born_ns.unwrap_or(0)),
        }
    }
}

/// The view state of `pintrace top` and `pintrace replay`.
#[derive(Debug)]
pub struct App {
    pub status: Status,
    /// Colours on (false with NO_COLOR): without them only bold, dim and reverse are used.
    pub color: bool,
    snapshot: Option<LiveSnapshot>,
    /// The newest snapshot received while paused.
    latest: Option<LiveSnapshot>,
    paused: bool,
    /// Show the next snapshot although paused (a replay step).
    stepping: bool,
    screen: Screen,
    /// The screen under the help screen.
    under_help: Screen,
    sort: SortColumn,
    reverse: bool,
    selected: Option<u32>,
    /// The user moved the selection: it follows its thread. Until then (and
    /// after Home) it stays on the top row, so the busiest threads show.
    following: bool,
    /// The selected row's position, to select a neighbour when it goes.
    index: usize,
    /// The first table row shown.
    offset: usize,
    filter: String,
    editing_filter: bool,
    size: (u16, u16),
    /// Table rows a page holds, as the view last laid the screen out
    /// (`set_page_rows`): the app does not lay out the screen itself.
    page_rows: usize,
}

impl App {
    pub fn new(status: Status, color: bool) -> Self {
        App {
            status,
            color,
            snapshot: None,
            latest: None,
            paused: false,
            stepping: false,
            screen: Screen::Main,
            under_help: Screen::Main,
            sort: SortColumn::Cpu,
            reverse: false,
            selected: None,
            following: false,
            index: 0,
            offset: 0,
            filter: String::new(),
            editing_filter: false,
            size: (0, 0),
            page_rows: 0,
        }
    }

    /// The snapshot on screen: the newest, or the one frozen by pause.
    pub fn snapshot(&self) -> Option<&LiveSnapshot> {
        self.snapshot.as_ref()
    }
    pub fn paused(&self) -> bool {
        self.paused
    }
    pub fn screen(&self) -> Screen {
        self.screen
    }
    /// The sort column, and whether its natural order is reversed.
    pub fn sort(&self) -> (SortColumn, bool) {
        (self.sort, self.reverse)
    }
    /// Whether rows are shown largest first.
    pub fn sort_descending(&self) -> bool {
        self.sort.descending() != self.reverse
    }
    pub fn selected(&self) -> Option<u32> {
        self.selected
    }
    pub fn filter(&self) -> &str {
        &self.filter
    }
    pub fn editing_filter(&self) -> bool {
        self.editing_filter
    }
    /// The first table row on screen.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// The terminal size from the last `Resize`.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// The thread whose detail the owner should ask the model for.
    pub fn focus(&self) -> Option<u32> {
        self.selected
    }

    /// A new snapshot from the model. While paused it is kept aside (the
    /// screen stays frozen) and shown on unpause.
    pub fn show(&mut self, snap: LiveSnapshot) {
        if self.paused && !self.stepping {
            // The frozen snapshot has no detail of a thread selected since:
            // take that from the newer one rather than show nothing.
            let focus = self.focus();
            if let (Some(shown), Some(d)) = (self.snapshot.as_mut(), snap.detail.as_ref()) {
                let has = shown.detail.as_ref().map(|x| x.totals.tid);
                if focus == Some(d.totals.tid) && has != focus {
                    shown.detail = Some(d.clone());
                }
            }
            self.latest = Some(snap);
            return;
        }
        self.stepping = false;
        self.latest = None;
        self.snapshot = Some(snap);
        self.follow();
    }

    /// The thread table's rows: filtered, then sorted by the sort column
    /// with ties broken by TID, so that rows only move when their values do.
    pub fn rows(&self) -> Vec<&ThreadRow> {
        let Some(snap) = &self.snapshot else { return Vec::new() };
        let f = self.filter.to_lowercase();
        let mut rows: Vec<&ThreadRow> = snap
            .threads
            .iter()
            .filter(|t| {
                // The Go role shown after the name ("sysmon", "pinned") matches too.
                f.is_empty()
                    || t.comm.to_lowercase().contains(&f)
                    || t.tid.to_string().contains(&f)
                    || crate::fmt::role_tag(t.role, t.pinned).contains(&f)
            })
            .collect();
        let (col, desc) = (self.sort, self.sort_descending());
        rows.sort_by(|a, b| {
            let o = col.cmp(a, b);
            let o = if desc { o.reverse() } else { o };
            o.then(a.tid.cmp(&b.tid))
        });
        rows
    }

    pub fn update(&mut self, msg: Msg) -> Action {
        match msg {
            Msg::Quit => return Action::Quit,
            Msg::TogglePause => {
                self.paused = !self.paused;
                if !self.paused {
                    if let Some(s) = self.latest.take() {
                        self.snapshot = Some(s);
                    }
                    self.follow();
                }
                if self.status.replay() {
                    return Action::Pause(self.paused);
                }
            }
            Msg::Up => self.move_by(-1),
            Msg::Down => self.move_by(1),
            Msg::PageUp => self.move_by(-(self.page() as isize)),
            Msg::PageDown => self.move_by(self.page() as isize),
            Msg::Home => {
                self.move_by(isize::MIN / 2);
                self.following = false;
            }
            Msg::End => self.move_by(isize::MAX / 2),
            Msg::Open => {
                if self.screen == Screen::Main && self.visible(self.selected) {
                    self.screen = Screen::Detail;
                }
            }
            Msg::Back => self.back(),
            Msg::SortNext => self.set_sort(self.sort.next(), false),
            Msg::SortPrev => self.set_sort(self.sort.prev(), false),
            Msg::SortReverse => self.set_sort(self.sort, !self.reverse),
            Msg::FilterStart => {
                self.screen = Screen::Main;
                self.editing_filter = true;
            }
            Msg::FilterInput(c) if self.editing_filter && !c.is_control() => {
                self.filter.push(c);
                self.follow();
            }
            Msg::FilterBackspace if self.editing_filter => {
                self.filter.pop();
                self.follow();
            }
            Msg::FilterDone => self.editing_filter = false,
            Msg::FilterInput(_) | Msg::FilterBackspace => return Action::None,
            Msg::Reset => return Action::Reset,
            Msg::Faster => return self.step_interval(false),
            Msg::Slower => return self.step_interval(true),
            Msg::Help => {
                if self.screen == Screen::Help {
                    self.screen = self.under_help;
                } else {
                    self.under_help = self.screen;
                    self.screen = Screen::Help;
                }
            }
            Msg::ToggleBpfStats => return Action::ToggleBpfStats,
            Msg::Step => {
                if !self.status.replay() {
                    return Action::None;
                }
                self.paused = true;
                self.stepping = true;
                return Action::Step;
            }
            Msg::SpeedUp | Msg::SpeedDown => {
                let Mode::Replay { speed, .. } = &mut self.status.mode else { return Action::None };
                *speed = if msg == Msg::SpeedUp { speed.faster() } else { speed.slower() };
                return Action::SetSpeed(*speed);
            }
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.scroll();
            }
        }
        Action::Redraw
    }

    fn back(&mut self) {
        match self.screen {
            Screen::Help => self.screen = self.under_help,
            Screen::Detail => {
                self.screen = Screen::Main;
                self.follow();
            }
            Screen::Main => {
                self.editing_filter = false;
                self.filter.clear();
                self.follow();
            }
        }
    }

    fn set_sort(&mut self, col: SortColumn, reverse: bool) {
        self.sort = col;
        self.reverse = reverse;
        self.follow();
    }

    fn step_interval(&mut self, slower: bool) -> Action {
        let cur = self.status.interval;
        let next =
            if slower { INTERVALS.iter().find(|&&d| d > cur) } else { INTERVALS.iter().rev().find(|&&d| d < cur) };
        match next {
            Some(&d) => {
                self.status.interval = d;
                Action::SetInterval(d)
            }
            None => Action::None,
        }
    }

    fn tids(&self) -> Vec<u32> {
        self.rows().iter().map(|r| r.tid).collect()
    }

    fn visible(&self, tid: Option<u32>) -> bool {
        tid.is_some_and(|t| self.tids().contains(&t))
    }

    /// Table rows that fit on a page, as the view last laid them out.
    fn page(&self) -> usize {
        self.page_rows.max(1)
    }

    /// The table rows a page holds now (the screen sets it whenever it
    /// lays the screen out: a draw, a resize).
    pub fn set_page_rows(&mut self, rows: usize) {
        self.page_rows = rows;
    }

    /// Keeps the selection on its thread, or on the nearest row when the
    /// thread is gone; the detail view keeps its thread even when it goes.
    fn follow(&mut self) {
        let tids = self.tids();
        if tids.is_empty() {
            self.index = 0;
            self.offset = 0;
            return;
        }
        if !self.following && self.screen == Screen::Main {
            self.index = 0;
            self.selected = Some(tids[0]);
            self.scroll();
            return;
        }
        match self.selected.and_then(|s| tids.iter().position(|&t| t == s)) {
            Some(i) => self.index = i,
            None if self.screen == Screen::Detail && self.selected.is_some() => return,
            None => {
                self.index = self.index.min(tids.len() - 1);
                self.selected = Some(tids[self.index]);
            }
        }
        self.scroll();
    }

    fn move_by(&mut self, delta: isize) {
        let tids = self.tids();
        if tids.is_empty() || self.screen == Screen::Help {
            return;
        }
        let cur = self.selected.and_then(|s| tids.iter().position(|&t| t == s)).unwrap_or(self.index);
        let i = cur.saturating_add_signed(delta).min(tids.len() - 1);
        self.following = true;
        self.index = i;
        self.selected = Some(tids[i]);
        self.scroll();
    }

    /// Scrolls the table as little as possible to keep the selection on screen.
    fn scroll(&mut self) {
        let page = self.page();
        let len = self.tids().len();
        if self.index < self.offset {
            self.offset = self.index;
        } else if self.index >= self.offset + page {
            self.offset = self.index + 1 - page;
        }
        self.offset = self.offset.min(len.saturating_sub(page));
    }
}

/// Snapshots from the real model, for the app's and the view's tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::{App, Msg, Status};
    use crate::{
        event::{Comm, Event, EventKind, NO_CPU},
        model::{Model, SIGURG},
        record::Target,
    };

    pub const MS: u64 = 1_000_000;
    /// The trace starts 1 s after boot.
    pub const S: u64 = 1_000 * MS;

    pub fn ev(ms: u64, cpu: u32, kind: EventKind) -> Event {
        Event { ts_ns: S + ms * MS, cpu, kind }
    }
    pub fn seen(tid: u32, comm: &str) -> Event {
        Event { ts_ns: S, cpu: NO_CPU, kind: EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new(comm) } }
    }
    /// `prev` leaves `cpu` at `ms` (preempted when `preempted`, else sleeps), `next` takes it.
    pub fn switch(ms: u64, cpu: u32, prev: u32, next: u32, preempted: bool) -> Event {
        ev(
            ms,
            cpu,
            EventKind::Switch {
                prev_tid: prev,
                next_tid: next,
                prev_state: u32::from(!preempted),
                next_wait_ns: None,
                other: 0,
            },
        )
    }
    pub fn born(ms: u64, tid: u32, comm: &str) -> Event {
        let flags = pintrace_common::CLONE_THREAD;
        let kind = EventKind::NewTask {
            parent_tid: 100,
            parent_tgid: 100,
            child_tid: tid,
            clone_flags: flags,
            comm: Comm::new(comm),
        };
        ev(ms, 0, kind)
    }
    pub fn exit(ms: u64, tid: u32, comm: &str) -> Event {
        ev(ms, 0, EventKind::Exit { tid, tgid: 100, group_dead: false, comm: Comm::new(comm) })
    }
    pub fn sigurg(ms: u64, from: u32, to: u32) -> Event {
        let kind = EventKind::Signal {
            sender_tid: from,
            sender_tgid: 100,
            target_tid: to,
            sig: SIGURG,
            code: -6,
            result: 0,
            group: false,
        };
        ev(ms, 0, kind)
    }

    /// One second of a small Go-like process: worker 101 runs 630 ms on
    /// CPUs 1 and 3 (preempted once, 20 ms in the run queue, 3 migrations,
    /// 5 SIGURG from sysmon 102); app 100 and gc 103 run 300 ms each; 104
    /// is born, 105 exits, 106 has a hostile name; 7 events were lost.
    pub fn model() -> Model {
        let mut m = Model::new(S).retain_exited(10_000 * MS);
        for (tid, comm) in [(100, "app"), (101, "worker"), (102, "sysmon"), (103, "gc"), (105, "old")] {
            m.apply(&seen(tid, comm));
        }
        m.apply(&seen(106, "\x1b[2Jevil\n"));
        for e in [
            switch(0, 1, 0, 101, false),
            switch(0, 2, 0, 103, false),
            switch(100, 0, 0, 100, false),
            sigurg(200, 102, 101),
            sigurg(210, 102, 101),
            sigurg(220, 102, 101),
            sigurg(230, 102, 101),
            sigurg(240, 102, 101),
            switch(300, 2, 103, 0, false),
            switch(400, 0, 100, 0, false),
            born(500, 104, "worker"),
            switch(600, 1, 101, 0, true),
            switch(620, 3, 0, 101, false),
            switch(650, 3, 101, 0, false),
            exit(700, 105, "old"),
            ev(800, NO_CPU, EventKind::Lost { total: 7 }),
        ] {
            m.apply(&e);
        }
        for ms in [610, 615, 618] {
            m.apply(&ev(ms, 1, EventKind::Migrate { tid: 101, from_cpu: 1, to_cpu: 3 }));
        }
        m.tick(S + 1_000 * MS);
        m
    }

    pub fn status() -> Status {
        let target = Target { pid: 100, comm: "app".into(), cmdline: "/srv/app --listen :8080".into(), ns_pid: None };
        Status::new(target, super::Mode::Live, S, 8)
    }

    /// An app at 120x40 showing `model()`, with the detail of the selected thread.
    pub fn app() -> (App, Model) {
        let m = model();
        let mut app = App::new(status(), false);
        app.update(Msg::Resize(120, 40));
        // As the screen does after laying it out.
        let rows = super::super::view::table_capacity(&app);
        app.set_page_rows(rows);
        app.show(m.live(None));
        let focus = app.focus();
        app.show(m.live(focus));
        (app, m)
    }
}

#[cfg(test)]
mod tests {
    use super::{fixture::*, *};
    use crate::event::EventKind;

    fn tids(app: &App) -> Vec<u32> {
        app.rows().iter().map(|r| r.tid).collect()
    }

    #[test]
    fn the_selection_stays_on_the_top_row_until_the_user_moves_it() {
        let (mut app, mut m) = app();
        assert_eq!(app.selected(), Some(101), "the busiest thread, on top");
        // Next second, gc (103) is the busiest: the top row is still selected.
        m.apply(&switch(1_000, 2, 0, 103, false));
        m.apply(&switch(1_900, 2, 103, 0, false));
        m.tick(S + 2_000 * MS);
        app.show(m.live(app.focus()));
        assert_eq!(tids(&app)[0], 103);
        assert_eq!((app.selected(), app.offset()), (Some(103), 0));
        // Once moved, the selection follows its thread wherever it sorts.
        app.update(Msg::Down);
        let picked = app.selected();
        m.tick(S + 3_000 * MS);
        app.show(m.live(app.focus()));
        assert_eq!(app.selected(), picked);
        app.update(Msg::Home);
        m.tick(S + 4_000 * MS);
        app.show(m.live(app.focus()));
        assert_eq!(app.selected(), tids(&app).first().copied(), "Home goes back to the top row");
    }

    #[test]
    fn rows_sort_by_cpu_then_tid_and_cycle_and_reverse() {
        let (mut app, _) = app();
        // 100 and 103 both ran 300 ms: the tie goes by TID, as do the idle ones.
        assert_eq!(tids(&app), [101, 100, 103, 102, 104, 105, 106]);
        app.update(Msg::SortReverse);
        assert_eq!(tids(&app), [102, 104, 105, 106, 100, 103, 101]);
        app.update(Msg::SortNext);
        assert_eq!(app.sort(), (SortColumn::Tid, false));
        assert_eq!(tids(&app), [100, 101, 102, 103, 104, 105, 106]);
        app.update(Msg::SortNext);
        assert_eq!(app.sort().0, SortColumn::Name);
        // Case-insensitive by name ("\x1b" sorts first), then by TID for the two workers.
        assert_eq!(tids(&app), [106, 100, 103, 105, 102, 101, 104]);
        app.update(Msg::SortPrev);
        app.update(Msg::SortPrev);
        assert_eq!(app.sort(), (SortColumn::Cpu, false));
        for _ in 0..SortColumn::ALL.len() {
            app.update(Msg::SortNext);
        }
        assert_eq!(app.sort().0, SortColumn::Cpu, "the cycle comes round");
    }

    #[test]
    fn other_columns_sort_by_their_values() {
        let (mut app, _) = app();
        let mut by = |col: SortColumn| {
            while app.sort().0 != col {
                app.update(Msg::SortNext);
            }
            tids(&app)
        };
        assert_eq!(by(SortColumn::Migrations)[0], 101);
        assert_eq!(by(SortColumn::Sigurg)[0], 101);
        assert_eq!(by(SortColumn::RunqP99)[0], 101);
        assert_eq!(by(SortColumn::Age)[0], 104, "the youngest first");
    }

    #[test]
    fn selection_follows_its_thread_when_rows_move() {
        let (mut app, _) = app();
        assert_eq!(app.selected(), Some(101), "the first row is selected at start");
        app.update(Msg::Down);
        app.update(Msg::Down);
        assert_eq!(app.selected(), Some(103));
        app.update(Msg::SortNext); // by TID: 103 is now the fourth row
        assert_eq!(app.selected(), Some(103));
        assert_eq!(tids(&app).iter().position(|&t| t == 103), Some(3));
        app.update(Msg::End);
        assert_eq!(app.selected(), Some(106));
        app.update(Msg::Home);
        assert_eq!(app.selected(), Some(100));
        app.update(Msg::Up);
        assert_eq!(app.selected(), Some(100), "stays at the top");
    }

    #[test]
    fn a_thread_that_goes_hands_the_selection_to_its_neighbour() {
        let (mut app, mut m) = app();
        app.update(Msg::SortNext); // by TID
        app.update(Msg::End);
        app.update(Msg::Up); // 105, exited at +700 ms
        assert_eq!(app.selected(), Some(105));
        // Exited threads are dropped 10 s after their exit.
        m.tick(S + 11_000 * MS);
        app.show(m.live(app.focus()));
        assert!(!tids(&app).contains(&105));
        assert_eq!(app.selected(), Some(106), "the row now in its place");
    }

    #[test]
    fn filter_narrows_rows_by_name_or_tid() {
        let (mut app, _) = app();
        app.update(Msg::FilterStart);
        assert!(app.editing_filter());
        for c in "WORK".chars() {
            app.update(Msg::FilterInput(c));
        }
        assert_eq!(tids(&app), [101, 104]);
        app.update(Msg::FilterDone);
        assert!(!app.editing_filter());
        assert_eq!(app.filter(), "WORK");
        app.update(Msg::FilterInput('x'));
        assert_eq!(app.filter(), "WORK", "typing goes to the filter only while editing");
        app.update(Msg::FilterStart);
        for _ in 0..4 {
            app.update(Msg::FilterBackspace);
        }
        app.update(Msg::FilterInput('3'));
        assert_eq!(tids(&app), [103]);
        assert_eq!(app.selected(), Some(103), "the selection moves into what is shown");
        app.update(Msg::Back);
        assert_eq!(app.filter(), "");
        assert_eq!(tids(&app).len(), 7);
    }

    #[test]
    fn pause_freezes_the_shown_snapshot_and_unpause_shows_the_newest() {
        let (mut app, mut m) = app();
        assert_eq!(app.update(Msg::TogglePause), Action::Redraw);
        assert!(app.paused());
        m.apply(&born(1_500, 107, "late"));
        m.tick(S + 2_000 * MS);
        app.show(m.live(app.focus()));
        assert_eq!(app.snapshot().map(|s| s.now_ns), Some(S + 1_000 * MS), "frozen");
        assert!(!tids(&app).contains(&107));
        m.tick(S + 3_000 * MS);
        app.show(m.live(app.focus()));
        app.update(Msg::TogglePause);
        assert_eq!(app.snapshot().map(|s| s.now_ns), Some(S + 3_000 * MS), "the newest");
        assert!(tids(&app).contains(&107));
    }

    #[test]
    fn replay_pause_step_and_speed_reach_the_owner() {
        let (mut app, mut m) = app();
        app.status.mode = Mode::Replay { file: "t.ptr".into(), speed: Speed::X1, end_ns: None };
        assert_eq!(app.update(Msg::TogglePause), Action::Pause(true));
        assert_eq!(app.update(Msg::TogglePause), Action::Pause(false));
        assert_eq!(app.update(Msg::Step), Action::Step);
        assert!(app.paused(), "a step pauses");
        m.apply(&ev(1_500, crate::event::NO_CPU, EventKind::Lost { total: 9 }));
        m.tick(S + 2_000 * MS);
        app.show(m.live(app.focus()));
        assert_eq!(app.snapshot().map(|s| s.now_ns), Some(S + 2_000 * MS), "the step is shown");
        m.tick(S + 3_000 * MS);
        app.show(m.live(app.focus()));
        assert_eq!(app.snapshot().map(|s| s.now_ns), Some(S + 2_000 * MS), "and then it is paused again");
        let speeds: Vec<Action> = (0..4).map(|_| app.update(Msg::SpeedUp)).collect();
        assert_eq!(
            speeds,
            [Speed::X10, Speed::X100, Speed::Max, Speed::Max].map(Action::SetSpeed),
            "speed saturates at max"
        );
        assert_eq!(app.update(Msg::SpeedDown), Action::SetSpeed(Speed::X100));
        assert_eq!(Speed::X100.to_string(), "100×");
        assert_eq!(Speed::Max.to_string(), "max");
    }

    #[test]
    fn live_mode_has_no_replay_controls() {
        let (mut app, _) = app();
        assert_eq!(app.update(Msg::Step), Action::None);
        assert_eq!(app.update(Msg::SpeedUp), Action::None);
        assert_eq!(app.update(Msg::Reset), Action::Reset);
        assert_eq!(app.update(Msg::ToggleBpfStats), Action::ToggleBpfStats);
        assert_eq!(app.update(Msg::Quit), Action::Quit);
    }

    #[test]
    fn refresh_interval_steps() {
        let (mut app, _) = app();
        assert_eq!(app.update(Msg::Faster), Action::SetInterval(Duration::from_millis(500)));
        assert_eq!(app.update(Msg::Faster), Action::SetInterval(Duration::from_millis(250)));
        assert_eq!(app.update(Msg::Faster), Action::None, "250 ms is the shortest");
        assert_eq!(app.status.interval, Duration::from_millis(250));
        for _ in 0..4 {
            app.update(Msg::Slower);
        }
        assert_eq!(app.update(Msg::Slower), Action::None);
        assert_eq!(app.status.interval, Duration::from_secs(5));
    }

    #[test]
    fn screens_open_and_go_back() {
        let (mut app, _) = app();
        app.update(Msg::Open);
        assert_eq!(app.screen(), Screen::Detail);
        app.update(Msg::Help);
        assert_eq!(app.screen(), Screen::Help);
        app.update(Msg::Back);
        assert_eq!(app.screen(), Screen::Detail, "help goes back to where it came from");
        app.update(Msg::Down);
        assert_eq!(app.focus(), Some(100), "the detail view steps through threads");
        app.update(Msg::Back);
        assert_eq!(app.screen(), Screen::Main);
    }

    #[test]
    fn paging_keeps_the_selection_on_screen() {
        let (mut app, _) = app();
        app.update(Msg::Resize(120, 20)); // room for a few rows only
        let page = super::super::view::table_capacity(&app);
        app.set_page_rows(page);
        assert!((1..7).contains(&page), "page of {page} rows");
        app.update(Msg::PageDown);
        assert_eq!(tids(&app).iter().position(|&t| Some(t) == app.selected()), Some(page));
        assert!(app.offset() <= page && page < app.offset() + page);
        app.update(Msg::Home);
        assert_eq!(app.offset(), 0);
    }
}
