//! The Go-runtime reader against real Go programs, built by Go 1.19
//! (`PINTRACE_GO`) and by a current Go (`PINTRACE_GO_NEW`, 1.26): build info
//! as the toolchain's own `go version -m` reads it, GOMAXPROCS followed as
//! the program changes it, PIE and non-PIE, stripped binaries, and
//! programs that are not Go.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use pintrace::goruntime::{BuildInfo, GoBinary, GoError, GoProcess};
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
