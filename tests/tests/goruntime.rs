//! The Go-runtime reader against real Go programs, built by Go 1.19
//! (`PINTRACE_GO`) and by a current Go (`PINTRACE_GO_NEW`, 1.26): build info
//! as the toolchain's own `go version -m` reads it, GOMAXPROCS followed as
//! the program changes it, PIE and non-PIE, stripped binaries, and
//! programs that are not Go. Then the threads (the M list): the layout of
//! runtime.m and runtime.g as `readelf` reads the DWARF, which threads are
//! pinned and the role of each (tests/go/pinned), unlocking seen, binaries
//! without DWARF, function names, and what it all costs.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use pintrace::goruntime::{BuildInfo, GoBinary, GoError, GoProcess, GoRole, GoThread, RuntimeLayout};
use pintrace_tests::{go_program_with, Workload};

fn go_old() -> PathBuf {
    std::env::var_os("PINTRACE_GO").map_or_else(|| PathBuf::from("/usr/lib/go-1.19/bin/go"), PathBuf::from)
}

fn go_new() -> PathBuf {
    let go = std::env::var_os("PINTRACE_GO_NEW")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/go-1.26/go/bin/go"), PathBuf::from);
    assert!(go.exists(), "{} is missing: `cargo xtask setup` installs the current Go", go.display());
    go
}

fn go_env(go: &Path, key: &str) -> String {
    let out = Command::new(go).args(["env", key]).env("GOTOOLCHAIN", "local").output().expect("running go env");
    assert!(out.status.success(), "{} env {key} failed", go.display());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What the toolchain's own reader says: the lines of `go version -m BIN`
/// after the first, without their leading tab.
fn go_version_m(go: &Path, bin: &Path) -> (String, Vec<String>) {
    let out =
        Command::new(go).args(["version", "-m"]).arg(bin).env("GOTOOLCHAIN", "local").output().expect("go version");
    assert!(out.status.success(), "go version -m {} failed", bin.display());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let version = lines.next().and_then(|l| l.rsplit(": ").next()).unwrap_or_default().to_string();
    (version, lines.map(|l| l.trim_start_matches('\t').trim_end().to_string()).collect())
}

/// Our build info in the same lines (values that Go would quote are quoted).
fn as_go_prints(bi: &BuildInfo) -> Vec<String> {
    let mut lines = vec![format!("path\t{}", bi.path)];
    for (word, m) in bi.main.iter().map(|m| ("mod", m)).chain(bi.deps.iter().map(|m| ("dep", m))) {
        lines.push(format!("{word}\t{}\t{}\t{}", m.path, m.version, m.sum).trim_end().to_string());
    }
    for s in &bi.settings {
        let quote = s.value.contains([' ', '\t', '"', '`']);
        lines.push(if quote {
            format!("build\t{}={:?}", s.key, s.value)
        } else {
            format!("build\t{}={}", s.key, s.value)
        });
    }
    lines
}

/// Checks the build info of `bin` (built by `go` with `flags`) against the toolchain.
fn check_build_info(go: &Path, bin: &Path, binary: &GoBinary, flags: &[&str]) {
    let bi = binary.build_info().unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let (go_says, go_lines) = go_version_m(go, bin);
    assert_eq!(bi.go_version, go_env(go, "GOVERSION"));
    assert_eq!(bi.go_version, go_says);
    assert_eq!(binary.go_version(), go_says);
    assert_eq!(bi.path, "pintrace.test/maxprocs");
    let main = bi.main.as_ref().expect("a module build has a main module");
    assert_eq!((main.path.as_str(), main.version.as_str()), ("pintrace.test/maxprocs", "(devel)"));
    assert!(bi.deps.is_empty(), "{:?}", bi.deps);
    assert_eq!(bi.goos(), Some(go_env(go, "GOOS").as_str()));
    assert_eq!(bi.goarch(), Some(go_env(go, "GOARCH").as_str()));
    assert_eq!(bi.cgo_enabled(), Some(false));
    assert_eq!(as_go_prints(bi), go_lines, "our build info differs from `go version -m`");
    if flags.contains(&"-ldflags=-s") {
        assert_eq!(bi.setting("-ldflags"), Some("-s"));
    }
    // Go 1.19 does not record -buildmode=pie; later Go does.
    if flags.contains(&"-buildmode=pie") && bi.go_release() >= Some((1, 20)) {
        assert_eq!(bi.build_mode(), Some("pie"));
    }
    if bi.go_release() >= Some((1, 25)) {
        // The go.mod says `go 1.19`: container-aware GOMAXPROCS is off.
        assert_eq!(bi.godebug_default("containermaxprocs"), Some("0"), "{:?}", bi.default_godebug());
        assert_eq!(bi.godebug_default("updatemaxprocs"), Some("0"));
    }
}

/// Starts the program, attaches, and follows runtime.GOMAXPROCS(3), (1), (2).
fn follows_gomaxprocs(go: &Path, flags: &[&str]) {
    let bin = go_program_with(go, "maxprocs", flags);
    let mut w = Workload::spawn(&bin, &[]);
    let initial: u32 = w.ready[0].parse().expect("GOMAXPROCS in the ready line");
    let numcpu: u32 = w.ready[1].parse().expect("NumCPU in the ready line");
    let p = GoProcess::attach(w.pid).unwrap_or_else(|e| panic!("attaching to {}: {e:#}", bin.display()));

    check_build_info(go, &bin, p.binary(), flags);
    let on_disk = GoBinary::open(&bin).expect("opening the binary");
    assert_eq!(on_disk.build_info(), p.binary().build_info());
    let pie = flags.contains(&"-buildmode=pie");
    assert_eq!(p.binary().is_pie(), pie);
    assert_eq!(p.load_bias() != 0, pie, "load bias {:#x}", p.load_bias());
    assert!(!p.binary().is_stripped());

    assert_eq!(p.gomaxprocs().expect("GOMAXPROCS"), initial);
    assert_eq!(p.ncpu().expect("the runtime's CPU count"), numcpu);
    for n in [3, 1, 2] {
        w.send(&n.to_string());
        assert_eq!(w.read_line(), format!("set {n}"));
        assert_eq!(p.gomaxprocs().expect("GOMAXPROCS"), n, "after runtime.GOMAXPROCS({n})");
        assert_eq!(p.gomaxprocs().expect("GOMAXPROCS"), n, "read again");
    }
    assert!(w.wait().success());
    // Once the process is gone, a read fails (and does not panic).
    assert!(matches!(p.gomaxprocs(), Err(GoError::Memory { .. })), "{:?}", p.gomaxprocs());
}

/// A stripped build: attach works, the build info is read, GOMAXPROCS is
/// unknown with exactly that said.
fn stripped(go: &Path, flags: &[&str]) {
    let bin = go_program_with(go, "maxprocs", flags);
    let w = Workload::spawn(&bin, &[]);
    let p = GoProcess::attach(w.pid).unwrap_or_else(|e| panic!("attaching to {}: {e:#}", bin.display()));
    assert!(p.binary().is_stripped());
    check_build_info(go, &bin, p.binary(), flags);
    let err = p.gomaxprocs().expect_err("a stripped binary has no runtime.gomaxprocs");
    assert!(matches!(err, GoError::Stripped { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} is stripped: no symbol runtime.gomaxprocs; GOMAXPROCS unknown", bin.display())
    );
    assert!(matches!(p.ncpu(), Err(GoError::Stripped { .. })));
    assert!(p.gomaxprocs_addr().is_none());
    // -s drops DWARF too: the threads are unknown, and that is what is said.
    assert!(matches!(p.threads(), Err(GoError::NoDwarf { .. })), "{:?}", p.threads());
    assert_eq!(p.function_at(p.load_bias() + 0x401000), None, "no symbols, no names");
}

#[test]
fn go119_exe_follows_gomaxprocs() {
    follows_gomaxprocs(&go_old(), &[]);
}

#[test]
fn go119_pie_follows_gomaxprocs() {
    follows_gomaxprocs(&go_old(), &["-buildmode=pie"]);
}

#[test]
fn go119_stripped_reads_build_info_and_says_stripped() {
    stripped(&go_old(), &["-ldflags=-s"]);
}

#[test]
fn go126_exe_follows_gomaxprocs() {
    follows_gomaxprocs(&go_new(), &[]);
}

#[test]
fn go126_pie_follows_gomaxprocs() {
    follows_gomaxprocs(&go_new(), &["-buildmode=pie"]);
}

#[test]
fn go126_stripped_pie_reads_build_info_and_says_stripped() {
    stripped(&go_new(), &["-buildmode=pie", "-ldflags=-s"]);
}

#[test]
fn a_program_that_is_not_go_is_not_go() {
    let sleep = Path::new("/bin/sleep");
    let err = GoBinary::open(sleep).expect_err("sleep is not Go");
    assert!(matches!(err, GoError::NotGo { .. }), "{err:?}");
    assert!(err.to_string().starts_with("/bin/sleep is not a Go binary"), "{err}");

    let mut child = Command::new(sleep).arg("60").stdin(Stdio::null()).spawn().expect("starting sleep");
    let result = GoProcess::attach(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let err = result.expect_err("attaching to sleep");
    assert!(matches!(err.downcast_ref::<GoError>(), Some(GoError::NotGo { .. })), "{err:#}");
}

/// How long one gomaxprocs() read takes (printed; run with --nocapture).
#[test]
fn gomaxprocs_read_cost() {
    for (go, flags) in [(go_old(), &[][..]), (go_new(), &["-buildmode=pie"][..])] {
        let bin = go_program_with(&go, "maxprocs", flags);
        let w = Workload::spawn(&bin, &[]);
        let initial: u32 = w.ready[0].parse().expect("GOMAXPROCS in the ready line");
        let p = GoProcess::attach(w.pid).expect("attach");
        let mut ns: Vec<u128> = (0..1000)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(p.gomaxprocs().expect("GOMAXPROCS"), initial);
                t.elapsed().as_nanos()
            })
            .collect();
        ns.sort_unstable();
        let attach_t = Instant::now();
        drop(GoProcess::attach(w.pid).expect("attach"));
        let attach_us = attach_t.elapsed().as_micros();
        eprintln!(
            "goruntime: {} {flags:?}: gomaxprocs() over 1000 reads: median {} ns, p99 {} ns, max {} ns; attach {attach_us} us",
            p.binary().go_version(),
            ns[500],
            ns[990],
            ns[999]
        );
        assert!(ns[500] < 100_000, "a read should take microseconds, not {} ns", ns[500]);
    }
}

// ---- threads: the M list ----

/// The thread IDs of process `pid` now.
fn tasks(pid: u32) -> BTreeSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("listing /proc/PID/task")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn count(threads: &[GoThread], role: GoRole) -> usize {
    threads.iter().filter(|t| t.role == role).count()
}

fn one(threads: &[GoThread], role: GoRole) -> &GoThread {
    let mut of_role = threads.iter().filter(|t| t.role == role);
    let t = of_role.next().unwrap_or_else(|| panic!("no {} thread in {threads:#?}", role.label()));
    assert!(of_role.next().is_none(), "more than one {} thread in {threads:#?}", role.label());
    t
}

/// Starts tests/go/pinned with `n` pinned goroutines and attaches.
fn start_pinned(go: &Path, flags: &[&str], n: usize) -> (PathBuf, Workload, GoProcess) {
    start_pinned_with(go, flags, n, false)
}

/// With `lock_main`, the main goroutine locks the main thread first, so
/// that signal.Notify's goroutine cannot take it.
fn start_pinned_with(go: &Path, flags: &[&str], n: usize, lock_main: bool) -> (PathBuf, Workload, GoProcess) {
    let bin = go_program_with(go, "pinned", flags);
    let n_arg = n.to_string();
    let args: &[&str] = if lock_main { &[&n_arg, "lockmain"] } else { &[&n_arg] };
    let w = Workload::spawn(&bin, args);
    assert_eq!(w.ready, [n.to_string()], "the ready line");
    let p = GoProcess::attach(w.pid).unwrap_or_else(|e| panic!("attaching to {}: {e:#}", bin.display()));
    (bin, w, p)
}

/// Checks every rule the M list must satisfy in the pinned program with
/// `n` of its goroutines locked, and returns the threads. `lock_main`: the
/// program locked its main thread to the main goroutine.
fn check_threads(p: &GoProcess, n: usize, lock_main: bool) -> Vec<GoThread> {
    let pid = p.pid();
    let ts = p.threads().unwrap_or_else(|e| panic!("threads of {pid}: {e}"));
    let live = tasks(pid);
    for t in &ts {
        assert!(live.contains(&t.tid), "M with thread {} is not a thread of {pid} ({live:?})", t.tid);
    }
    let tids: BTreeSet<u32> = ts.iter().map(|t| t.tid).collect();
    assert_eq!(tids.len(), ts.len(), "a thread appears twice: {ts:#?}");

    assert_eq!(count(&ts, GoRole::Pinned), n, "{ts:#?}");
    for t in ts.iter().filter(|t| t.role == GoRole::Pinned) {
        assert_eq!(t.locked_g_start.as_deref(), Some("main.pinnedWorker"), "{t:?}");
        assert_eq!(t.locked_ext, 1, "{t:?}");
    }
    let main = one(&ts, GoRole::Main);
    assert_eq!(main.tid, pid);
    let sysmon = one(&ts, GoRole::Sysmon);
    assert_eq!(sysmon.start_fn.as_deref(), Some("runtime.sysmon"));
    assert!(live.contains(&sysmon.tid));
    assert_eq!(sysmon.locked_ext, 0);
    let template = one(&ts, GoRole::Template);
    assert_eq!(template.start_fn.as_deref(), Some("runtime.templateThread"));
    // signal.Notify's goroutine is locked to exactly one thread. Called
    // from main() it usually takes the main thread, which keeps its role
    // Main (the first rule); otherwise that thread is the Signal one.
    let sig: Vec<&GoThread> = ts
        .iter()
        .filter(|t| t.locked_g_start.as_deref().is_some_and(|s| s.starts_with("runtime.ensureSigM")))
        .collect();
    assert_eq!(sig.len(), 1, "one thread locked by runtime.ensureSigM: {ts:#?}");
    let signal = sig[0];
    assert_eq!(signal.locked_ext, 1, "{signal:?}");
    if signal.tid == pid {
        assert_eq!((signal.role, count(&ts, GoRole::Signal)), (GoRole::Main, 0));
    } else {
        assert_eq!(one(&ts, GoRole::Signal).tid, signal.tid);
    }
    if lock_main {
        assert_ne!(signal.tid, pid, "the main thread was taken");
        assert_eq!((main.locked_ext, main.locked_g_start.as_deref()), (1, Some("runtime.main")), "{main:?}");
    }
    // Workers are not locked by the program.
    for t in ts.iter().filter(|t| t.role == GoRole::Worker) {
        assert_eq!((t.locked_ext, t.locked_g_start.as_deref()), (0, None), "{t:?}");
    }
    let special: BTreeSet<u32> = ts.iter().filter(|t| t.role != GoRole::Worker).map(|t| t.tid).collect();
    let expected = n + 3 + usize::from(signal.tid != pid);
    assert_eq!(special.len(), expected, "main, sysmon, template, signal and the pinned are distinct: {ts:#?}");
    ts
}

/// The program as it comes, then with its main thread locked first.
fn pinned_roles(go: &Path, flags: &[&str]) {
    const N: usize = 6;
    for lock_main in [false, true] {
        let (_bin, _w, p) = start_pinned_with(go, flags, N, lock_main);
        assert_eq!(p.binary().is_pie(), flags.contains(&"-buildmode=pie"));
        let first = check_threads(&p, N, lock_main);
        // Read again: the same threads in the same roles (the runtime may
        // have started another worker meanwhile).
        let again = check_threads(&p, N, lock_main);
        let roles = |ts: &[GoThread]| {
            ts.iter().filter(|t| t.role != GoRole::Worker).map(|t| (t.tid, t.role)).collect::<BTreeMap<_, _>>()
        };
        assert_eq!(roles(&first), roles(&again));
        let pid = p.pid();
        eprintln!(
            "goruntime: {} {flags:?} lock_main={lock_main}: {} Ms: {}",
            p.binary().go_version(),
            first.len(),
            first
                .iter()
                .map(|t| format!("{}={}{}", t.tid - pid, t.role.label(), t.locked_g_start.as_ref().map_or("", |_| "*")))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

/// The program in its own PID namespace, as every container runs it: the
/// runtime stores namespace thread IDs in `m.procid`, which pintrace maps
/// to its own (NSpid) for every role and pin to be right.
fn pinned_roles_in_a_pid_namespace(go: &Path, flags: &[&str]) {
    const N: usize = 4;
    let bin = go_program_with(go, "pinned", flags);
    let w = Workload::spawn_in_pid_namespace(&bin, &[&N.to_string(), "lockmain"]);
    assert_eq!(w.ns_pid, Some(1), "the program is PID 1 of its namespace");
    let p = GoProcess::attach(w.pid).unwrap_or_else(|e| panic!("attaching to {}: {e:#}", bin.display()));
    assert!(p.in_pid_namespace());
    check_threads(&p, N, true);
}

#[test]
fn go119_in_a_pid_namespace_finds_the_pinned_threads_and_roles() {
    pinned_roles_in_a_pid_namespace(&go_old(), &[]);
}

#[test]
fn go126_pie_in_a_pid_namespace_finds_the_pinned_threads_and_roles() {
    pinned_roles_in_a_pid_namespace(&go_new(), &["-buildmode=pie"]);
}

#[test]
fn go119_exe_finds_the_pinned_threads_and_roles() {
    pinned_roles(&go_old(), &[]);
}

#[test]
fn go119_pie_finds_the_pinned_threads_and_roles() {
    pinned_roles(&go_old(), &["-buildmode=pie"]);
}

#[test]
fn go126_exe_finds_the_pinned_threads_and_roles() {
    pinned_roles(&go_new(), &[]);
}

#[test]
fn go126_pie_finds_the_pinned_threads_and_roles() {
    pinned_roles(&go_new(), &["-buildmode=pie"]);
}

/// SIGUSR1 makes half the pinned goroutines unlock: their threads stay,
/// now as workers; the rest stay pinned.
fn unlocking_half_is_seen(go: &Path, flags: &[&str]) {
    const N: usize = 6;
    let (_bin, mut w, p) = start_pinned(go, flags, N);
    let before = check_threads(&p, N, false);
    let pinned_before: BTreeSet<u32> = before.iter().filter(|t| t.role == GoRole::Pinned).map(|t| t.tid).collect();
    // SAFETY: kill on our own child's PID, which has not been reaped.
    assert_eq!(unsafe { libc::kill(w.pid as libc::pid_t, libc::SIGUSR1) }, 0);
    assert_eq!(w.read_line(), format!("unlocked {}", N / 2));
    let after = check_threads(&p, N - N / 2, false);
    let pinned_after: BTreeSet<u32> = after.iter().filter(|t| t.role == GoRole::Pinned).map(|t| t.tid).collect();
    assert!(pinned_after.is_subset(&pinned_before), "{pinned_before:?} → {pinned_after:?}");
    for tid in pinned_before.difference(&pinned_after) {
        let t = after.iter().find(|t| t.tid == *tid).unwrap_or_else(|| panic!("thread {tid} left the M list"));
        assert_eq!((t.role, t.locked_ext, t.locked_g_start.as_deref()), (GoRole::Worker, 0, None), "{t:?}");
    }
}

#[test]
fn go119_exe_sees_unlocking() {
    unlocking_half_is_seen(&go_old(), &[]);
}

#[test]
fn go126_pie_sees_unlocking() {
    unlocking_half_is_seen(&go_new(), &["-buildmode=pie"]);
}

/// `-ldflags=-w`: symbols but no DWARF. Attach and GOMAXPROCS work; the
/// threads are a typed error that says what is missing.
fn without_dwarf(go: &Path) {
    let (bin, _w, p) = start_pinned(go, &["-ldflags=-w"], 2);
    assert!(!p.binary().is_stripped());
    assert!(p.gomaxprocs().is_ok());
    let err = p.threads().expect_err("no DWARF, no layout");
    assert!(matches!(err, GoError::NoDwarf { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} has no DWARF debug info (no .debug_info section: built with -ldflags=-w or -s, or stripped); \
             the layout of runtime.m and runtime.g is unknown, so its Go threads cannot be read",
            bin.display()
        )
    );
    assert!(matches!(p.binary().runtime_layout(), Err(GoError::NoDwarf { .. })));
    // Function names come from the symbol table, which -w keeps.
    let (addr, _) = symbol(&bin, "runtime.sysmon");
    assert_eq!(p.binary().function_at(addr), Some("runtime.sysmon"));
}

/// Go 1.18 and older write DWARF as GNU `.zdebug_*` sections, not as
/// SHF_COMPRESSED `.debug_*` ones: the same program with its DWARF
/// uncompressed by the linker and compressed the old way by objcopy reads
/// to the same layout, and its threads and roles read as before.
#[test]
fn go119_gnu_compressed_dwarf_reads_like_go118s() {
    let plain = go_program_with(&go_old(), "pinned", &["-ldflags=-compressdwarf=false"]);
    let zdebug = plain.with_file_name("pinned-zdebug");
    let status = Command::new("objcopy")
        .arg("--compress-debug-sections=zlib-gnu")
        .arg(&plain)
        .arg(&zdebug)
        .status()
        .expect("running objcopy (binutils)");
    assert!(status.success(), "objcopy --compress-debug-sections=zlib-gnu failed");
    let sections = Command::new("readelf").args(["-S", "-W"]).arg(&zdebug).output().expect("readelf -S");
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(sections.contains(".zdebug_info") && !sections.contains(" .debug_info"), "{sections}");
    let want = GoBinary::open(&plain).expect("open").runtime_layout().expect("layout").to_owned();
    let got = GoBinary::open(&zdebug).expect("open .zdebug").runtime_layout().map(|l| l.to_owned());
    assert_eq!(got.expect("the layout from .zdebug_info"), want);
    const N: usize = 3;
    let w = Workload::spawn(&zdebug, &[&N.to_string()]);
    let p = GoProcess::attach(w.pid).expect("attach");
    check_threads(&p, N, false);
}

#[test]
fn go119_without_dwarf_says_so() {
    without_dwarf(&go_old());
}

#[test]
fn go126_without_dwarf_says_so() {
    without_dwarf(&go_new());
}

/// A symbol's address and size, as `readelf -s` reads the symbol table.
fn symbol(bin: &Path, name: &str) -> (u64, u64) {
    let out = Command::new("readelf").arg("-sW").arg(bin).output().expect("running readelf (binutils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 8 && f[7] == name)
        .map(|f| (u64::from_str_radix(f[1], 16).expect("value"), f[2].parse().expect("size")))
        .unwrap_or_else(|| panic!("no symbol {name} in {}", bin.display()))
}

/// The members of struct `ty` and their offsets, as `readelf` reads the
/// DWARF (it inflates compressed sections itself): an independent reader.
fn readelf_members(dump: &str, ty: &str) -> BTreeMap<String, u64> {
    let mut lines = dump.lines().peekable();
    let mut members = BTreeMap::new();
    while let Some(l) = lines.next() {
        if !(l.contains("<1>") && l.contains("DW_TAG_structure_type")) {
            continue;
        }
        let name = lines.peek().map(|n| n.trim_end().ends_with(&format!("DW_AT_name        : {ty}")));
        if name != Some(true) {
            continue;
        }
        let mut member = None;
        for l in lines.by_ref() {
            if l.contains("<1>") {
                break;
            }
            if let Some(n) = l.split("DW_AT_name        : ").nth(1) {
                member = Some(n.trim_end().to_string());
            }
            if let Some(o) = l.split("DW_AT_data_member_location: ").nth(1) {
                members.insert(member.take().expect("member name first"), o.trim().parse().expect("offset"));
            }
        }
        return members;
    }
    panic!("no struct {ty} in readelf's dump");
}

fn layout_matches_readelf(go: &Path, flags: &[&str]) -> RuntimeLayout {
    let bin = go_program_with(go, "pinned", flags);
    let b = GoBinary::open(&bin).expect("open");
    let l = *b.runtime_layout().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("readelf").arg("--debug-dump=info").arg(&bin).output().expect("readelf");
    assert!(out.status.success());
    let dump = String::from_utf8_lossy(&out.stdout);
    let m = readelf_members(&dump, "runtime.m");
    let g = readelf_members(&dump, "runtime.g");
    let at = |s: &BTreeMap<String, u64>, k: &str| *s.get(k).unwrap_or_else(|| panic!("readelf: no member {k}"));
    assert_eq!(l.m_procid, at(&m, "procid"));
    assert_eq!(l.m_locked_ext, at(&m, "lockedExt"));
    assert_eq!(l.m_locked_int, at(&m, "lockedInt"));
    assert_eq!(l.m_mstartfn, at(&m, "mstartfn"));
    assert_eq!(l.m_alllink, at(&m, "alllink"));
    assert_eq!(l.m_lockedg, at(&m, "lockedg"));
    assert_eq!(l.g_startpc, at(&g, "startpc"));
    eprintln!("goruntime: {} {flags:?}: {l:?}", b.go_version());
    l
}

#[test]
fn dwarf_layout_matches_readelf() {
    let old = layout_matches_readelf(&go_old(), &[]);
    // Known from Go 1.19's runtime2.go and MEASURED facts.
    assert_eq!((old.m_procid, old.m_locked_ext, old.m_locked_int), (72, 616, 620));
    assert_eq!(layout_matches_readelf(&go_old(), &["-buildmode=pie"]), old);
    let new = layout_matches_readelf(&go_new(), &[]);
    assert_ne!(new, old, "Go 1.26 moved fields");
    assert_eq!(layout_matches_readelf(&go_new(), &["-buildmode=pie"]), new);
}

/// Code addresses name functions, at link time and at run time (PIE).
fn names_functions(go: &Path, flags: &[&str]) {
    let (bin, _w, p) = start_pinned(go, flags, 1);
    for name in ["runtime.sysmon", "main.pinnedWorker", "runtime.LockOSThread"] {
        let (addr, size) = symbol(&bin, name);
        assert!(size > 0, "{name} has a size");
        for a in [addr, addr + size / 2, addr + size - 1] {
            assert_eq!(p.binary().function_at(a), Some(name), "{name} at {a:#x}");
            assert_eq!(p.function_at(a + p.load_bias()), Some(name), "{name} at {a:#x} + bias");
        }
        assert_ne!(p.binary().function_at(addr + size), Some(name), "past {name}");
    }
    assert_eq!(p.binary().function_at(0), None);
    assert_eq!(p.binary().function_at(u64::MAX), None);
}

#[test]
fn go119_exe_names_functions() {
    names_functions(&go_old(), &[]);
}

#[test]
fn go126_pie_names_functions() {
    names_functions(&go_new(), &["-buildmode=pie"]);
}

/// What reading the DWARF adds to opening a binary: the same program
/// with and without DWARF (printed; run with --nocapture).
#[test]
fn dwarf_parse_cost() {
    for go in [go_old(), go_new()] {
        let with = go_program_with(&go, "pinned", &[]);
        let without = go_program_with(&go, "pinned", &["-ldflags=-w"]);
        let median = |bin: &Path| {
            let mut us: Vec<u128> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    let b = GoBinary::open(bin).expect("open");
                    let us = t.elapsed().as_micros();
                    drop(b);
                    us
                })
                .collect();
            us.sort_unstable();
            us[3]
        };
        let (a, b) = (median(&with), median(&without));
        let version = GoBinary::open(&with).expect("open").go_version().to_string();
        eprintln!(
            "goruntime: {version}: GoBinary::open {a} us with DWARF, {b} us without: DWARF ~{} us",
            a.saturating_sub(b)
        );
        assert!(a < 2_000_000, "opening a small Go binary took {a} us");
    }
}

/// One threads() call with 1,000 Ms (printed; run with --nocapture).
#[test]
fn threads_cost() {
    const N: usize = 1000;
    let (_bin, _w, p) = start_pinned(&go_new(), &["-buildmode=pie"], N);
    let ts = check_threads(&p, N, false);
    let mut us: Vec<u128> = (0..21)
        .map(|_| {
            let t = Instant::now();
            let ts = p.threads().expect("threads");
            let us = t.elapsed().as_micros();
            assert!(ts.len() >= N + 4);
            us
        })
        .collect();
    us.sort_unstable();
    eprintln!(
        "goruntime: threads() with {} Ms ({N} pinned): median {} us, min {} us, max {} us",
        ts.len(),
        us[10],
        us[0],
        us[20]
    );
    // The target is well under 5 ms in a release build; a debug build and a
    // busy machine get some slack.
    assert!(us[10] < 20_000, "threads() took {} us with {N} Ms", us[10]);
}

/// An ELF64 section header field: (offset of the header table, entry size, count).
fn section_table(b: &[u8]) -> (usize, usize, usize) {
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes")) as usize;
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().expect("2 bytes")) as usize;
    (u64_at(0x28), u16_at(0x3a), u16_at(0x3c))
}

fn patched(name: &str, bin: &Path, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(bin).expect("reading the Go binary");
    patch(&mut b);
    let out = pintrace_tests::scratch(name);
    std::fs::write(&out, b).expect("writing the patched binary");
    out
}

/// The largest resident set this process has had, in KiB.
fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The executable is the target's: damage is said (not taken for "not Go"),
/// and its sizes do not decide what pintrace reads or allocates.
#[test]
fn a_damaged_or_huge_go_binary_is_said_and_bounded() {
    let bin = go_program_with(&go_old(), "pinned", &[]);
    let version = GoBinary::open(&bin).expect("the binary").go_version().to_string();
    assert!(version.starts_with("go1.19"), "{version}");

    // Section headers out of the file: a Go binary that cannot be read, said so.
    let shoff = patched("damaged-shoff", &bin, |b| b[0x28..0x30].copy_from_slice(&(1u64 << 40).to_le_bytes()));
    match GoBinary::open(&shoff) {
        Err(e @ GoError::Damaged { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&version) && msg.contains("cannot be read"), "{msg}");
        }
        other => panic!("section headers out of the file: {other:?}"),
    }

    // A symbol table that says it is 1 TiB: refused before it is read.
    let symtab = patched("damaged-symtab", &bin, |b| {
        let (off, size, n) = section_table(b);
        let sym = (0..n).map(|i| off + i * size).find(|&h| b[h + 4..h + 8] == 2u32.to_le_bytes()).expect(".symtab");
        b[sym + 0x20..sym + 0x28].copy_from_slice(&(1u64 << 40).to_le_bytes());
    });
    match GoBinary::open(&symtab) {
        Err(e @ GoError::Damaged { .. }) => assert!(e.to_string().contains("more than"), "{e}"),
        other => panic!("a 1 TiB symbol table: {other:?}"),
    }

    // Build info whose magic is gone: still Go (its runtime symbols say so), version unknown.
    let no_magic = patched("damaged-buildinfo", &bin, |b| {
        let at = b.windows(14).position(|w| w == b"\xff Go buildinf:").expect("the build info magic");
        b[at..at + 14].fill(0);
    });
    let b = GoBinary::open(&no_magic).expect("still a Go binary");
    assert_eq!(b.go_version(), "unknown");
    assert!(b.runtime_layout().is_ok(), "its DWARF is intact");

    // A 4 GiB sparse copy: only the headers and the sections needed are read.
    let sparse = patched("sparse-4g", &bin, |_| {});
    std::fs::OpenOptions::new().write(true).open(&sparse).expect("open").set_len(4 << 30).expect("set_len");
    let before = peak_rss_kib();
    let b = GoBinary::open(&sparse).expect("the sparse copy");
    assert_eq!(b.go_version(), version);
    let after = peak_rss_kib();
    assert!(after < before + 256 * 1024, "reading a 4 GiB file grew the peak RSS from {before} to {after} KiB");
    std::fs::remove_file(&sparse).expect("removing the sparse copy");
}
