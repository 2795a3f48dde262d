//! `pintrace check` on this kernel: every probe, the ring buffer and a real uprobe.
use std::process::Command;

use pintrace::probe::{Need, PROBES};
use pintrace_tests::pintrace_bin;

#[test]
fn check_attaches_every_probe_and_fires_a_uprobe() {
    let out = Command::new(pintrace_bin()).arg("check").output().expect("pintrace check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for spec in PROBES {
        let name = format!("{}:{}", spec.category, spec.name);
        let line =
            text.lines().find(|l| l.trim_start().starts_with(&name)).unwrap_or_else(|| panic!("{name}:\n{text}"));
        if spec.need == Need::Syscall {
            assert!(line.contains("attaches; off by default"), "{line}");
        } else if spec.wait_start {
            // sched_switch reads the waits these would time.
            assert!(line.contains("not attached: sched_switch reads each wait"), "{line}");
        } else if spec.btf_program.is_some() {
            assert!(line.contains("attaches as a BTF tracepoint (tp_btf)"), "{line}");
        } else {
            assert!(line.trim_end().ends_with("attaches"), "{line}");
        }
    }
    assert!(text.contains("uprobes   load, attach and fire (3 of 3 calls seen)"), "{text}");
    assert!(text.contains("ring buf  created (16 MiB)"), "{text}");
    assert!(text.contains("waits     task_struct.sched_info and the run queue's clock (from BTF)"), "{text}");
    assert!(text.contains("all default probes work"), "{text}");
}
