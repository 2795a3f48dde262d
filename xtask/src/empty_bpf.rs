//! The floor of the BPF path: an empty program (`r0 = 0; exit`) attached as
//! a BTF tracepoint to each of the tracepoints pintrace's hot programs use.
//! Whatever it costs a workload, and whatever `kernel.bpf_stats_enabled`
//! says it runs for, is paid by any BPF program there, before it does any
//! work: the kernel's dispatch of the tracepoint to BPF, and the stats' own
//! clock reads. The benchmark measures it beside pintrace in the same run, so
//! what is left of pintrace's figures is pintrace's own work.
//!
//! Loaded with the bpf(2) syscall directly (two instructions need no object
//! file and no BPF toolchain); the BTF type of each tracepoint comes from the
//! kernel's BTF through aya-obj, the BTF parser aya itself uses.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context as _, Result};
use aya_obj::btf::{Btf, BtfKind};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_RAW_TP: u32 = 23;

/// `union bpf_attr` for BPF_PROG_LOAD, up to `attach_prog_fd`, and zeros
/// after (the kernel requires the part it does not know to be zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    _rest: [u32; 7],
}

/// `union bpf_attr` for BPF_RAW_TRACEPOINT_OPEN.
#[repr(C)]
#[derive(Default)]
struct RawTpOpen {
    name: u64,
    prog_fd: u32,
    _pad: u32,
    cookie: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid, zero-padded bpf_attr of the command's layout
    // and size; the kernel only reads it (and the buffers it points to).
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>() as u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The empty programs and their attachments (this process's only BPF
/// programs, so `bench_go::bpf_prog_stats` of this process counts them);
/// detached on drop.
pub struct EmptyPrograms {
    _progs: Vec<OwnedFd>,
    _links: Vec<OwnedFd>,
}

impl EmptyPrograms {
    /// An empty program on each of `tracepoints` (BTF tracepoints).
    pub fn attach(tracepoints: &[&str]) -> Result<EmptyPrograms> {
        let btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
        // mov64 r0, 0; exit
        let insns: [u64; 2] =
            [u64::from_le_bytes([0xb7, 0, 0, 0, 0, 0, 0, 0]), u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0])];
        let license = c"GPL";
        let (mut progs, mut links) = (Vec::new(), Vec::new());
        for tp in tracepoints {
            let id = btf
                .id_by_type_name_kind(&format!("btf_trace_{tp}"), BtfKind::Typedef)
                .with_context(|| format!("tracepoint {tp} in the kernel's BTF"))?;
            let mut name = [0u8; 16];
            name[..5].copy_from_slice(b"empty");
            let mut load = ProgLoad {
                prog_type: BPF_PROG_TYPE_TRACING,
                insn_cnt: insns.len() as u32,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                prog_name: name,
                expected_attach_type: BPF_TRACE_RAW_TP,
                attach_btf_id: id,
                ..ProgLoad::default()
            };
            let prog = bpf(BPF_PROG_LOAD, &mut load).with_context(|| format!("loading an empty program for {tp}"))?;
            let mut open = RawTpOpen { prog_fd: prog.as_raw_fd() as u32, ..RawTpOpen::default() };
            let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &mut open).with_context(|| format!("attaching it to {tp}"))?;
            progs.push(prog);
            links.push(link);
        }
        Ok(EmptyPrograms { _progs: progs, _links: links })
    }
}
