//! `pintrace check`: what works on this kernel, and what is lost without the rest.
use std::process::ExitCode;

use anyhow::Result;

use crate::{
    probe::{self, Need, Options, ProbeStatus, Probes},
    target,
};

pub fn run() -> Result<ExitCode> {
    let release = target::kernel_release();
    let (major, minor) = probe::MIN_KERNEL;
    let fit = match probe::kernel_supported(&release) {
        Some(true) => format!("{major}.{minor} or later needed: met"),
        Some(false) => {
            format!("older than {major}.{minor}, which pintrace needs (BPF ring buffers and atomics): it will not load")
        }
        None => format!("{major}.{minor} or later needed; this release cannot be read"),
    };
    outln!("kernel    {release}, {} CPUs ({fit})", target::nr_cpus())?;
    probe::check_privileges()?;
    outln!("access    allowed to load BPF programs")?;
    let tracefs = probe::tracefs()?;
    outln!("tracefs   {}", tracefs.display())?;
    outln!("BTF       {}", probe::btf_status())?;

    // Load and attach everything, the syscall probes included, to see what works.
    let opts = Options { syscalls: true, ..Options::default() };
    let mut probes = Probes::load(&opts)?;
    outln!("ring buf  created ({} MiB), lost-event counter created", opts.ring_bytes >> 20)?;
    const CALLS: u64 = 3;
    let uprobes = match probes.uprobe_selftest(CALLS) {
        Ok(n) if n == CALLS => {
            format!("load, attach and fire ({n} of {CALLS} calls seen): {} is put on Go targets", probe::GO_LOCK_PROBE)
        }
        Ok(n) => format!("attach, but saw {n} of {CALLS} calls"),
        Err(e) => format!(
            "do not work here ({e:#}); LockOSThread calls are not seen (pinned threads still come from the M list)"
        ),
    };
    outln!("uprobes   {uprobes}")?;
    match &probes.throttle_flag {
        Ok(offset) => outln!(
            "throttle  task_struct.throttled at offset {offset} (from BTF): a switch-out by the CPU quota is \
             marked and its wait counted as throttled time"
        )?,
        Err(e) => outln!(
            "throttle  {e}: throttled waits count as run-queue latency; the cgroup's own counters are still read"
        )?,
    }
    let attach = probes.attach_all();
    match &probes.waits {
        Ok(()) => outln!(
            "waits     task_struct.sched_info and the run queue's clock (from BTF): sched_switch reads how long \
             each thread waited for its CPU, so no program runs on the host's wake-ups"
        )?,
        Err(e) => outln!("waits     from the wake-up tracepoints ({e})")?,
    }
    outln!("\nprobes")?;
    for (spec, status) in &probes.statuses {
        let name = format!("{}:{}", spec.category, spec.name);
        let line = match (status, spec.need) {
            (ProbeStatus::Attached, Need::Syscall) => "attaches; off by default: a syscalls: tracepoint slows every \
                                                       syscall of every process (+8.7% measured); `record --syscalls` \
                                                       turns it on"
                .to_string(),
            (ProbeStatus::Attached, _) => "attaches".to_string(),
            (ProbeStatus::AttachedBtf, _) => "attaches as a BTF tracepoint (tp_btf): no trace record is built, so \
                                              other processes' events cost least"
                .to_string(),
            (ProbeStatus::Fallback(why), _) => format!(
                "attaches as a classic tracepoint ({why}); every task's event on the host then pays for a trace record"
            ),
            (ProbeStatus::Unneeded(instead), _) => format!("not attached: {instead}"),
            (other, _) => format!("{other}\n{:<30}without it: {}", "", spec.without),
        };
        outln!("  {name:<28}{line}")?;
    }
    attach?;
    let missing = probes.statuses.iter().filter(|(s, st)| !st.works() && s.need != Need::Syscall).count();
    if missing == 0 {
        outln!("\nall default probes work: pintrace sees everything it reports")?;
    } else {
        outln!("\n{missing} default probe(s) unavailable: pintrace runs and reports what it can (see above)")?;
    }
    Ok(ExitCode::SUCCESS)
}
