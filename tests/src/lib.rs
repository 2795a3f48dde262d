//! Harness for pintrace's privileged integration tests, and the handshake
//! its workload programs (`src/bin`) share.
//!
//! A test starts a workload, which prints `ready PID` and waits for a line
//! on stdin; starts `pintrace record` on it and waits for its "recording"
//! line (every probe attached); then tells the workload to go. The
//! workload does exactly what the test asked, the recording ends when the
//! workload exits, and the test reads `pintrace report --json`.
use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio},
    sync::{mpsc, Mutex},
    thread,
    time::{Duration, Instant},
};

// ---- the workload side ----

/// Prints `ready PID` (plus `extra`) and blocks until the test sends a line.
pub fn ready_and_wait(extra: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {} {extra}", std::process::id());
    let _ = out.flush();
    drop(out);
    wait_line();
}

/// Blocks until a line (or end of input) arrives on stdin.
pub fn wait_line() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line
}

pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Restricts the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity(0, ...) act on the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "sched_setaffinity");
    }
}

/// Waits (10 s at most) until thread `tid` of this process is asleep
/// (state `S` in /proc): blocked on what it waits for, not on its way to it.
pub fn wait_asleep(tid: u32) {
    let path = format!("/proc/self/task/{tid}/stat");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('S')) {
            return;
        }
        assert!(Instant::now() < deadline, "thread {tid} never slept: {stat}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Burns CPU for `d` without sleeping.
pub fn spin(d: Duration) {
    let end = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < end {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

pub fn arg(n: usize) -> u64 {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("argument {n} must be a number"))
}

// ---- the test side ----

/// The pintrace binary under test (set by `cargo xtask test`).
pub fn pintrace_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PINTRACE_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/pintrace");
    assert!(p.exists(), "pintrace is not built: run these tests with `cargo xtask test`");
    p
}

/// Builds the Go program tests/go/NAME once and returns its path.
pub fn go_program(name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let go = std::env::var("PINTRACE_GO").unwrap_or_else(|_| "/usr/lib/go-1.19/bin/go".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("../target/go-tests").join(name);
    let status = Command::new(&go)
        .args(["build", "-o"])
        .arg(&out)
        .arg(root.join("go").join(name).join("main.go"))
        .env("GO111MODULE", "off")
        .env("GOCACHE", root.join("../target/go-cache"))
        .status()
        .unwrap_or_else(|e| panic!("running {go}: {e} (cargo xtask setup installs Go 1.19)"));
    assert!(status.success(), "building tests/go/{name} failed");
    out
}

/// Builds tests/go/NAME with the toolchain `go` as the module
/// `pintrace.test/NAME` (a go.mod with `go 1.19` beside a copy of main.go),
/// with extra `go build` flags, CGO_ENABLED=0 (1 with the pseudo-flag
/// "cgo"), offline (`GOTOOLCHAIN=local
/// GOPROXY=off`). The output goes to `target/go-tests/GOVERSION/NAME[-FLAGS]`.
pub fn go_program_with(go: &Path, name: &str, flags: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let go_cmd = || {
        let mut c = Command::new(go);
        c.env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GO111MODULE", "on")
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", root.join("../target/go-cache"));
        c
    };
    let version = go_cmd()
        .args(["env", "GOVERSION"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e} (cargo xtask setup installs the Go toolchains)", go.display()));
    assert!(version.status.success(), "{} env GOVERSION failed", go.display());
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let dir = root.join("../target/go-tests").join(&version);
    let module = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(&module).expect("creating the Go module directory");
    // The path /proc/PID/exe will show.
    let dir = dir.canonicalize().expect("target/go-tests");
    std::fs::copy(root.join("go").join(name).join("main.go"), module.join("main.go")).expect("copying main.go");
    std::fs::write(module.join("go.mod"), format!("module pintrace.test/{name}\n\ngo 1.19\n")).expect("writing go.mod");
    let mut out_name = name.to_string();
    for f in flags {
        out_name.push('-');
        out_name.extend(f.trim_start_matches('-').chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '=' {
                c
            } else {
                '_'
            }
        }));
    }
    let out = dir.join(out_name);
    // "cgo" is not a flag of go build: it builds with CGO_ENABLED=1.
    let cgo = flags.contains(&"cgo");
    let flags: Vec<&str> = flags.iter().copied().filter(|f| *f != "cgo").collect();
    let status = go_cmd()
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .current_dir(&module)
        .arg("build")
        .args(&flags)
        .arg("-o")
        .arg(&out)
        .arg(".")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", go.display()));
    assert!(status.success(), "building tests/go/{name} with {} {flags:?} failed", go.display());
    out
}

/// A fresh path in a per-test-binary scratch directory under target/, kept for inspection.
pub fn scratch(name: &str) -> PathBuf {
    let exe = std::env::current_exe().ok().and_then(|e| e.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-scratch").join(exe.unwrap_or_default());
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

pub fn monotonic_ns() -> u64 {
    pintrace::target::monotonic_ns()
}

/// Starts one of this crate's workload binaries: `workload!("threads", "10")`.
/// (A macro because `CARGO_BIN_EXE_*` exists only while integration tests compile.)
#[macro_export]
macro_rules! workload {
    ($name:literal $(, $arg:expr)* $(,)?) => {
        $crate::Workload::spawn(std::path::Path::new(env!(concat!("CARGO_BIN_EXE_", $name))), &[$($arg),*])
    };
}

/// A running workload that printed `ready PID ...`.
pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub pid: u32,
    /// The words after `ready PID`.
    pub ready: Vec<String>,
    /// Its PID in its own PID namespace (`spawn_in_pid_namespace`).
    pub ns_pid: Option<u32>,
}

impl Workload {
    pub fn spawn(program: &Path, args: &[&str]) -> Workload {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Workload::spawn_command(cmd)
    }

    /// `cmd` as a workload (with its own environment, say), its standard
    /// input and output piped.
    pub fn spawn_command(mut cmd: Command) -> Workload {
        let program = PathBuf::from(cmd.get_program());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading the workload's ready line");
        let mut words = line.split_whitespace().map(str::to_string);
        assert_eq!(words.next().as_deref(), Some("ready"), "workload said {line:?}");
        let pid = words.next().and_then(|p| p.parse().ok()).expect("ready PID");
        Workload { child, stdin, stdout, pid, ready: words.collect(), ns_pid: None }
    }

    /// `program ARGS` in a PID namespace of its own, as a container runs
    /// it (`unshare --pid --fork --kill-child`): `pid` is its PID here,
    /// `ns_pid` what it printed (its PID there, 1).
    pub fn spawn_in_pid_namespace(program: &Path, args: &[&str]) -> Workload {
        let mut argv = vec!["--pid", "--fork", "--kill-child", "--mount-proc"];
        let program = program.to_str().expect("a UTF-8 path");
        argv.push(program);
        argv.extend_from_slice(args);
        let mut w = Workload::spawn(Path::new("unshare"), &argv);
        let unshare = w.child.id();
        let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .expect("reading unshare's children");
        let kids: Vec<u32> = children.split_whitespace().filter_map(|c| c.parse().ok()).collect();
        assert_eq!(kids.len(), 1, "unshare --fork has one child: {children:?}");
        w.ns_pid = Some(w.pid);
        w.pid = kids[0];
        assert_ne!(w.pid, w.ns_pid.unwrap_or(0), "the program runs in another PID namespace");
        w
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("writing to the workload");
        stdin.flush().expect("flushing the workload's stdin");
    }

    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading the workload");
        line.trim_end().to_string()
    }

    /// Waits for the workload to exit (it must, within 60 s).
    pub fn wait(mut self) -> ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().expect("waiting for the workload") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("workload {} did not exit within 60 s", self.pid);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this run tests the fallback path: `PINTRACE_CLASSIC=1` makes
/// every `record` and `top` of the harness use classic tracepoints.
pub fn classic() -> bool {
    std::env::var_os("PINTRACE_CLASSIC").is_some_and(|v| v == "1")
}

fn path_flag() -> Option<&'static str> {
    classic().then_some("--classic-tracepoints")
}

/// The status the record header gives the scheduler probes on the path under test.
pub fn sched_probe_status() -> &'static str {
    if classic() {
        "attached (classic tracepoint: --classic-tracepoints given)"
    } else {
        "attached (tp_btf)"
    }
}

/// A running `pintrace record` (or `top --batch`) whose probes are all attached.
pub struct Recording {
    child: Child,
    pub path: PathBuf,
    stderr: mpsc::Receiver<String>,
    lines: Vec<String>,
    stdout: Option<thread::JoinHandle<String>>,
}

pub struct Finished {
    pub status: ExitStatus,
    pub stderr: String,
    pub path: PathBuf,
    /// Standard output, when it was captured.
    pub stdout: String,
}

impl Recording {
    pub fn start(pid: u32, name: &str, extra: &[&str]) -> Recording {
        Recording::start_to(pid, &scratch(&format!("{name}.ptr")), extra)
    }

    /// Records to `path` (which may be unusual, like /dev/full).
    pub fn start_to(pid: u32, path: &Path, extra: &[&str]) -> Recording {
        let mut cmd = Command::new(pintrace_bin());
        cmd.arg("record").args(path_flag()).args(["--pid", &pid.to_string(), "-o"]).arg(path).args(extra);
        Recording::spawn(cmd, path, false)
    }

    /// Runs pintrace with `args` (any command that says "pintrace: recording"
    /// or "pintrace: tracing" once attached), capturing its standard output.
    pub fn start_args(args: &[&str]) -> Recording {
        let mut cmd = Command::new(pintrace_bin());
        cmd.args(&args[..1]).args(path_flag()).args(&args[1..]);
        Recording::spawn(cmd, Path::new(""), true)
    }

    /// Runs `cmd` (which runs pintrace, say inside `unshare`), recording to `path`.
    pub fn start_cmd(cmd: Command, path: &Path) -> Recording {
        Recording::spawn(cmd, path, false)
    }

    fn spawn(mut cmd: Command, path: &Path, capture: bool) -> Recording {
        let path = path.to_path_buf();
        if capture {
            cmd.stdout(Stdio::piped());
        }
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("starting pintrace");
        let stdout = child.stdout.take().map(|mut out| {
            thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                s
            })
        });
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                if tx.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
        });
        let mut rec = Recording { child, path, stderr: rx, lines: Vec::new(), stdout };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rec.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let started = line.starts_with("pintrace: recording") || line.starts_with("pintrace: tracing");
                    rec.lines.push(line);
                    if started {
                        return rec;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = rec.child.wait().expect("pintrace status");
                    panic!("pintrace record exited ({status}) before attaching:\n{}", rec.lines.concat());
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    let _ = rec.child.kill();
                    panic!("pintrace record did not attach within 30 s:\n{}", rec.lines.concat());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to pintrace.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill on our own child's PID, which we have not reaped yet.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, sig) }, 0);
    }

    /// Waits (at most 60 s) for pintrace to end by itself.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for pintrace") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("pintrace record did not end within 60 s:\n{}", self.lines.concat());
            }
            thread::sleep(Duration::from_millis(10));
        };
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.lines.push(line);
        }
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        Finished { status, stderr: self.lines.concat(), path: self.path.clone(), stdout }
    }
}

impl Finished {
    /// Asserts a clean end and returns the JSON report.
    pub fn report(&self) -> serde_json::Value {
        assert!(self.status.success(), "pintrace record failed ({}):\n{}", self.status, self.stderr);
        let (code, json, stderr) = report_json(&self.path);
        assert_eq!(code, Some(0), "pintrace report failed:\n{stderr}");
        assert_eq!(json["lost_events"], 0, "events were lost:\n{}", self.stderr);
        assert_eq!(json["complete"], true);
        json
    }
}

/// Runs `pintrace report --json FILE`: (exit code, JSON or Null, stderr).
pub fn report_json(path: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out =
        Command::new(pintrace_bin()).args(["report", "--json"]).arg(path).output().expect("running pintrace report");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The thread with `tid` in a JSON report.
pub fn thread(report: &serde_json::Value, tid: u32) -> &serde_json::Value {
    report["threads"]
        .as_array()
        .expect("threads array")
        .iter()
        .find(|t| t["tid"] == tid)
        .unwrap_or_else(|| panic!("thread {tid} is not in the report"))
}

pub fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// Reads the kernel's own counters for one thread from /proc/PID/task/TID/sched.
pub fn kernel_sched(pid: u32, tid: u32) -> (u64, u64, u64) {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/task/{tid}/sched"))
        .and_then(|mut f| f.read_to_string(&mut text))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/task/{tid}/sched: {e}"));
    let get = |key: &str| -> u64 {
        text.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(key))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{key} missing from /proc/{pid}/task/{tid}/sched")) as u64
    };
    (get("se.nr_migrations"), get("nr_voluntary_switches"), get("nr_involuntary_switches"))
}
