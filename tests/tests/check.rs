//! `pintrace check` on this kernel: every probe, the ring buffer and a real uprobe.
use std::process::Command;

use pintrace_tests::pintrace_bin;

#[test]
fn check_attaches_every_probe_and_fires_a_uprobe() {
    let out = Command::new(pintrace_bin()).arg("check").output().expect("pintrace check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for tp in [
        "sched:sched_switch",
        "sched:sched_migrate_task",
        "sched:sched_wakeup",
        "sched:sched_wakeup_new",
        "signal:signal_generate",
        "task:task_newtask",
        "sched:sched_process_exit",
        "task:task_rename",
    ] {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(tp)).unwrap_or_else(|| panic!("{tp} missing:\n{text}"));
        assert!(line.trim_end().ends_with("attaches"), "{line}");
    }
    for tp in ["syscalls:sys_enter_tgkill", "syscalls:sys_exit_clone", "syscalls:sys_exit_clone3"] {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(tp)).unwrap_or_else(|| panic!("{tp} missing:\n{text}"));
        assert!(line.contains("attaches; off by default"), "{line}");
    }
    assert!(text.contains("uprobes   load, attach and fire (3 of 3 calls seen)"), "{text}");
    assert!(text.contains("ring buf  created (16 MiB)"), "{text}");
    assert!(text.contains("all default probes work"), "{text}");
}
