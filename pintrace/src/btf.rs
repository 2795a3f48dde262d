//! The kernel's BTF (`/sys/kernel/btf/vmlinux`), read just far enough to
//! find where a struct member lives.
//!
//! Rust BPF programs have no CO-RE relocations, so a kernel program that
//! reads a field of a kernel struct is given the field's offset by user space
//! as a load-time global. aya parses BTF but keeps its type lookups private;
//! the part needed here (walk the type section, resolve one member, recurse
//! into anonymous structs and unions) is a hundred lines, smaller than a new
//! dependency.
use std::{fmt, fs, path::Path};

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Where a member is: its byte offset from the start of the outer struct and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BtfError {
    Malformed(String),
    NoStruct(String),
    NoMember {
        ty: String,
        member: String,
    },
    /// The member is a bit-field: not readable as whole bytes.
    BitField {
        ty: String,
        member: String,
    },
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfError::Malformed(why) => write!(f, "the kernel's BTF does not parse: {why}"),
            BtfError::NoStruct(ty) => write!(f, "the kernel's BTF has no struct {ty}"),
            BtfError::NoMember { ty, member } => write!(f, "struct {ty} has no member {member} on this kernel"),
            BtfError::BitField { ty, member } => write!(f, "{ty}.{member} is a bit-field on this kernel"),
        }
    }
}

impl std::error::Error for BtfError {}

struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kflag: bool,
    /// size_or_type.
    size_type: u32,
    /// Byte range of the kind-specific data after the 12-byte common part.
    extra: std::ops::Range<usize>,
}

/// The type section, indexed (type IDs start at 1).
pub struct Btf {
    data: Vec<u8>,
    strings: std::ops::Range<usize>,
    types: Vec<Type>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| BtfError::Malformed(format!("read past the end at {at}")))
}

impl Btf {
    pub fn from_sys_fs() -> Result<Btf, String> {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let data = fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Btf::parse(data).map_err(|e| e.to_string())
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::Malformed("no BTF magic (or not little-endian)".into()));
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let (type_off, type_len) = (u32_at(&data, 8)? as usize, u32_at(&data, 12)? as usize);
        let (str_off, str_len) = (u32_at(&data, 16)? as usize, u32_at(&data, 20)? as usize);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).filter(|&s| s <= data.len());
            start
                .and_then(|s| s.checked_add(len).filter(|&e| e <= data.len()).map(|e| s..e))
                .ok_or_else(|| BtfError::Malformed("a section lies outside the file".into()))
        };
        let types_range = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?;
        let mut types = Vec::new();
        let mut at = types_range.start;
        while at < types_range.end {
            let name_off = u32_at(&data, at)?;
            let info = u32_at(&data, at + 4)?;
            let size_type = u32_at(&data, at + 8)?;
            let (vlen, kind, kflag) = (info & 0xffff, (info >> 24) & 0x1f, info >> 31 != 0);
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC
                | KIND_FLOAT | KIND_TYPE_TAG => 0,
                other => return Err(BtfError::Malformed(format!("unknown type kind {other}"))),
            };
            let extra = at + 12..at + 12 + extra_len;
            if extra.end > types_range.end {
                return Err(BtfError::Malformed("a type runs past the type section".into()));
            }
            at = extra.end;
            types.push(Type { name_off, kind, vlen, kflag, size_type, extra });
        }
        Ok(Btf { data, strings, types })
    }

    fn name(&self, off: u32) -> &[u8] {
        let s = &self.data[self.strings.clone()];
        let rest = s.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn ty(&self, id: u32) -> Option<&Type> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// The size in bytes of type `id`, through typedefs and qualifiers.
    fn size_of(&self, mut id: u32) -> Option<u32> {
        for _ in 0..32 {
            let t = self.ty(id)?;
            match t.kind {
                KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT => return Some(t.size_type),
                KIND_PTR => return Some(8),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = t.size_type,
                KIND_ARRAY => {
                    let elem = u32_at(&self.data, t.extra.start).ok()?;
                    let n = u32_at(&self.data, t.extra.start + 8).ok()?;
                    return self.size_of(elem)?.checked_mul(n);
                }
                _ => return None,
            }
        }
        None
    }

    /// The member `member` of `struct ty`, looking into anonymous structs
    /// and unions as C does.
    pub fn member(&self, ty: &str, member: &str) -> Result<Member, BtfError> {
        let id = (1..=self.types.len() as u32)
            .find(|&id| {
                let t = &self.types[id as usize - 1];
                t.kind == KIND_STRUCT && t.vlen > 0 && self.name(t.name_off) == ty.as_bytes()
            })
            .ok_or_else(|| BtfError::NoStruct(ty.into()))?;
        match self.find_in(id, member.as_bytes(), 0, 0)? {
            Some(m) => Ok(m),
            None => Err(BtfError::NoMember { ty: ty.into(), member: member.into() }),
        }
    }

    fn find_in(&self, id: u32, member: &[u8], base_bits: u32, depth: u32) -> Result<Option<Member>, BtfError> {
        let Some(t) = self.ty(id) else { return Ok(None) };
        if depth > 8 || !(t.kind == KIND_STRUCT || t.kind == KIND_UNION) {
            return Ok(None);
        }
        for i in 0..t.vlen as usize {
            let at = t.extra.start + 12 * i;
            let (name_off, mty, off) =
                (u32_at(&self.data, at)?, u32_at(&self.data, at + 4)?, u32_at(&self.data, at + 8)?);
            let (bits, bitfield_size) = if t.kflag { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
            let bits = base_bits + bits;
            let name = self.name(name_off);
            if name.is_empty() {
                if let Some(m) = self.find_in(self.strip(mty), member, bits, depth + 1)? {
                    return Ok(Some(m));
                }
                continue;
            }
            if name != member {
                continue;
            }
            let whole = |ty: &[u8]| String::from_utf8_lossy(ty).into_owned();
            if bitfield_size != 0 || !bits.is_multiple_of(8) {
                return Err(BtfError::BitField { ty: whole(self.name(t.name_off)), member: whole(member) });
            }
            let size = self.size_of(mty).unwrap_or(0);
            return Ok(Some(Member { offset: bits / 8, size }));
        }
        Ok(None)
    }

    /// Through typedefs and qualifiers to the underlying type.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.ty(id) {
                Some(t)
                    if matches!(t.kind, KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG) =>
                {
                    id = t.size_type
                }
                _ => break,
            }
        }
        id
    }
}

impl Btf {
    /// The number of parameters of BTF tracepoint `name`, its context
    /// included: `btf_trace_NAME` is a typedef of a pointer to the prototype.
    pub fn tracepoint_params(&self, name: &str) -> Result<u32, BtfError> {
        let want = format!("btf_trace_{name}");
        let missing = || BtfError::NoStruct(format!("tracepoint type {want}"));
        let id = (1..=self.types.len() as u32)
            .find(|&id| {
                let t = &self.types[id as usize - 1];
                t.kind == KIND_TYPEDEF && self.name(t.name_off) == want.as_bytes()
            })
            .ok_or_else(missing)?;
        let ptr =
            self.ty(self.ty(id).ok_or_else(missing)?.size_type).filter(|t| t.kind == KIND_PTR).ok_or_else(missing)?;
        let proto = self.ty(ptr.size_type).filter(|t| t.kind == KIND_FUNC_PROTO).ok_or_else(missing)?;
        Ok(proto.vlen)
    }
}

/// Where the BTF tracepoints read `struct task_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskOffsets {
    pub pid: u32,
    pub exit_state: u32,
    /// `tgid` (the process) and `flags` (PF_KTHREAD) of the task on the
    /// other side of a target's switch: who took the CPU, or gave it.
    pub tgid: u32,
    pub flags: u32,
    /// `task_cpu()`: `thread_info.cpu` where the thread_info is in the task, else `cpu`.
    pub cpu: u32,
}

/// The BTF tracepoints the kernel programs are written against, with their
/// parameter counts (the context first).
const SCHED_TRACEPOINTS: [(&str, u32); 4] =
    [("sched_switch", 5), ("sched_wakeup", 2), ("sched_wakeup_new", 2), ("sched_migrate_task", 3)];

/// Checks that this kernel's scheduler tracepoints take the arguments the
/// BTF programs read (`sched_switch` passes `prev_state` since 5.18) and
/// finds the `task_struct` fields they load, each a 4-byte integer.
pub fn sched_offsets(btf: &Btf) -> Result<TaskOffsets, String> {
    for (tp, params) in SCHED_TRACEPOINTS {
        let n = btf.tracepoint_params(tp).map_err(|e| e.to_string())?;
        if n != params {
            return Err(format!(
                "tracepoint {tp} takes {} arguments here; the program reads {}",
                n.saturating_sub(1),
                params - 1
            ));
        }
    }
    let int = |ty: &str, member: &str| -> Result<u32, String> {
        let m = btf.member(ty, member).map_err(|e| e.to_string())?;
        if m.size != 4 {
            return Err(format!("{ty}.{member} is {} bytes, expected 4", m.size));
        }
        Ok(m.offset)
    };
    let cpu = match (btf.member("task_struct", "thread_info"), int("thread_info", "cpu")) {
        (Ok(ti), Ok(cpu)) => ti.offset + cpu,
        _ => int("task_struct", "cpu")?,
    };
    let offsets = TaskOffsets {
        pid: int("task_struct", "pid")?,
        exit_state: int("task_struct", "exit_state")?,
        tgid: int("task_struct", "tgid")?,
        flags: int("task_struct", "flags")?,
        cpu,
    };
    // 0 means "unknown" to the programs; none of these is the first field.
    if offsets.pid == 0 || offsets.exit_state == 0 || offsets.tgid == 0 || offsets.flags == 0 {
        return Err(format!("implausible task_struct offsets {offsets:?}"));
    }
    Ok(offsets)
}

/// Where `task_struct.throttled` is (the flag this kernel's per-task CFS
/// throttling sets while a task is parked), if it is a whole byte.
pub fn task_throttled(btf: &Btf) -> Result<Member, String> {
    let m = btf.member("task_struct", "throttled").map_err(|e| e.to_string())?;
    if m.size != 1 {
        return Err(format!("task_struct.throttled is {} bytes, expected a 1-byte bool", m.size));
    }
    Ok(m)
}

/// Where `sched_switch` reads the next thread's run-queue accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOffsets {
    /// `task_struct.sched_info.run_delay`.
    pub run_delay: u32,
    /// `task_struct.sched_info.last_queued`.
    pub last_queued: u32,
    /// `task_struct.se.cfs_rq` (a pointer; CONFIG_FAIR_GROUP_SCHED).
    pub cfs_rq: u32,
    /// `cfs_rq.rq` (a pointer).
    pub rq: u32,
    /// `rq.clock`.
    pub clock: u32,
}

/// Finds the fields through which `sched_switch` reads how long the next
/// thread waited for its CPU (CONFIG_SCHED_INFO's accounting, which
/// /proc/PID/schedstat shows), each 8 bytes: with them, no wake-up program
/// has to run for every wake-up on the host.
pub fn wait_offsets(btf: &Btf) -> Result<WaitOffsets, String> {
    let field = |ty: &str, member: &str| -> Result<u32, String> {
        let m = btf.member(ty, member).map_err(|e| e.to_string())?;
        if m.size != 8 {
            return Err(format!("{ty}.{member} is {} bytes, expected 8", m.size));
        }
        Ok(m.offset)
    };
    let nested = |ty: &str, outer: &str, inner_ty: &str, member: &str| -> Result<u32, String> {
        let o = btf.member(ty, outer).map_err(|e| e.to_string())?;
        Ok(o.offset + field(inner_ty, member)?)
    };
    let offsets = WaitOffsets {
        run_delay: nested("task_struct", "sched_info", "sched_info", "run_delay")?,
        last_queued: nested("task_struct", "sched_info", "sched_info", "last_queued")?,
        cfs_rq: nested("task_struct", "se", "sched_entity", "cfs_rq")?,
        rq: field("cfs_rq", "rq")?,
        clock: field("rq", "clock")?,
    };
    // 0 means "unknown" to the program; none of these is a first field.
    if [offsets.run_delay, offsets.last_queued, offsets.cfs_rq, offsets.rq, offsets.clock].contains(&0) {
        return Err(format!("implausible run-queue offsets {offsets:?}"));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little BTF blob built by hand.
    struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Builder { types: Vec::new(), strings: vec![0] }
        }
        fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            off
        }
        fn w(&mut self, v: u32) {
            self.types.extend_from_slice(&v.to_le_bytes());
        }
        fn int(&mut self, name: &str, size: u32) {
            let n = self.s(name);
            self.w(n);
            self.w(KIND_INT << 24);
            self.w(size);
            self.w(size * 8);
        }
        fn typedef(&mut self, name: &str, to: u32) {
            let n = self.s(name);
            self.w(n);
            self.w(KIND_TYPEDEF << 24);
            self.w(to);
        }
        fn compound(&mut self, kind: u32, name: &str, size: u32, kflag: bool, members: &[(&str, u32, u32)]) {
            let n = self.s(name);
            self.w(n);
            self.w((kind << 24) | (u32::from(kflag) << 31) | members.len() as u32);
            self.w(size);
            for &(m, ty, off) in members {
                let mn = self.s(m);
                self.w(mn);
                self.w(ty);
                self.w(off);
            }
        }
        fn build(self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for v in [24u32, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        b.int("_Bool", 1); // 1
        b.typedef("bool", 1); // 2
        b.int("int", 4); // 3
                         // 4: an anonymous struct holding `throttled` at bit 32 of itself
        b.compound(KIND_STRUCT, "", 8, false, &[("pad", 3, 0), ("throttled", 2, 32)]);
        // 5: an anonymous union at byte 16 of task_struct
        b.compound(KIND_UNION, "", 8, false, &[("", 4, 0), ("other", 3, 0)]);
        // 6: task_struct with a bit-field `flagbits`
        b.compound(
            KIND_STRUCT,
            "task_struct",
            64,
            true,
            &[("state", 3, 0), ("flagbits", 3, (1 << 24) | 32), ("", 5, 128), ("prio", 3, 256)],
        );
        b.build()
    }

    #[test]
    fn finds_members_through_anonymous_structs_and_unions() {
        let btf = Btf::parse(sample()).expect("parses");
        assert_eq!(btf.member("task_struct", "state"), Ok(Member { offset: 0, size: 4 }));
        assert_eq!(btf.member("task_struct", "prio"), Ok(Member { offset: 32, size: 4 }));
        // 16 (the union) + 0 (the struct inside it) + 4 (inside that).
        assert_eq!(btf.member("task_struct", "throttled"), Ok(Member { offset: 20, size: 1 }));
    }

    /// Builds a kernel-like blob: task_struct {pid, exit_state, thread_info {cpu}}
    /// and the four tracepoints' prototypes with the given parameter counts.
    fn sched_sample(switch_params: u32) -> Vec<u8> {
        let mut b = Builder::new();
        b.int("int", 4); // 1
        b.compound(KIND_STRUCT, "thread_info", 24, false, &[("flags", 1, 0), ("cpu", 1, 160)]); // 2
        b.compound(
            KIND_STRUCT,
            "task_struct",
            4096,
            false,
            &[
                ("thread_info", 2, 0),
                ("flags", 1, 8 * 44),
                ("exit_state", 1, 8 * 1200),
                ("pid", 1, 8 * 1480),
                ("tgid", 1, 8 * 1484),
            ],
        ); // 3
        let mut next = 4;
        for (tp, params) in
            [("sched_switch", switch_params), ("sched_wakeup", 2), ("sched_wakeup_new", 2), ("sched_migrate_task", 3)]
        {
            // FUNC_PROTO (params as (name 0, type int)), PTR to it, TYPEDEF btf_trace_NAME.
            b.w(0);
            b.w((KIND_FUNC_PROTO << 24) | params);
            b.w(0);
            for _ in 0..params {
                b.w(0);
                b.w(1);
            }
            b.w(0);
            b.w(KIND_PTR << 24);
            b.w(next);
            b.typedef(&format!("btf_trace_{tp}"), next + 1);
            next += 3;
        }
        b.build()
    }

    #[test]
    fn finds_the_fields_and_arguments_of_the_btf_tracepoints() {
        let btf = Btf::parse(sched_sample(5)).expect("parses");
        assert_eq!(btf.tracepoint_params("sched_switch"), Ok(5));
        assert_eq!(btf.tracepoint_params("sched_migrate_task"), Ok(3));
        assert!(btf.tracepoint_params("sched_nope").is_err());
        assert_eq!(
            sched_offsets(&btf),
            Ok(TaskOffsets { pid: 1480, exit_state: 1200, tgid: 1484, flags: 44, cpu: 20 })
        );
        // A kernel before 5.18: sched_switch has no prev_state argument.
        let old = Btf::parse(sched_sample(4)).expect("parses");
        assert_eq!(
            sched_offsets(&old),
            Err("tracepoint sched_switch takes 3 arguments here; the program reads 4".to_string())
        );
    }

    #[test]
    fn finds_the_run_queue_accounting() {
        let mut b = Builder::new();
        b.int("long long unsigned int", 8); // 1
        b.int("int", 4); // 2
        b.compound(KIND_STRUCT, "rq", 4096, false, &[("nr_running", 2, 0), ("clock", 1, 8 * 2776)]); // 3
        b.w(0);
        b.w(KIND_PTR << 24);
        b.w(3); // 4: struct rq *
        b.compound(KIND_STRUCT, "cfs_rq", 512, false, &[("load", 1, 0), ("rq", 4, 8 * 312)]); // 5
        b.w(0);
        b.w(KIND_PTR << 24);
        b.w(5); // 6: struct cfs_rq *
        b.compound(
            KIND_STRUCT,
            "sched_info",
            48,
            false,
            &[("pcount", 1, 0), ("run_delay", 1, 64), ("last_queued", 1, 320)],
        ); // 7
        b.compound(KIND_STRUCT, "sched_entity", 256, false, &[("load", 1, 0), ("cfs_rq", 6, 8 * 168)]); // 8
        b.compound(
            KIND_STRUCT,
            "task_struct",
            4096,
            false,
            &[("state", 2, 0), ("se", 8, 8 * 128), ("sched_info", 7, 8 * 1008)],
        ); // 9
        let btf = Btf::parse(b.build()).expect("parses");
        assert_eq!(
            wait_offsets(&btf),
            Ok(WaitOffsets { run_delay: 1016, last_queued: 1048, cfs_rq: 296, rq: 312, clock: 2776 })
        );
        // Without CONFIG_SCHED_INFO the task has no sched_info: say so.
        assert_eq!(
            wait_offsets(&Btf::parse(sched_sample(5)).expect("parses")),
            Err(BtfError::NoMember { ty: "task_struct".into(), member: "sched_info".into() }.to_string())
        );
    }

    #[test]
    fn says_what_is_missing() {
        let btf = Btf::parse(sample()).expect("parses");
        assert_eq!(btf.member("rq", "x"), Err(BtfError::NoStruct("rq".into())));
        assert!(matches!(btf.member("task_struct", "nope"), Err(BtfError::NoMember { .. })));
        assert!(matches!(btf.member("task_struct", "flagbits"), Err(BtfError::BitField { .. })));
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let good = sample();
        assert!(Btf::parse(Vec::new()).is_err());
        assert!(Btf::parse(vec![0; 24]).is_err());
        for cut in [25, 40, good.len() - 3] {
            // Shortened: the section lengths in the header now overrun.
            assert!(Btf::parse(good[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        let mut bad_kind = good.clone();
        bad_kind[24 + 7] = 30; // kind 30 in the first type's info
        assert!(Btf::parse(bad_kind).is_err());
        // Every single-byte corruption parses or fails, and lookups never panic.
        let mut failed = 0;
        for i in 0..good.len() {
            let mut d = good.clone();
            d[i] ^= 0xff;
            match Btf::parse(d) {
                Ok(btf) => {
                    let _ = btf.member("task_struct", "throttled");
                }
                Err(_) => failed += 1,
            }
        }
        // The header's magic, version and lengths are checked: those bytes fail.
        assert!(failed >= 8, "{failed} of {} corruptions were refused", good.len());
    }
}
