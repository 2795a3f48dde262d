//! Loading and attaching the kernel programs: the only module that touches `aya::Ebpf`.
use std::{
    fmt, fs,
    os::fd::{AsFd as _, AsRawFd as _},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{bail, Context as _, Result};
use aya::{
    maps::{Array, Map, MapData, PerCpuArray, RingBuf},
    programs::{
        uprobe::{UProbeLinkId, UProbeScope},
        BtfTracePoint, TracePoint, UProbe,
    },
    Btf, Ebpf, EbpfLoader,
};
use pintrace_common::{names, tp};

/// The kernel programs, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pintrace"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing works without it.
    Required,
    /// Attached by default; its absence is reported and tracing goes on.
    Default,
    /// A `syscalls:` tracepoint: slows every syscall of every process, so only with `--syscalls`.
    Syscall,
}

/// One tracepoint program and the record layout it was written against.
pub struct ProbeSpec {
    pub program: &'static str,
    /// The BTF tracepoint (`tp_btf`) program for the same event, for those
    /// that fire for every task on the host: used when the kernel's BTF
    /// allows, with `program` as the fallback.
    pub btf_program: Option<&'static str>,
    pub category: &'static str,
    pub name: &'static str,
    /// The fields the kernel program reads (`pintrace_common::tp`).
    pub fields: &'static [pintrace_common::Field],
    pub need: Need,
    /// What the user does not get without it.
    pub without: &'static str,
    /// Only tells when a wait for a CPU starts: not attached where
    /// `sched_switch` reads the kernel's own wait accounting.
    pub wait_start: bool,
}

pub const PROBES: &[ProbeSpec] = &[
    ProbeSpec {
        program: "sched_switch",
        btf_program: Some("sched_switch_btf"),
        category: "sched",
        name: "sched_switch",
        fields: tp::sched_switch::FIELDS,
        need: Need::Required,
        without: "nothing: on-CPU time, switches and run-queue latency all come from it",
        wait_start: false,
    },
    ProbeSpec {
        program: "sched_migrate_task",
        btf_program: Some("sched_migrate_task_btf"),
        category: "sched",
        name: "sched_migrate_task",
        fields: tp::sched_migrate_task::FIELDS,
        need: Need::Default,
        without: "no CPU migration counts",
        wait_start: false,
    },
    ProbeSpec {
        program: "sched_wakeup",
        btf_program: Some("sched_wakeup_btf"),
        category: "sched",
        name: "sched_wakeup",
        fields: tp::sched_wakeup::FIELDS,
        need: Need::Default,
        without: "run-queue latency only after preemptions, not after wake-ups",
        wait_start: true,
    },
    ProbeSpec {
        program: "sched_wakeup_new",
        btf_program: Some("sched_wakeup_new_btf"),
        category: "sched",
        name: "sched_wakeup_new",
        fields: tp::sched_wakeup::FIELDS,
        need: Need::Default,
        without: "no run-queue latency for a new thread's first run",
        wait_start: true,
    },
    ProbeSpec {
        program: "signal_generate",
        btf_program: None,
        category: "signal",
        name: "signal_generate",
        fields: tp::signal_generate::FIELDS,
        need: Need::Default,
        without: "no SIGURG (Go preemption) or other signal counts",
        wait_start: false,
    },
    ProbeSpec {
        program: "task_newtask",
        btf_program: None,
        category: "task",
        name: "task_newtask",
        fields: tp::task_newtask::FIELDS,
        need: Need::Default,
        without: "thread creations are not counted and threads created during tracing are not traced",
        wait_start: false,
    },
    ProbeSpec {
        program: "sched_process_exit",
        btf_program: None,
        category: "sched",
        name: "sched_process_exit",
        fields: tp::sched_process_exit::FIELDS,
        need: Need::Default,
        without: "thread exits and lifetimes are not counted; the target's exit is noticed by polling /proc",
        wait_start: false,
    },
    ProbeSpec {
        program: "task_rename",
        btf_program: None,
        category: "task",
        name: "task_rename",
        fields: tp::task_rename::FIELDS,
        need: Need::Default,
        without: "threads keep the names they had when they were first seen",
        wait_start: false,
    },
    ProbeSpec {
        program: "sched_process_exec",
        btf_program: None,
        category: "sched",
        name: "sched_process_exec",
        fields: tp::sched_process_exec::FIELDS,
        need: Need::Default,
        without: "an exec is not noticed: the target keeps the name and command line it had at the start",
        wait_start: false,
    },
    ProbeSpec {
        program: "sys_enter_tgkill",
        btf_program: None,
        category: "syscalls",
        name: "sys_enter_tgkill",
        fields: tp::sys_enter_tgkill::FIELDS,
        need: Need::Syscall,
        without: "no count of tgkill calls (signals are still counted by signal_generate)",
        wait_start: false,
    },
    ProbeSpec {
        program: "sys_exit_clone",
        btf_program: None,
        category: "syscalls",
        name: "sys_exit_clone",
        fields: tp::sys_exit_clone::FIELDS,
        need: Need::Syscall,
        without: "no count of clone calls (threads are still counted by task_newtask)",
        wait_start: false,
    },
    ProbeSpec {
        program: "sys_exit_clone3",
        btf_program: None,
        category: "syscalls",
        name: "sys_exit_clone3",
        fields: tp::sys_exit_clone::FIELDS,
        need: Need::Syscall,
        without: "no count of clone3 calls (threads are still counted by task_newtask)",
        wait_start: false,
    },
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeStatus {
    /// A classic tracepoint, the only kind this probe comes as.
    Attached,
    /// A BTF tracepoint: no trace record is built for it.
    AttachedBtf,
    /// A classic tracepoint in place of the BTF one, and why.
    Fallback(String),
    /// Not attached: what it would tell comes from elsewhere (and where).
    Unneeded(&'static str),
    /// A syscall probe left off (no `--syscalls`).
    Off,
    /// Turned off on the command line (the flag that did it).
    Disabled(&'static str),
    /// The tracepoint does not exist on this kernel.
    Missing,
    /// The tracepoint's record differs from what the program reads.
    Layout(String),
    Failed(String),
}

impl ProbeStatus {
    pub fn is_attached(&self) -> bool {
        matches!(self, ProbeStatus::Attached | ProbeStatus::AttachedBtf | ProbeStatus::Fallback(_))
    }

    /// Attached, or what it tells comes from elsewhere.
    pub fn works(&self) -> bool {
        self.is_attached() || matches!(self, ProbeStatus::Unneeded(_))
    }
}

impl fmt::Display for ProbeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeStatus::Attached => f.write_str("attached"),
            ProbeStatus::AttachedBtf => f.write_str("attached (tp_btf)"),
            ProbeStatus::Fallback(why) => write!(f, "attached (classic tracepoint: {why})"),
            ProbeStatus::Unneeded(instead) => write!(f, "not needed: {instead}"),
            ProbeStatus::Off => f.write_str("off (enable with --syscalls)"),
            ProbeStatus::Disabled(flag) => write!(f, "off ({flag})"),
            ProbeStatus::Missing => f.write_str("missing: no such tracepoint on this kernel"),
            ProbeStatus::Layout(why) => write!(f, "not attached: record layout differs ({why})"),
            ProbeStatus::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Where tracefs is mounted, or a one-line remedy. The tracepoint loader
/// (aya) looks only at the two usual places; a mount elsewhere, found in
/// /proc/self/mountinfo, is named in the error.
pub fn tracefs() -> Result<PathBuf> {
    const USUAL: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    let mut denied = None;
    for root in USUAL.map(PathBuf::from) {
        match fs::metadata(root.join("events")) {
            Ok(m) if m.is_dir() => return Ok(root),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                denied.get_or_insert(root);
            }
            _ => {}
        }
    }
    if let Some(root) = denied {
        bail!(
            "tracefs is mounted at {} but this user may not read it (CAP_BPF and CAP_PERFMON do not open root's \
             directory): run pintrace with sudo, or also grant CAP_DAC_OVERRIDE",
            root.display()
        );
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some(elsewhere) = tracefs_mounts(&mountinfo).into_iter().find(|r| r.join("events").is_dir()) {
        bail!(
            "tracefs is mounted at {}, but tracepoints are attached through {} or {}: run `mount -t tracefs \
             tracefs /sys/kernel/tracing` as root",
            elsewhere.display(),
            USUAL[0],
            USUAL[1]
        );
    }
    bail!("tracefs is not mounted: run `mount -t tracefs tracefs /sys/kernel/tracing` as root")
}

/// Mount points of tracefs in a mountinfo text, and the `tracing` directory
/// of each debugfs (where older systems find it), in order.
fn tracefs_mounts(mountinfo: &str) -> Vec<PathBuf> {
    crate::mountinfo::parse(mountinfo)
        .into_iter()
        .filter_map(|m| match m.fstype.as_str() {
            "tracefs" => Some(m.point),
            "debugfs" => Some(m.point.join("tracing")),
            _ => None,
        })
        .collect()
}

/// The oldest kernel pintrace's programs load on: ring buffers (5.8) and
/// the BPF atomic OR and AND of the TID set (5.12).
pub const MIN_KERNEL: (u32, u32) = (5, 12);

/// Whether a kernel release ("6.18.44-fc-v669") is at least [`MIN_KERNEL`];
/// None if it cannot be read.
pub fn kernel_supported(release: &str) -> Option<bool> {
    let mut parts = release.split(['.', '-', '+']);
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor) >= MIN_KERNEL)
}

/// Checks the tracepoint's `format` file against the offsets the program reads.
fn check_layout(tracefs: &Path, spec: &ProbeSpec) -> Result<(), ProbeStatus> {
    let path = tracefs.join("events").join(spec.category).join(spec.name).join("format");
    let Ok(format) = fs::read_to_string(&path) else {
        return Err(ProbeStatus::Missing);
    };
    for &pintrace_common::Field { name: field, offset, size } in spec.fields {
        let found = format.lines().find_map(|line| {
            let decl = line.trim().strip_prefix("field:")?.split(';').next()?;
            let name = decl.split_whitespace().last()?.split('[').next()?;
            if name != field {
                return None;
            }
            let num = |key: &str| -> Option<usize> {
                line.split(';').find_map(|p| p.trim().strip_prefix(key)?.trim().parse().ok())
            };
            Some((num("offset:")?, num("size:")?))
        });
        match found {
            Some((o, s)) if o == offset && s == size => {}
            Some((o, s)) => {
                return Err(ProbeStatus::Layout(format!("{field} at {o} size {s}, expected {offset} size {size}")))
            }
            None => return Err(ProbeStatus::Layout(format!("no field {field}"))),
        }
    }
    Ok(())
}

pub struct Options {
    /// Ring-buffer size in bytes (a power of two, at least a page). The
    /// kernel wakes the reader when a quarter of it is used.
    pub ring_bytes: u32,
    pub syscalls: bool,
    /// The uprobe on a Go target's `runtime.LockOSThread`.
    pub uprobes: bool,
    /// Classic tracepoints only, even where BTF tracepoints would work.
    pub classic: bool,
    /// The wake-up programs even where `sched_switch` reads each wait from
    /// the kernel's `sched_info`.
    pub wakeups: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { ring_bytes: 16 << 20, syscalls: false, uprobes: true, classic: false, wakeups: false }
    }
}

/// What `--wakeup-probes` is called where a status names it.
pub const WAKEUPS_FLAG: &str = "--wakeup-probes";

/// What `--classic-tracepoints` is called where a probe's status names it.
pub const CLASSIC_FLAG: &str = "--classic-tracepoints";

/// The loaded object with its programs attached (they detach when this is dropped).
pub struct Probes {
    ebpf: Ebpf,
    /// Whether the BTF tracepoints can be used (their offsets were
    /// resolved), or why not.
    tp_btf: Result<(), String>,
    pub statuses: Vec<(&'static ProbeSpec, ProbeStatus)>,
    syscalls: bool,
    uprobes: bool,
    tracefs: PathBuf,
    /// Where `task_struct.throttled` is, or why switch-outs cannot be marked throttled.
    pub throttle_flag: Result<u32, String>,
    /// Whether the BTF `sched_switch` reads the next thread's wait from its
    /// `sched_info` (then the wake-up programs are not attached), or why not.
    pub waits: Result<(), String>,
    /// The uprobe on a Go target's `runtime.LockOSThread` (None: not attempted).
    pub go_lock: Option<ProbeStatus>,
    go_lock_link: Option<UProbeLinkId>,
}

/// The uprobe's name in `check`, warnings and the record header.
pub const GO_LOCK_PROBE: &str = "uprobe:runtime.LockOSThread";
/// The per-task throttle flag's name, likewise.
pub const THROTTLE_FLAG: &str = "btf:task_struct.throttled";
/// The run-queue accounting `sched_switch` reads, likewise.
pub const WAITS_FIELDS: &str = "btf:task_struct.sched_info";
/// What a wake-up probe's status says when it is not needed.
const WAITS_INSTEAD: &str = "sched_switch reads each wait for a CPU from task_struct.sched_info";

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Says whether this process may load BPF programs, with a remedy if not.
pub fn check_privileges() -> Result<()> {
    if is_root() {
        return Ok(());
    }
    // CAP_PERFMON (38) and CAP_BPF (39), or CAP_SYS_ADMIN (21).
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if has(21) || (has(38) && has(39)) {
        return Ok(());
    }
    bail!("tracing needs root (or CAP_BPF, CAP_PERFMON and CAP_DAC_OVERRIDE): run it with sudo")
}

impl Probes {
    /// Loads the object; nothing runs until `attach_all`.
    pub fn load(opts: &Options) -> Result<Probes> {
        check_privileges()?;
        let tracefs = tracefs()?;
        if OBJECT.is_empty() {
            bail!("this pintrace was built with AYA_BUILD_SKIP=1 and has no kernel programs: rebuild it without it");
        }
        let kernel_btf = crate::btf::Btf::from_sys_fs();
        let throttle_flag =
            kernel_btf.as_ref().map_err(Clone::clone).and_then(crate::btf::task_throttled).map(|m| m.offset);
        let offsets = match &kernel_btf {
            _ if opts.classic => Err(format!("{CLASSIC_FLAG} given")),
            Ok(btf) => crate::btf::sched_offsets(btf),
            Err(e) => Err(e.clone()),
        };
        let offset = |f: fn(&crate::btf::TaskOffsets) -> u32| u64::from(offsets.as_ref().map_or(0, f));
        let waits = match (&offsets, &kernel_btf) {
            (Err(e), _) => Err(e.clone()),
            _ if opts.wakeups => Err(format!("{WAKEUPS_FLAG} given")),
            (Ok(_), Ok(btf)) => crate::btf::wait_offsets(btf),
            (Ok(_), Err(e)) => Err(e.clone()),
        };
        let wait = |f: fn(&crate::btf::WaitOffsets) -> u32| u64::from(waits.as_ref().map_or(0, f));
        let ebpf = EbpfLoader::new()
            .map_max_entries(names::EVENTS, opts.ring_bytes)
            .override_global(names::WAKEUP_BYTES, &u64::from(opts.ring_bytes / 4), true)
            .override_global(names::TASK_THROTTLED_OFFSET, &u64::from(*throttle_flag.as_ref().unwrap_or(&0)), true)
            .override_global(names::TASK_PID_OFFSET, &offset(|o| o.pid), true)
            .override_global(names::TASK_EXIT_STATE_OFFSET, &offset(|o| o.exit_state), true)
            .override_global(names::TASK_TGID_OFFSET, &offset(|o| o.tgid), true)
            .override_global(names::TASK_FLAGS_OFFSET, &offset(|o| o.flags), true)
            .override_global(names::TASK_CPU_OFFSET, &offset(|o| o.cpu), true)
            .override_global(names::TASK_RUN_DELAY_OFFSET, &wait(|w| w.run_delay), true)
            .override_global(names::TASK_LAST_QUEUED_OFFSET, &wait(|w| w.last_queued), true)
            .override_global(names::TASK_CFS_RQ_OFFSET, &wait(|w| w.cfs_rq), true)
            .override_global(names::CFS_RQ_RQ_OFFSET, &wait(|w| w.rq), true)
            .override_global(names::RQ_CLOCK_OFFSET, &wait(|w| w.clock), true)
            .load(OBJECT)
            .with_context(|| {
                let release = crate::target::kernel_release();
                let (major, minor) = MIN_KERNEL;
                format!("loading pintrace's kernel programs (needs root and kernel {major}.{minor} or later; this is {release})")
            })?;
        let tp_btf = offsets.map(|_| ());
        Ok(Probes {
            ebpf,
            tp_btf,
            statuses: Vec::new(),
            syscalls: opts.syscalls,
            uprobes: opts.uprobes,
            tracefs,
            throttle_flag,
            waits: waits.map(|_| ()),
            go_lock: None,
            go_lock_link: None,
        })
    }

    /// Attaches every probe it can; fails only if the required one cannot.
    /// aya's parsed BTF (some 16 MiB) is needed only here: it is dropped at
    /// the end, not kept for the whole session.
    pub fn attach_all(&mut self) -> Result<()> {
        // aya's own reading of the BTF, which loading a tp_btf program needs.
        let tp_btf = self.tp_btf.clone().and_then(|()| Btf::from_sys_fs().map_err(|e| format!("reading BTF: {e}")));
        for spec in PROBES {
            let status = if spec.need == Need::Syscall && !self.syscalls {
                ProbeStatus::Off
            } else if spec.wait_start && self.waits.is_ok() {
                ProbeStatus::Unneeded(WAITS_INSTEAD)
            } else {
                self.attach(spec, &tp_btf)
            };
            if spec.name == "sched_switch" && status != ProbeStatus::AttachedBtf && self.waits.is_ok() {
                // Only the BTF program reads sched_info: the wake-ups it replaces are needed after all.
                self.waits = Err(format!("sched_switch is {status}"));
            }
            if spec.need == Need::Required && !status.is_attached() {
                bail!("tracepoint {}:{} is required and {status}", spec.category, spec.name);
            }
            self.statuses.push((spec, status));
        }
        Ok(())
    }

    /// The BTF tracepoint where there is one and it works, else the classic one.
    fn attach(&mut self, spec: &ProbeSpec, tp_btf: &Result<Btf, String>) -> ProbeStatus {
        let Some(btf_program) = spec.btf_program else {
            return match check_layout(&self.tracefs, spec) {
                Ok(()) => self.attach_classic(spec),
                Err(status) => status,
            };
        };
        let why = match tp_btf {
            Ok(btf) => match attach_btf(&mut self.ebpf, btf_program, spec.name, btf) {
                Ok(()) => return ProbeStatus::AttachedBtf,
                Err(e) => format!("tp_btf failed: {e:#}"),
            },
            Err(why) => why.clone(),
        };
        match check_layout(&self.tracefs, spec) {
            Ok(()) => match self.attach_classic(spec) {
                ProbeStatus::Attached => ProbeStatus::Fallback(why),
                other => other,
            },
            Err(status) => status,
        }
    }

    fn attach_classic(&mut self, spec: &ProbeSpec) -> ProbeStatus {
        let result = (|| -> Result<()> {
            let program: &mut TracePoint = self
                .ebpf
                .program_mut(spec.program)
                .with_context(|| format!("program {} is not in the object", spec.program))?
                .try_into()?;
            program.load()?;
            program.attach(spec.category, spec.name)?;
            Ok(())
        })();
        match result {
            Ok(()) => ProbeStatus::Attached,
            Err(e) => ProbeStatus::Failed(format!("{e:#}")),
        }
    }

    /// Puts the entry uprobe on `runtime.LockOSThread` of the executable
    /// `exe` of process `pid`, for that process only. Replaces an earlier
    /// attachment (the target exec'd). Never fails the trace: the status says
    /// what happened (`go_lock`), and pinning is still read from the
    /// runtime's M list.
    pub fn attach_go_lock(&mut self, exe: &Path, pid: u32) {
        if !self.uprobes {
            self.go_lock = Some(ProbeStatus::Disabled("--no-uprobes"));
            return;
        }
        let result = (|| -> Result<UProbeLinkId> {
            let Some(pid) = std::num::NonZeroU32::new(pid) else { bail!("no process") };
            let program: &mut UProbe = self
                .ebpf
                .program_mut(names::GO_LOCK_PROGRAM)
                .context("program go_lock_os_thread is not in the object")?
                .try_into()?;
            if let Some(old) = self.go_lock_link.take() {
                program.detach(old).context("detaching the uprobe from the previous program")?;
            }
            if program.fd().is_err() {
                program.load().context("loading a uprobe program")?;
            }
            program
                .attach("runtime.LockOSThread", exe, UProbeScope::OneProcess(pid))
                .with_context(|| format!("attaching to runtime.LockOSThread in {}", exe.display()))
        })();
        self.go_lock = Some(match result {
            Ok(link) => {
                self.go_lock_link = Some(link);
                ProbeStatus::Attached
            }
            Err(e) => ProbeStatus::Failed(format!("{e:#}")),
        });
    }

    /// Attaches the self-test uprobe to a function of this binary, calls it
    /// `calls` times, and returns how many calls the kernel program saw.
    pub fn uprobe_selftest(&mut self, calls: u64) -> Result<u64> {
        let exe = fs::read_link("/proc/self/exe").context("finding this program's executable")?;
        let program: &mut UProbe = self
            .ebpf
            .program_mut(names::UPROBE_SELFTEST_PROGRAM)
            .context("program uprobe_selftest is not in the object")?
            .try_into()?;
        program.load().context("loading a uprobe program")?;
        program
            .attach("pintrace_uprobe_selftest", &exe, UProbeScope::CallingProcess)
            .context("attaching a uprobe to pintrace_uprobe_selftest")?;
        for i in 0..calls {
            std::hint::black_box(pintrace_uprobe_selftest(std::hint::black_box(i)));
        }
        let hits: Array<&MapData, u64> =
            Array::try_from(self.ebpf.map(names::UPROBE_HITS).context("map UPROBE_HITS is not in the object")?)?;
        Ok(hits.get(&0, 0)?)
    }

    /// (run time ns, runs) of the attached programs, from the kernel's
    /// statistics (zero unless BPF_ENABLE_STATS or kernel.bpf_stats_enabled is on).
    pub fn run_stats(&self) -> Result<(u64, u64)> {
        let tracepoints = self.statuses.iter().filter_map(|(s, st)| match st {
            ProbeStatus::AttachedBtf => s.btf_program,
            st if st.is_attached() => Some(s.program),
            _ => None,
        });
        let uprobe = self.go_lock_link.is_some().then_some("go_lock_os_thread");
        let (mut ns, mut runs) = (0, 0);
        for name in tracepoints.chain(uprobe) {
            let program = self.ebpf.program(name).with_context(|| format!("program {name}"))?;
            let fd = program.fd()?.as_fd().as_raw_fd();
            let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).context("reading a program's fdinfo")?;
            let field = |key: &str| -> u64 {
                info.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
            };
            ns += field("run_time_ns:");
            runs += field("run_cnt:");
        }
        Ok((ns, runs))
    }

    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self.ebpf.take_map(names::EVENTS).context("ring buffer EVENTS is not in the object")?;
        Ok(RingBuf::try_from(map)?)
    }

    pub fn take_lost(&mut self) -> Result<LostCounter> {
        let map = self.ebpf.take_map(names::LOST).context("map LOST is not in the object")?;
        Ok(LostCounter(PerCpuArray::try_from(map)?))
    }

    pub fn take_tids(&mut self) -> Result<TidSet> {
        match self.ebpf.take_map(names::TIDS).context("map TIDS is not in the object")? {
            Map::Array(data) => TidSet::map(data),
            _ => bail!("map TIDS is not an array"),
        }
    }
}

fn attach_btf(ebpf: &mut Ebpf, program: &str, tracepoint: &str, btf: &Btf) -> Result<()> {
    let program: &mut BtfTracePoint =
        ebpf.program_mut(program).with_context(|| format!("program {program} is not in the object"))?.try_into()?;
    program.load(tracepoint, btf)?;
    program.attach()?;
    Ok(())
}

/// The function `pintrace check` puts a uprobe on.
#[no_mangle]
#[inline(never)]
pub extern "C" fn pintrace_uprobe_selftest(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_add(1)
}

/// Whether the kernel's BTF can be read and parsed (pintrace does not need it).
pub fn btf_status() -> String {
    match Btf::from_sys_fs() {
        Ok(_) => "present and parses (/sys/kernel/btf/vmlinux)".into(),
        Err(e) => format!("unavailable ({e})"),
    }
}

/// The kernel's per-CPU count of records that did not fit in the ring buffer.
pub struct LostCounter(PerCpuArray<MapData, u64>);

impl LostCounter {
    pub fn total(&self) -> Result<u64> {
        let values = self.0.get(&pintrace_common::LOST_INDEX, 0).context("reading the lost-events counter")?;
        Ok(values.iter().sum())
    }
}

/// The set of TIDs the kernel programs trace: a bitmap over all TIDs in a
/// BPF array mapped into this process. The kernel programs set and clear
/// bits with atomic OR/AND; so does this side, so that neither can undo a
/// change the other made to another bit of the same 64-bit word.
pub struct TidSet {
    words: std::ptr::NonNull<AtomicU64>,
    len: usize,
    /// Keeps the map (and so the mapping's backing memory) alive.
    _map: MapData,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics.
unsafe impl Send for TidSet {}
// SAFETY: as above: every access is an atomic operation.
unsafe impl Sync for TidSet {}

impl TidSet {
    fn map(map: MapData) -> Result<TidSet> {
        let len = pintrace_common::TID_BITMAP_WORDS as usize;
        let bytes = len * std::mem::size_of::<u64>();
        // SAFETY: maps a BPF array created with BPF_F_MMAPABLE whose values
        // are `len` u64s; the fd stays open for as long as `_map` lives, and
        // the mapping is unmapped in Drop before it is closed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error())
                .context("mapping the TID set (needs a kernel with BPF_F_MMAPABLE, 5.5+)");
        }
        let words = std::ptr::NonNull::new(ptr.cast::<AtomicU64>()).context("mmap returned a null mapping")?;
        Ok(TidSet { words, len, _map: map })
    }

    fn word(&self, tid: u32) -> Result<&AtomicU64> {
        let i = (tid >> 6) as usize;
        if i >= self.len {
            bail!("TID {tid} is beyond the largest possible TID");
        }
        // SAFETY: `i` is within the mapping, which is 8-byte aligned (page
        // aligned) and lives as long as `self`.
        Ok(unsafe { &*self.words.as_ptr().add(i) })
    }

    pub fn contains(&self, tid: u32) -> Result<bool> {
        Ok(self.word(tid)?.load(Ordering::SeqCst) & (1 << (tid & 63)) != 0)
    }

    pub fn insert(&self, tid: u32) -> Result<()> {
        self.word(tid)?.fetch_or(1 << (tid & 63), Ordering::SeqCst);
        Ok(())
    }

    pub fn remove(&self, tid: u32) -> Result<()> {
        self.word(tid)?.fetch_and(!(1 << (tid & 63)), Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for TidSet {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `TidSet::map`.
        unsafe { libc::munmap(self.words.as_ptr().cast(), self.len * std::mem::size_of::<u64>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What user space looks up in the kernel object is there: the maps,
    /// the globals, every program. (Not a build with AYA_BUILD_SKIP: it has
    /// no object, and says so here.)
    #[test]
    fn the_kernel_object_has_every_name_user_space_uses() {
        use object::{Object as _, ObjectSymbol as _};
        assert!(!OBJECT.is_empty(), "built with AYA_BUILD_SKIP: no kernel programs to check");
        let file = object::File::parse(OBJECT).expect("the kernel object parses");
        let symbols: std::collections::HashSet<&str> = file.symbols().filter_map(|s| s.name().ok()).collect();
        let programs = PROBES
            .iter()
            .flat_map(|p| std::iter::once(p.program).chain(p.btf_program))
            .chain([names::GO_LOCK_PROGRAM, names::UPROBE_SELFTEST_PROGRAM]);
        let wanted: Vec<&str> = names::MAPS.iter().chain(names::GLOBALS).copied().chain(programs).collect();
        let missing: Vec<&&str> = wanted.iter().filter(|n| !symbols.contains(**n)).collect();
        assert!(missing.is_empty(), "not in the kernel object: {missing:?}");
        assert!(wanted.len() >= 30, "{wanted:?}");
    }

    #[test]
    fn tracefs_is_found_where_mountinfo_says() {
        let info = "\
22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
35 22 0:12 / /sys/kernel/tracing rw,relatime shared:15 - tracefs tracefs rw
36 22 0:7 / /sys/kernel/debug rw,relatime shared:16 - debugfs debugfs rw
90 1 0:50 / /my\\040tracing rw - tracefs none rw
91 1 0:51 / /broken";
        assert_eq!(
            tracefs_mounts(info),
            [
                PathBuf::from("/sys/kernel/tracing"),
                PathBuf::from("/sys/kernel/debug/tracing"),
                PathBuf::from("/my tracing")
            ]
        );
        assert!(tracefs_mounts("").is_empty());
    }

    #[test]
    fn kernel_minimum() {
        assert_eq!(kernel_supported("6.18.44-fc-v669"), Some(true));
        assert_eq!(kernel_supported("5.12.0"), Some(true));
        assert_eq!(kernel_supported("5.11.22-generic"), Some(false));
        assert_eq!(kernel_supported("5.8"), Some(false));
        assert_eq!(kernel_supported("4.19.0+"), Some(false));
        assert_eq!(kernel_supported("6.1-rc3"), Some(true));
        assert_eq!(kernel_supported("weird"), None);
    }
}
