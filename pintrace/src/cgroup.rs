//! The target's CPU cgroup: the CFS bandwidth limit the kernel enforces
//! (the tightest quota over its group and the group's ancestors, v1 `cpu`
//! or v2 `cpu.max`), the CPUs it may run on, and the throttling counters.
//!
//! Parsing is pure and unit-tested; `CpuGroup::of_pid` reads /proc and
//! /sys/fs/cgroup.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

/// The CPU controller's view of one process.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuGroup {
    /// 1 or 2.
    pub version: u8,
    /// The process's group, as /proc/PID/cgroup names it.
    pub path: String,
    /// The quota the kernel enforces, in CPUs: the tightest over the group
    /// and its ancestors (Go reads only the group's own). None: no limit.
    pub quota_cpus: Option<f64>,
    /// The period of that quota.
    pub period_us: Option<u64>,
    /// The group that sets that quota (it is where throttling is counted).
    pub limited_by: Option<String>,
    /// How many CPUs the process may run on (its affinity, within its cpuset).
    pub cpus_allowed: u32,
    /// The directory of the limiting group (or the process's own), for `cpu.stat`.
    #[serde(skip)]
    pub stat_dir: Option<PathBuf>,
}

/// `cpu.stat`'s bandwidth counters, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStat {
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_ns: u64,
}

/// A `/proc/PID/cgroup` line's (controllers, path).
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect()
}

/// A cgroup mount from /proc/self/mountinfo: (root inside the hierarchy, mount point, v2?, super options).
fn cgroup_mounts(mountinfo: &str) -> Vec<(String, PathBuf, bool, String)> {
    crate::mountinfo::parse(mountinfo)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| (m.root, m.point, m.fstype == "cgroup2", m.super_options))
        .collect()
}

/// The directory of `path` (a group in a hierarchy mounted at `mount` with root `root`).
fn group_dir(mount: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let rel = if root == "/" { path } else { path.strip_prefix(root)? };
    Some(mount.join(rel.trim_start_matches('/')))
}

/// A v1 quota: (cfs_quota_us, cfs_period_us); -1 is no limit.
pub fn parse_v1_quota(quota: &str, period: &str) -> Option<(u64, u64)> {
    let q: i64 = quota.trim().parse().ok()?;
    let p: u64 = period.trim().parse().ok()?;
    (q > 0 && p > 0).then_some((q as u64, p))
}

/// A v2 `cpu.max`: "max 100000" or "50000 100000".
pub fn parse_v2_max(text: &str) -> Option<(u64, u64)> {
    let mut it = text.split_whitespace();
    let q = it.next()?;
    let p: u64 = it.next().unwrap_or("100000").parse().ok()?;
    let q: u64 = q.parse().ok()?;
    (q > 0 && p > 0).then_some((q, p))
}

/// `cpu.stat`: v1 `throttled_time` (ns), v2 `throttled_usec`.
pub fn parse_stat(text: &str) -> CpuStat {
    let mut s = CpuStat::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) else { continue };
        match k {
            "nr_periods" => s.nr_periods = v,
            "nr_throttled" => s.nr_throttled = v,
            "throttled_time" => s.throttled_ns = v,
            "throttled_usec" => s.throttled_ns = v.saturating_mul(1000),
            _ => {}
        }
    }
    s
}

/// The CPUs of a CPU list like "0-3,8,10-11". CPU numbers are below
/// `MAX_CPU` (the kernel's NR_CPUS is at most 8192); others are ignored.
pub fn cpu_set(list: &str) -> BTreeSet<u32> {
    let mut set = BTreeSet::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            set.extend(a..=b.min(MAX_CPU - 1));
        }
    }
    set
}

const MAX_CPU: u32 = 1 << 16;

/// How many CPUs process `pid` can run on: the union of its threads'
/// affinities (each thread has its own: a program that pins one thread to
/// a CPU still uses the others). It stops reading threads once the union
/// holds every online CPU, which the first thread usually does.
pub fn cpus_allowed(pid: u32) -> u32 {
    let online = crate::target::nr_cpus();
    let of = |tid: u32| {
        let status = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(cpu_set)
    };
    let mut union = of(pid).unwrap_or_default();
    if union.len() < online as usize {
        for tid in crate::target::threads(pid).unwrap_or_default() {
            union.extend(of(tid).unwrap_or_default());
            if union.len() >= online as usize {
                break;
            }
        }
    }
    if union.is_empty() {
        online
    } else {
        u32::try_from(union.len()).unwrap_or(online)
    }
}

impl CpuGroup {
    /// The CPU group of process `pid`.
    pub fn of_pid(pid: u32) -> Result<CpuGroup> {
        let cg =
            fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("reading /proc/{pid}/cgroup"))?;
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
        let cpus_allowed = cpus_allowed(pid);
        let lines = cgroup_lines(&cg);
        let mounts = cgroup_mounts(&mountinfo);
        // v1 with the cpu controller, else v2 where it has the cpu controller.
        let v1 = lines.iter().find(|(c, _)| c.split(',').any(|c| c == "cpu")).and_then(|(c, path)| {
            let (root, mount, ..) = mounts.iter().find(|(_, _, v2, opts)| {
                !v2 && opts.split(',').any(|o| o == "cpu") && c.split(',').all(|c| opts.split(',').any(|o| o == c))
            })?;
            Some((1u8, path.clone(), group_dir(mount, root, path)?, mount.clone()))
        });
        let v2 = || {
            let (_, path) = lines.iter().find(|(c, _)| c.is_empty())?;
            let (root, mount, ..) = mounts.iter().find(|(_, _, v2, _)| *v2)?;
            let dir = group_dir(mount, root, path)?;
            let controllers = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            if !controllers.split_whitespace().any(|c| c == "cpu") {
                return None;
            }
            Some((2u8, path.clone(), dir, mount.clone()))
        };
        let Some((version, path, dir, mount)) = v1.or_else(v2) else {
            bail!("process {pid} is in no cgroup with a CPU controller (v1 cpu or v2 cpu.max)");
        };
        let mut group = CpuGroup { version, path, cpus_allowed, stat_dir: Some(dir.clone()), ..Default::default() };
        // The tightest quota from the group up to the hierarchy's root.
        let mut at = Some(dir.as_path());
        while let Some(d) = at {
            let limit = if version == 1 {
                let q = fs::read_to_string(d.join("cpu.cfs_quota_us")).unwrap_or_default();
                let p = fs::read_to_string(d.join("cpu.cfs_period_us")).unwrap_or_default();
                parse_v1_quota(&q, &p)
            } else {
                parse_v2_max(&fs::read_to_string(d.join("cpu.max")).unwrap_or_default())
            };
            if let Some((q, p)) = limit {
                let cpus = q as f64 / p as f64;
                if group.quota_cpus.is_none_or(|c| cpus < c) {
                    group.quota_cpus = Some(cpus);
                    group.period_us = Some(p);
                    group.stat_dir = Some(d.to_path_buf());
                    let rel = d.strip_prefix(&mount).map(|r| format!("/{}", r.display())).unwrap_or_default();
                    group.limited_by = Some(rel);
                }
            }
            if d == mount {
                break;
            }
            at = d.parent();
        }
        Ok(group)
    }

    /// The group as a record's `CpuLimit` event keeps it (the stat
    /// directory is not kept: it is this machine's).
    pub fn limit_event(&self) -> crate::event::EventKind {
        let period = self.period_us.unwrap_or(0);
        let quota = self.quota_cpus.map_or(0.0, |q| (q * period as f64).round());
        crate::event::EventKind::CpuLimit {
            version: self.version,
            quota_us: if quota >= f64::from(u32::MAX) { u32::MAX } else { quota as u32 },
            period_us: u32::try_from(period).unwrap_or(u32::MAX),
            cpus_allowed: self.cpus_allowed,
            group: ustr::ustr(&self.path),
            limited_by: self.limited_by.as_deref().map(ustr::ustr),
        }
    }

    /// The group a `CpuLimit` event describes (None for another kind).
    pub fn from_limit(kind: &crate::event::EventKind) -> Option<CpuGroup> {
        let crate::event::EventKind::CpuLimit { version, quota_us, period_us, cpus_allowed, group, limited_by } = *kind
        else {
            return None;
        };
        let limited = quota_us > 0 && period_us > 0;
        Some(CpuGroup {
            version,
            path: group.to_string(),
            quota_cpus: limited.then(|| f64::from(quota_us) / f64::from(period_us)),
            period_us: limited.then_some(u64::from(period_us)),
            limited_by: limited_by.map(|l| l.to_string()),
            cpus_allowed,
            stat_dir: None,
        })
    }

    /// Whether `other` is the same limit: the same groups, quota and CPUs.
    pub fn same_limit(&self, other: &CpuGroup) -> bool {
        CpuGroup { stat_dir: None, ..self.clone() } == CpuGroup { stat_dir: None, ..other.clone() }
    }

    /// The throttling counters of the limiting group now.
    pub fn stat(&self) -> Option<CpuStat> {
        let dir = self.stat_dir.as_ref()?;
        fs::read_to_string(dir.join("cpu.stat")).ok().map(|t| parse_stat(&t))
    }

    /// The CPUs the process can use at most: its quota, or the CPUs it may run on.
    pub fn cpus_usable(&self) -> f64 {
        let allowed = f64::from(self.cpus_allowed.max(1));
        self.quota_cpus.map_or(allowed, |q| q.min(allowed))
    }

    /// "quota 0.50 CPUs (50ms per 100ms, /T), 2 CPUs allowed".
    pub fn describe_limit(&self) -> String {
        format!("quota {}, {} CPUs allowed", self.describe_quota(), self.cpus_allowed)
    }

    /// "0.5 CPUs (quota 50ms per 100ms, /T)" or "no limit".
    pub fn describe_quota(&self) -> String {
        match (self.quota_cpus, self.period_us) {
            (Some(q), Some(p)) => format!(
                "{q:.2} CPUs ({}ms per {}ms{})",
                (q * p as f64 / 1000.0).round(),
                p / 1000,
                self.limited_by.as_deref().map(|g| format!(", {g}")).unwrap_or_default()
            ),
            _ => "no limit".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_v1_and_v2() {
        assert_eq!(parse_v1_quota("-1\n", "100000\n"), None);
        assert_eq!(parse_v1_quota("50000\n", "100000\n"), Some((50000, 100000)));
        assert_eq!(parse_v2_max("max 100000\n"), None);
        assert_eq!(parse_v2_max("200000 100000\n"), Some((200000, 100000)));
        assert_eq!(parse_v2_max("garbage"), None);
    }

    #[test]
    fn stat_v1_and_v2() {
        let v1 = parse_stat("nr_periods 10\nnr_throttled 4\nthrottled_time 123456789\nnr_bursts 0\n");
        assert_eq!(v1, CpuStat { nr_periods: 10, nr_throttled: 4, throttled_ns: 123_456_789 });
        let v2 = parse_stat("usage_usec 5\nnr_periods 7\nnr_throttled 2\nthrottled_usec 1500\n");
        assert_eq!(v2, CpuStat { nr_periods: 7, nr_throttled: 2, throttled_ns: 1_500_000 });
    }

    #[test]
    fn cpu_sets() {
        assert_eq!(cpu_set("0-3,8,10-11\n").into_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(cpu_set(""), BTreeSet::new());
        assert_eq!(cpu_set("3-1,x,7"), BTreeSet::from([7]));
        assert_eq!(cpu_set("0-4294967295").len(), MAX_CPU as usize, "bounded");
        // This process's threads may run on every online CPU.
        assert_eq!(cpus_allowed(std::process::id()), crate::target::nr_cpus());
    }

    #[test]
    fn groups_and_mounts_from_proc() {
        let lines = cgroup_lines("4:memory:/a\n1:cpu,cpuacct:/kubepods/pod1/c1\n0::/user.slice\n");
        assert_eq!(lines[1], ("cpu,cpuacct".to_string(), "/kubepods/pod1/c1".to_string()));
        let mounts = cgroup_mounts(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             30 23 0:27 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
             40 23 0:3 / /proc rw - proc proc rw\n",
        );
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(mounts[1].2);
        // In a container the mount's root is the container's group.
        assert_eq!(
            group_dir(&mounts[1].1, &mounts[1].0, "/kubepods/pod1/c1"),
            Some(PathBuf::from("/sys/fs/cgroup/c1"))
        );
        assert_eq!(group_dir(Path::new("/m"), "/", "/"), Some(PathBuf::from("/m")));
    }

    #[test]
    fn a_limit_survives_its_event() {
        let g = CpuGroup {
            version: 2,
            path: "/kubepods/pod1/c1".into(),
            quota_cpus: Some(0.3),
            period_us: Some(100_000),
            limited_by: Some("/kubepods/pod1".into()),
            cpus_allowed: 4,
            stat_dir: Some(PathBuf::from("/sys/fs/cgroup/kubepods/pod1")),
        };
        let back = CpuGroup::from_limit(&g.limit_event()).expect("a CpuLimit");
        assert!(back.same_limit(&g), "{back:?}");
        assert_eq!(back.stat_dir, None);
        let none = CpuGroup { version: 1, path: "/".into(), cpus_allowed: 2, ..Default::default() };
        assert_eq!(CpuGroup::from_limit(&none.limit_event()), Some(none.clone()));
        assert!(!none.same_limit(&g));
        assert_eq!(CpuGroup::from_limit(&crate::event::EventKind::Lost { total: 1 }), None);
    }

    #[test]
    fn usable_cpus_and_description() {
        let mut g = CpuGroup { cpus_allowed: 8, ..Default::default() };
        assert_eq!(g.cpus_usable(), 8.0);
        assert_eq!(g.describe_quota(), "no limit");
        g.quota_cpus = Some(0.5);
        g.period_us = Some(100_000);
        g.limited_by = Some("/T".into());
        assert_eq!(g.cpus_usable(), 0.5);
        assert_eq!(g.describe_quota(), "0.50 CPUs (50ms per 100ms, /T)");
    }
}
