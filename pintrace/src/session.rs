//! Attaching to a target: resolve it (or start it), load the kernel
//! programs, fill and reconcile the TID set, attach, and hand out the ring
//! buffer. The one place where these steps happen, in this order, for
//! `record` and `top` alike.
use std::{
    collections::{BTreeSet, HashMap},
    ffi::OsString,
    os::fd::OwnedFd,
    path::PathBuf,
};

use anyhow::{bail, Context as _, Result};
use aya::maps::{MapData, RingBuf};

use crate::{
    cgroup::CpuGroup,
    event::{Event, EventKind, FnName, NO_CPU},
    goruntime::{GoError, GoInfo, GoProcess, GoRole},
    launch::{self, Launched, RunAs},
    probe::{
        LostCounter, Options, ProbeStatus, Probes, TidSet, CLASSIC_FLAG, GO_LOCK_PROBE, THROTTLE_FLAG, WAITS_FIELDS,
    },
    record::{ProbeRecord, RecordHeader, Target},
    target,
};

/// What to trace.
#[derive(Clone, Debug)]
pub enum TargetSpec {
    /// A running process (any of its thread IDs works too).
    Pid(u32),
    /// A command to start, traced from its first instruction.
    Command { argv: Vec<OsString>, user: Option<String>, quiet: bool },
}

/// A target with every probe attached.
pub struct Session {
    probes: Probes,
    tids: TidSet,
    pub target: Target,
    pub header: RecordHeader,
    /// One `ThreadSeen` per thread that existed when tracing started.
    pub initial: Vec<Event>,
    launched: Option<Launched>,
    stats_fd: Option<OwnedFd>,
    /// The target's CPU cgroup, or why it could not be found.
    pub cgroup: Result<CpuGroup, String>,
    /// The target's Go runtime, if it is a Go program.
    go: Option<GoProcess>,
    /// Why a program that looks like Go cannot be read (None: read, or not Go).
    pub go_problem: Option<String>,
    /// The Go runtime of the program after an exec, being read on a thread
    /// of its own (its executable is the target's choice: reading it must
    /// not hold up the event loop), and whether another exec came since.
    pending_go: Option<(std::thread::JoinHandle<Result<GoProcess>>, bool)>,
    /// The exec of a started command, already read by `release`: its event is not news.
    released_exec: bool,
    /// The M list as last handed out: tid → (role, lockedExt, lockedInt, locked g).
    go_ms: HashMap<u32, EventKind>,
    /// Each M's state and goroutine as last handed out.
    go_states: HashMap<u32, EventKind>,
    /// The Ps as last handed out.
    go_ps: Vec<crate::goruntime::PState>,
    /// Why the scheduler cannot be read, once known.
    pub go_sched_problem: Option<String>,
    /// Other processes already named (`name_others`).
    others_named: std::collections::HashSet<u32>,
    /// The pinned Ms (TID, address of the M) as last listed: their state
    /// is sampled with the scheduler, to time their waits for a P.
    pinned_ms: Vec<(u32, u64)>,
    /// Why the M list cannot be read, once known.
    pub go_threads_problem: Option<String>,
}

impl Session {
    pub fn attach(spec: &TargetSpec, opts: &Options) -> Result<Session> {
        // Check what can be checked before starting anything.
        crate::probe::check_privileges()?;
        let (target, launched) = match spec {
            TargetSpec::Pid(pid) => (target::resolve(*pid)?, None),
            TargetSpec::Command { argv, user, quiet } => {
                let run_as = user.as_deref().map(RunAs::lookup).transpose()?;
                let l = launch::launch(argv, run_as.as_ref(), *quiet)?;
                let comm = std::path::Path::new(&l.argv[0])
                    .file_name()
                    .map_or_else(|| l.argv[0].clone(), |n| n.to_string_lossy().into_owned());
                let target = Target { pid: l.pid, comm, cmdline: l.argv.join(" "), ns_pid: None };
                (target, Some(l))
            }
        };
        // The process, pinned: a PID names another process once this one
        // exits and the PID is reused (a launched command is our child:
        // its PID cannot be reused before we reap it).
        let started = target::start_time(target.pid);
        let mut probes = Probes::load(opts)?;
        let tids = probes.take_tids()?;
        #[cfg(debug_assertions)]
        if let Some(ms) = std::env::var("PINTRACE_TEST_ATTACH_PAUSE_MS").ok().and_then(|v| v.parse().ok()) {
            // Tests only (a debug build): widens the attach so that a test can reuse the PID in it.
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let before =
            target::threads(target.pid).with_context(|| format!("listing the threads of process {}", target.pid))?;
        if before.is_empty() {
            bail!("process {} has no threads left (it exited)", target.pid);
        }
        for &tid in &before {
            tids.insert(tid)?;
        }
        probes.attach_all()?;
        let clock = target::clock_mapping();
        let start_ns = clock.monotonic_ns;
        let initial = reconcile(target.pid, &tids, &before, start_ns)?;
        if started.is_none() || target::start_time(target.pid) != started {
            let now = target::resolve(target.pid).map(|t| format!(" (now {})", crate::fmt::clean(&t.comm)));
            bail!(
                "process {} ({}) exited while pintrace attached{}: nothing traced",
                target.pid,
                crate::fmt::clean(&target.comm),
                now.map_or_else(|_| String::new(), |n| format!(", and its PID was reused{n}"))
            );
        }
        let cgroup = CpuGroup::of_pid(target.pid).map_err(|e| format!("{e:#}"));
        // A started command is still pintrace's fork here: its program is read after the exec.
        let (go, go_problem) = if launched.is_none() { read_go(target.pid) } else { (None, None) };
        if go.is_some() {
            probes.attach_go_lock(&exe_of(target.pid), target.pid);
        }
        let go_info = go.as_ref().map(GoInfo::of);
        let header = RecordHeader {
            pintrace_version: env!("CARGO_PKG_VERSION").to_string(),
            host: target::hostname(),
            kernel: target::kernel_release(),
            nr_cpus: target::nr_cpus(),
            target: target.clone(),
            clock,
            start_ns,
            probes: probe_records(&probes),
            syscalls: opts.syscalls,
            cgroup: cgroup.as_ref().ok().cloned(),
            go: go_info,
        };
        let mut session = Session {
            probes,
            tids,
            target,
            header,
            initial,
            launched,
            stats_fd: None,
            cgroup,
            go,
            go_problem,
            pending_go: None,
            released_exec: false,
            go_ms: HashMap::new(),
            go_threads_problem: None,
            go_states: HashMap::new(),
            go_ps: Vec::new(),
            go_sched_problem: None,
            pinned_ms: Vec::new(),
            others_named: std::collections::HashSet::new(),
        };
        if let Some(e) = session.gomaxprocs_event() {
            session.initial.push(Event { ts_ns: start_ns, ..e });
        }
        let ms = session.go_thread_events();
        session.initial.extend(ms.into_iter().map(|e| Event { ts_ns: start_ns, ..e }));
        // A first sample, so that a scheduler that cannot be read is said at the start.
        let sched = session.go_sched_events();
        session.initial.extend(sched.into_iter().map(|e| Event { ts_ns: start_ns, ..e }));
        Ok(session)
    }

    /// Warnings about probes that are missing or did not attach, and about
    /// the cgroup, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let cgroup = self.cgroup.as_ref().err().map(|e| format!("{e}; so no CPU quota or throttling figures"));
        let go = self
            .header
            .go
            .as_ref()
            .and_then(|g| g.gomaxprocs_problem.clone())
            .map(|p| format!("Go {}: {p}", self.header.go.as_ref().map_or("", |g| g.version.as_str())))
            .or_else(|| self.go_problem.clone());
        let go_threads = self
            .go_threads_problem
            .as_ref()
            .map(|p| format!("{p}; so which threads are pinned, and their roles, are unknown"));
        let go_sched =
            self.go_sched_problem.as_ref().map(|p| format!("{p}; so the goroutines waiting for a P are unknown"));
        let go_lock = match &self.probes.go_lock {
            Some(st) if !matches!(st, ProbeStatus::Attached | ProbeStatus::Disabled(_)) => Some(format!(
                "{GO_LOCK_PROBE} {st}; so LockOSThread calls are not seen (pinned threads still come from the M list)"
            )),
            _ => None,
        };
        let throttle = self.probes.throttle_flag.as_ref().err().filter(|_| self.cgroup.is_ok()).map(|e| {
            format!("{THROTTLE_FLAG}: {e}; so throttled waits count as run-queue latency (cgroup figures still shown)")
        });
        self.probes
            .statuses
            .iter()
            .filter_map(|(spec, st)| {
                let so = match st {
                    ProbeStatus::Attached | ProbeStatus::AttachedBtf | ProbeStatus::Off | ProbeStatus::Unneeded(_) => {
                        return None
                    }
                    // Asked for: not news.
                    ProbeStatus::Fallback(why) if why.contains(CLASSIC_FLAG) => return None,
                    ProbeStatus::Fallback(_) => "the same events, but every task's on the host pays for a trace record",
                    _ => spec.without,
                };
                Some(format!("{}:{} {st}; so {so}", spec.category, spec.name))
            })
            .chain(cgroup)
            .chain(go)
            .chain(go_threads)
            .chain(go_sched)
            .chain(go_lock)
            .chain(throttle)
            .collect()
    }

    /// Threads the target had when tracing started.
    pub fn threads_at_start(&self) -> usize {
        self.initial.iter().filter(|e| matches!(e.kind, EventKind::ThreadSeen { .. })).count()
    }

    pub fn attached(&self) -> usize {
        self.probes.statuses.iter().filter(|(_, s)| s.is_attached()).count()
    }

    pub fn take_ring(&mut self) -> Result<(RingBuf<MapData>, LostCounter)> {
        Ok((self.probes.take_ring()?, self.probes.take_lost()?))
    }

    /// Lets a started command exec now that tracing is attached; once it
    /// has, reads its program (name, command line, Go runtime) into the
    /// header, so that a recording's header has them from the start.
    pub fn release(&mut self) -> Result<()> {
        let Some(l) = &mut self.launched else { return Ok(()) };
        l.release()?;
        if let Ok(t) = target::resolve(self.target.pid) {
            self.target = t;
        }
        self.header.target = self.target.clone();
        let (go, problem) = read_go_after_exec(self.target.pid);
        self.install_go(go, problem);
        self.header.go = self.go_info();
        self.released_exec = true;
        if let Some(e) = self.gomaxprocs_event() {
            self.initial.push(e);
        }
        Ok(())
    }

    /// Whether the target still runs (a started command is reaped when it ends).
    pub fn alive(&mut self) -> bool {
        if let Some(l) = &mut self.launched {
            if l.try_wait().is_some() {
                return false;
            }
        }
        target::alive(self.target.pid)
    }

    /// Reads the target's name and command line again (after an exec), and
    /// starts reading its new program's Go runtime on a thread of its own
    /// (`poll_go` installs it): until then the target is not Go.
    pub fn refresh_target(&mut self) -> &Target {
        if std::mem::take(&mut self.released_exec) {
            return &self.target;
        }
        if let Ok(t) = target::resolve(self.target.pid) {
            self.target = t;
        }
        self.install_go(None, None);
        match &mut self.pending_go {
            // One reading at a time: the next starts when this one ends.
            Some((_, again)) => *again = true,
            None => {
                let pid = self.target.pid;
                let reader =
                    std::thread::Builder::new().name("pintrace-go".into()).spawn(move || GoProcess::attach(pid));
                match reader {
                    Ok(h) => self.pending_go = Some((h, false)),
                    Err(e) => self.go_problem = Some(format!("reading the new program's Go runtime: {e}")),
                }
            }
        }
        &self.target
    }

    /// Installs the Go runtime read after an exec, once the reading has
    /// ended; true when it did (the sink may want the new `go_info`).
    pub fn poll_go(&mut self) -> bool {
        let Some((reader, _)) = &self.pending_go else { return false };
        if !reader.is_finished() {
            return false;
        }
        let Some((reader, again)) = self.pending_go.take() else { return false };
        let result = reader.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the reader of the Go runtime panicked")));
        if again {
            // Another exec came while this one's program was read: read that one.
            self.refresh_target();
            return false;
        }
        let (go, problem) = classify(result);
        self.install_go(go, problem);
        true
    }

    /// Makes `go` the target's Go runtime, forgetting what the last one said.
    fn install_go(&mut self, go: Option<GoProcess>, problem: Option<String>) {
        self.go = go;
        self.go_problem = problem;
        self.go_ms.clear();
        self.go_threads_problem = None;
        self.go_states.clear();
        self.go_ps.clear();
        self.go_sched_problem = None;
        self.pinned_ms.clear();
        if self.go.is_some() {
            self.probes.attach_go_lock(&exe_of(self.target.pid), self.target.pid);
            self.header.probes = probe_records(&self.probes);
        }
    }

    /// The Go target's GOMAXPROCS now, as an event (None: not Go, or unreadable).
    pub fn gomaxprocs_event(&self) -> Option<Event> {
        let value = self.go.as_ref()?.gomaxprocs().ok()?;
        Some(Event { ts_ns: target::monotonic_ns(), cpu: NO_CPU, kind: EventKind::GoMaxProcs { value } })
    }

    /// The Go runtime's M list now, as `GoThread` events for the Ms that are
    /// new or changed since the last call (none: not Go, or unreadable, and
    /// then `go_threads_problem` says why).
    pub fn go_thread_events(&mut self) -> Vec<Event> {
        let Some(go) = &self.go else { return Vec::new() };
        let ms = match go.threads() {
            Ok(ms) => ms,
            Err(e) => {
                self.go_threads_problem.get_or_insert_with(|| format!("Go M list: {e}"));
                return Vec::new();
            }
        };
        self.go_threads_problem = None;
        if !self.read_before_exit(ms.iter().map(|m| m.tid)) {
            return Vec::new();
        }
        let ts_ns = target::monotonic_ns();
        let mut out = Vec::new();
        let mut seen = HashMap::with_capacity(ms.len());
        let mut states = HashMap::with_capacity(ms.len());
        for m in &ms {
            let (goid, func) =
                m.goroutine.as_ref().map_or((0, None), |g| (g.id, g.function.as_deref().map(ustr::ustr)));
            let kind = EventKind::GoState { tid: m.tid, state: m.state, goid, func };
            if self.go_states.get(&m.tid) != Some(&kind) {
                out.push(Event { ts_ns, cpu: NO_CPU, kind });
            }
            states.insert(m.tid, kind);
        }
        self.go_states = states;
        self.pinned_ms = ms
            .iter()
            .filter(|m| m.locked_ext > 0 && m.role != GoRole::Signal)
            .take(MAX_SAMPLED_PINNED)
            .map(|m| (m.tid, m.m_addr))
            .collect();
        for m in ms {
            let kind = EventKind::GoThread {
                tid: m.tid,
                role: m.role,
                locked_ext: m.locked_ext,
                locked_int: m.locked_int,
                locked_g: m.locked_g_start.as_deref().map(ustr::ustr),
            };
            if self.go_ms.get(&m.tid) != Some(&kind) {
                out.push(Event { ts_ns, cpu: NO_CPU, kind });
            }
            seen.insert(m.tid, kind);
        }
        self.go_ms = seen;
        out
    }

    /// Whether what was just read of the target's memory is the process's:
    /// one of `tids` (its Go threads; the leader if none are known) still
    /// runs, not exiting. A process on its way out has its memory torn down
    /// while it is read, and pages read back as zeros (its Ms would read as
    /// idle, its scheduler as empty).
    fn read_before_exit(&self, tids: impl Iterator<Item = u32>) -> bool {
        let pid = self.target.pid;
        let mut tids = tids.peekable();
        if tids.peek().is_none() {
            return target::thread_running(pid, pid);
        }
        tids.any(|tid| target::thread_running(pid, tid))
    }

    /// Whether the target is a Go program whose scheduler may be read.
    pub fn is_go(&self) -> bool {
        self.go.is_some()
    }

    /// The Go scheduler now: a `GoP` event for each P that changed, then a
    /// `GoSched` (every sample: the model averages them). None: not Go, or
    /// unreadable (then `go_sched_problem` says why).
    pub fn go_sched_events(&mut self) -> Vec<Event> {
        let Some(go) = &self.go else { return Vec::new() };
        let s = match go.sched() {
            Ok(s) => s,
            Err(e) => {
                self.go_sched_problem.get_or_insert_with(|| format!("Go scheduler: {e}"));
                return Vec::new();
            }
        };
        self.go_sched_problem = None;
        if !self.read_before_exit(self.go_ms.keys().copied()) {
            return Vec::new();
        }
        let ts_ns = target::monotonic_ns();
        let mut out = Vec::new();
        for (i, p) in s.ps.iter().enumerate() {
            let changed =
                self.go_ps.get(i).is_none_or(|q| (q.status, q.runq, q.runnext) != (p.status, p.runq, p.runnext));
            if changed {
                let kind = EventKind::GoP { p: i as u32, status: p.status, runq: p.runq, runnext: p.runnext };
                out.push(Event { ts_ns, cpu: NO_CPU, kind });
            }
        }
        let kind = EventKind::GoSched {
            idle_ps: s.idle_ps,
            spinning: s.spinning_threads,
            idle_threads: s.idle_threads,
            runqueue: s.runqueue,
            goroutines: s.goroutines,
            nprocs: u32::try_from(s.ps.len()).unwrap_or(u32::MAX),
        };
        out.push(Event { ts_ns, cpu: NO_CPU, kind });
        self.go_ps = s.ps;
        // The pinned threads' states, more often than the whole M list.
        for (tid, state) in go.states_at(&self.pinned_ms) {
            let Some((state, g)) = state else { continue };
            let (goid, func) = g.map_or((0, None), |g| (g.id, g.function.as_deref().map(ustr::ustr)));
            let kind = EventKind::GoState { tid, state, goid, func };
            if self.go_states.get(&tid) != Some(&kind) {
                out.push(Event { ts_ns, cpu: NO_CPU, kind });
                self.go_states.insert(tid, kind);
            }
        }
        out
    }

    /// Names the other processes that `events`' switches had on their
    /// other side, once each (read from /proc; at most 64 new per batch,
    /// and 4096 in all, whatever the host runs).
    pub fn name_others(&mut self, events: &[Event]) -> Vec<Event> {
        const PER_BATCH: usize = 64;
        const MAX: usize = 4096;
        let mut out = Vec::new();
        for e in events {
            let EventKind::Switch { other, .. } = e.kind else { continue };
            let pid = other & pintrace_common::OTHER_ID_MASK;
            if pid == 0 || out.len() >= PER_BATCH || self.others_named.len() >= MAX {
                continue;
            }
            if !self.others_named.insert(pid) {
                continue;
            }
            let comm = target::thread_comm(pid, pid);
            let kthread = other & pintrace_common::OTHER_KTHREAD != 0 || target::is_kernel_thread(pid);
            out.push(Event { ts_ns: e.ts_ns, cpu: NO_CPU, kind: EventKind::OtherProcess { pid, kthread, comm } });
        }
        out
    }

    /// Names the callers of `runtime.LockOSThread` in `events` from the
    /// target's symbol table (the kernel records only the return address).
    pub fn name_go_locks(&self, events: &mut [Event]) {
        let Some(go) = &self.go else { return };
        for e in events {
            if let EventKind::GoLock { caller, func, .. } = &mut e.kind {
                if func.is_none() {
                    // A return address: the call is just before it.
                    *func = go.function_at(caller.saturating_sub(1)).map(|f: &str| -> FnName { ustr::ustr(f) });
                }
            }
        }
    }

    /// What is known of the Go runtime (after an exec: of the new program).
    pub fn go_info(&self) -> Option<GoInfo> {
        self.go.as_ref().map(GoInfo::of)
    }

    /// The target's CPU cgroup read again, as an event when it changed: the
    /// process was moved to another group, a quota on its way to the root
    /// changed (a pod resize), or its threads' affinities did. A group that
    /// cannot be read now (the process is exiting) keeps the last one.
    pub fn cgroup_event(&mut self) -> Option<Event> {
        let pid = self.target.pid;
        if !target::leader_running(pid) {
            return None;
        }
        let now = CpuGroup::of_pid(pid).ok().filter(|_| target::leader_running(pid))?;
        if self.cgroup.as_ref().is_ok_and(|g| g.same_limit(&now)) {
            return None;
        }
        let kind = now.limit_event();
        self.cgroup = Ok(now);
        Some(Event { ts_ns: target::monotonic_ns(), cpu: NO_CPU, kind })
    }

    /// The cgroup's throttling counters now, as an event (None without a cgroup).
    pub fn throttle_event(&self) -> Option<Event> {
        let s = self.cgroup.as_ref().ok()?.stat()?;
        Some(Event {
            ts_ns: target::monotonic_ns(),
            cpu: NO_CPU,
            kind: EventKind::Throttle {
                nr_periods: s.nr_periods,
                nr_throttled: s.nr_throttled,
                throttled_ns: s.throttled_ns,
            },
        })
    }

    pub fn tids(&self) -> &TidSet {
        &self.tids
    }

    /// Turns the kernel's per-program run-time statistics on or off
    /// (BPF_ENABLE_STATS: two clock reads more per program run while on).
    pub fn set_bpf_stats(&mut self, on: bool) -> Result<()> {
        if !on {
            self.stats_fd = None;
        } else if self.stats_fd.is_none() {
            let fd = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("turning on BPF run-time statistics")?;
            self.stats_fd = Some(fd);
        }
        Ok(())
    }

    /// (run time ns, runs) summed over the attached programs, while statistics are on.
    pub fn bpf_usage(&self) -> Option<(u64, u64)> {
        self.stats_fd.as_ref()?;
        self.probes.run_stats().ok()
    }
}

/// The Go runtime of process `pid`, or why a Go program's cannot be read
/// (nothing for a program that is not Go).
fn read_go(pid: u32) -> (Option<GoProcess>, Option<String>) {
    classify(GoProcess::attach(pid))
}

/// How long a program that has just exec'd may take to be mapped.
const EXEC_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The Go runtime of a process whose exec has just begun: the executable is
/// already the new one, but its segments are mapped a moment later, so
/// the attach is tried again (the executable read once) until its
/// variables can be read, for `EXEC_SETTLE` at most.
fn read_go_after_exec(pid: u32) -> (Option<GoProcess>, Option<String>) {
    let mut binary = match crate::goruntime::GoBinary::from_pid(pid) {
        Ok(b) => b,
        Err(e) => return classify(Err(e.into())),
    };
    let deadline = std::time::Instant::now() + EXEC_SETTLE;
    loop {
        let late = std::time::Instant::now() >= deadline || !target::alive(pid);
        match GoProcess::attach_binary(pid, binary) {
            Ok(go) if late || !matches!(go.gomaxprocs(), Err(GoError::Memory { .. })) => return (Some(go), None),
            Ok(go) => binary = go.into_binary(),
            Err(failed) if late => return classify(Err(failed.1)),
            Err(failed) => binary = failed.0,
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn classify(result: Result<GoProcess>) -> (Option<GoProcess>, Option<String>) {
    match result {
        Ok(go) => (Some(go), None),
        Err(e) if matches!(e.downcast_ref::<GoError>(), Some(GoError::NotGo { .. })) => (None, None),
        Err(e) => {
            // A GoError says its cause itself.
            let text = match e.downcast_ref::<GoError>() {
                Some(g) => g.to_string(),
                None => format!("{e:#}"),
            };
            (None, Some(format!("Go runtime not read: {}", crate::fmt::clean(&text))))
        }
    }
}

/// Pinned threads whose state is sampled with the scheduler (ten times a
/// second): the first this many of the M list.
const MAX_SAMPLED_PINNED: usize = 16;

/// The executable of `pid`, through /proc (valid across mount namespaces).
fn exe_of(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/exe"))
}

/// The probes' statuses as the record header keeps them.
fn probe_records(probes: &Probes) -> Vec<ProbeRecord> {
    let tracepoints = probes
        .statuses
        .iter()
        .map(|(s, st)| ProbeRecord { name: format!("{}:{}", s.category, s.name), status: st.to_string() });
    let flag = ProbeRecord {
        name: THROTTLE_FLAG.into(),
        status: match &probes.throttle_flag {
            Ok(offset) => format!("read at offset {offset}"),
            Err(e) => format!("unavailable: {e}"),
        },
    };
    let waits = ProbeRecord {
        name: WAITS_FIELDS.into(),
        status: match &probes.waits {
            Ok(()) => "read by sched_switch".into(),
            Err(e) => format!("not read: {e}"),
        },
    };
    let uprobe = probes.go_lock.as_ref().map(|st| ProbeRecord { name: GO_LOCK_PROBE.into(), status: st.to_string() });
    tracepoints.chain([flag, waits]).chain(uprobe).collect()
}

/// After attach: adds the threads created between the listing and the
/// attach (the kernel adds those created later itself), drops those listed
/// that died before the attach (nothing else would clear their bits, and a
/// new task reusing the TID would be taken for the target's), and returns
/// one `ThreadSeen` at `start_ns` per thread that existed at the start.
fn reconcile(pid: u32, tids: &TidSet, before: &BTreeSet<u32>, start_ns: u64) -> Result<Vec<Event>> {
    let now = target::threads(pid).unwrap_or_default();
    let mut seen: BTreeSet<u32> = before.clone();
    for &tid in &now {
        if !tids.contains(tid)? {
            tids.insert(tid)?;
            seen.insert(tid);
        }
    }
    for &tid in before.difference(&now) {
        // Exited after the attach: the kernel cleared it at its final switch
        // and recorded its exit. Exited before: clear it here.
        if tids.contains(tid)? {
            tids.remove(tid)?;
            seen.remove(&tid);
        }
    }
    Ok(seen
        .into_iter()
        .map(|tid| Event {
            ts_ns: start_ns,
            cpu: NO_CPU,
            kind: EventKind::ThreadSeen { tid, tgid: pid, comm: target::thread_comm(pid, tid) },
        })
        .collect())
}
