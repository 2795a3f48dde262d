//! The real binary in a real terminal (tmux): `top` on a real Go workload,
//! and `replay` of its recording run as a user without privileges.
use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use pintrace_tests::{go_program, pintrace_bin, Recording, Workload};

/// A detached tmux session of 160x45 running one shell command.
struct Tmux(String);

impl Tmux {
    fn start(name: &str, command: &str) -> Tmux {
        let _ = Command::new("tmux").args(["kill-session", "-t", name]).output();
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", "160", "-y", "45", command])
            .status()
            .expect("running tmux (cargo xtask setup installs it)");
        assert!(ok.success(), "tmux new-session failed");
        Tmux(name.to_string())
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux").args(["send-keys", "-t", &self.0]).args(keys).status().expect("send-keys");
        assert!(ok.success());
    }

    /// Waits (10 s at most) for the screen to satisfy `pred`.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "the screen never showed {what}:\n{s}");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

/// The table's rows (the lines after its header), as whitespace-split words.
fn rows(screen: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(head) = lines.iter().position(|l| l.starts_with("TID") && l.contains("NAME")) else { return vec![] };
    lines[head + 1..]
        .iter()
        .take_while(|l| l.split_whitespace().next().is_some_and(|w| w.chars().all(|c| c.is_ascii_digit())))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// %CPU of a row: the number after the state letter and the Go state.
fn cpu_pct(row: &[String]) -> f64 {
    let s = row.iter().position(|w| ["R", "W", "S", "X"].contains(&w.as_str())).expect("a state column");
    let go = ["run", "sys", "cgo", "idle", "spin", "lock", "lkwp", "?", "-"];
    assert!(go.contains(&row[s + 1].as_str()), "a Go state after the state: {row:?}");
    row[s + 2].parse().expect("a %CPU value")
}

fn busy_go(ms: &str) -> Workload {
    let mut w = Workload::spawn(&go_program("busy"), &["2", ms]);
    w.send("go");
    w
}

#[test]
fn top_shows_the_threads_sorts_opens_detail_and_quits_cleanly() {
    let w = busy_go("30000");
    let t =
        Tmux::start("pt-e2e-top", &format!("{} top --pid {}; echo EXIT=$?; sleep 60", pintrace_bin().display(), w.pid));
    let pid = format!("(pid {})", w.pid);
    // Two busy goroutines: the top rows are threads each near a full CPU.
    let s = t.wait_for("the workload's busy threads on top", |s| {
        let rows = rows(s);
        s.contains(&pid) && rows.len() >= 2 && rows.iter().take(2).all(|r| cpu_pct(r) > 20.0)
    });
    assert!(s.contains("SIGURG"), "{s}");
    let top = rows(&s)[0][0].clone();

    // A capture may catch tmux half-way through a frame: each wait asks for
    // the whole of what it checks, so a half-drawn screen is simply read again.
    t.keys(&["s"]);
    let s = t.wait_for("the table sorted by ascending TID", |s| {
        let tids: Vec<u64> = rows(s).iter().map(|r| r[0].parse().unwrap_or(0)).collect();
        s.contains("sorted by TID") && tids.len() > 1 && tids.windows(2).all(|p| p[0] < p[1])
    });
    let tids: Vec<u64> = rows(&s).iter().map(|r| r[0].parse().expect("tid")).collect();
    assert_eq!(tids.first().copied(), Some(u64::from(w.pid)), "the main thread has the lowest TID");

    t.keys(&["S"]);
    let s = t.wait_for("the TID sort reversed", |s| {
        let tids: Vec<u64> = rows(s).iter().map(|r| r[0].parse().unwrap_or(0)).collect();
        tids.len() > 1 && tids.windows(2).all(|p| p[0] > p[1])
    });
    assert!(s.contains("TID▼"), "{s}");

    // Back to %CPU (s cycles through every column), then open the busiest thread.
    for _ in 0..pintrace::tui::app::SortColumn::ALL.len() - 1 {
        t.keys(&["s"]);
    }
    t.wait_for("the table sorted by %CPU again", |s| s.contains("sorted by %CPU"));
    t.keys(&["Home", "Enter"]);
    let s = t.wait_for("the detail view", |s| {
        ["on-CPU time by CPU", "timeline", "run-queue waits", "signalled by"].iter().all(|w| s.contains(w))
    });
    assert!(s.contains(&top) || s.lines().next().is_some_and(|l| l.contains("thread")), "{s}");

    t.keys(&["Escape"]);
    t.wait_for("the main screen again", |s| s.contains("sorted by %CPU"));
    t.keys(&["q"]);
    let s = t.wait_for("pintrace's exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "q exits 0:\n{s}");
    assert!(!s.contains("sorted by"), "the terminal is restored (the screen is gone):\n{s}");
}

#[test]
fn replay_runs_without_privileges_and_says_when_the_recording_ends() {
    let mut w = Workload::spawn(&go_program("busy"), &["2", "1500"]);
    let pid = w.pid;
    let rec = Recording::start(pid, "replay-e2e", &[]);
    w.send("go");
    assert_eq!(w.read_line(), "done");
    assert!(w.wait().success());
    let done = rec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    let file = done.path.clone();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");

    let t = Tmux::start(
        "pt-e2e-replay",
        &format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups -- {} replay --speed 10 {}; echo EXIT=$?; sleep 60",
            pintrace_bin().display(),
            file.display()
        ),
    );
    let s = t.wait_for("the end of the recording and the workload's threads", |s| {
        s.contains("end of recording") && rows(s).iter().any(|r| r[0] == pid.to_string())
    });
    assert!(s.contains(&format!("(pid {pid})")) && s.contains("replay"), "{s}");
    // The final numbers stay until the user quits.
    thread::sleep(Duration::from_millis(500));
    assert!(t.screen().contains("end of recording"));
    t.keys(&["q"]);
    let s = t.wait_for("pintrace's exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
}

impl Tmux {
    /// tmux's view of the pane: (in the alternate screen, cursor shown).
    fn modes(&self) -> (bool, bool) {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.0, "#{alternate_on} #{cursor_flag}"])
            .output()
            .expect("display-message");
        let s = String::from_utf8_lossy(&out.stdout);
        let mut w = s.split_whitespace();
        (w.next() == Some("1"), w.next() == Some("1"))
    }

    /// The process the pane's shell runs (pintrace).
    fn child_of_shell(&self) -> u32 {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.0, "#{pane_pid}"])
            .output()
            .expect("display-message");
        let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("the pane's PID");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next().and_then(|p| p.parse().ok()) {
                return pid;
            }
            assert!(Instant::now() < deadline, "the shell started nothing");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn running(cmdline: &[&str]) -> bool {
    let want: Vec<u8> = cmdline.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc").expect("/proc").filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).any(
        |pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want)
                && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        },
    )
}

/// Any signal that ends `top` gives the terminal back (no alternate screen,
/// the cursor shown) and ends the command it started.
#[test]
fn signals_that_end_top_give_the_terminal_back() {
    for (sig, name) in
        [(libc::SIGQUIT, "SIGQUIT"), (libc::SIGUSR1, "SIGUSR1"), (libc::SIGALRM, "SIGALRM"), (libc::SIGPIPE, "SIGPIPE")]
    {
        let sleeper = ["sleep", "94.5"];
        let t = Tmux::start(
            "pt-signals",
            &format!("{} top -- {} {}; echo EXIT=$?; sleep 60", pintrace_bin().display(), sleeper[0], sleeper[1]),
        );
        t.wait_for("the screen", |s| s.contains("TID") && s.contains("sleep"));
        assert_eq!(t.modes(), (true, false), "top draws in the alternate screen, no cursor");
        let pid = t.child_of_shell();
        // SAFETY: kill of the pintrace the test started.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
        let s = t.wait_for("pintrace's exit", |s| s.contains("EXIT="));
        assert_eq!(t.modes(), (false, true), "after {name}, the terminal is back:\n{s}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(&sleeper) {
            assert!(Instant::now() < deadline, "after {name}, the command still runs");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// SIGTSTP (kill -TSTP, or a shell's job control) puts the screen away;
/// after `fg` the screen is back and takes keys at once.
#[test]
fn a_stopped_top_comes_back_with_fg() {
    let t = Tmux::start("pt-tstp", "bash --norc --noprofile -i");
    t.wait_for("a prompt", |s| s.contains('$') || s.contains('#'));
    t.keys(&[&format!("{} top -- sleep 93.5", pintrace_bin().display()), "Enter"]);
    t.wait_for("the screen", |s| s.contains("TID") && s.contains("sleep"));
    let pid = t.child_of_shell();
    // SAFETY: kill of the pintrace the test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTSTP) }, 0);
    let s = t.wait_for("the shell's job control", |s| s.contains("Stopped"));
    assert_eq!(t.modes(), (false, true), "stopped: the terminal is the shell's:\n{s}");
    t.keys(&["fg", "Enter"]);
    t.wait_for("the screen again", |s| s.contains("TID") && s.contains("sleep"));
    assert_eq!(t.modes(), (true, false));
    t.keys(&["q"]);
    let s = t.wait_for("the prompt after q", |s| !s.contains("TID"));
    assert_eq!(t.modes(), (false, true), "{s}");
}

/// In a terminal: a damaged recording says so on the screen when it ends
/// (not only after `q`); `--json` without `--batch` is an error, not a
/// screen that ignores it; a terminal that cannot draw (TERM=dumb) gets
/// batch output.
#[test]
fn the_screen_says_damage_refuses_batch_flags_and_knows_dumb_terminals() {
    let mut w = Workload::spawn(&go_program("busy"), &["2", "1500"]);
    let rec = Recording::start(w.pid, "to-damage", &[]);
    w.send("go");
    assert_eq!(w.read_line(), "done");
    assert!(w.wait().success());
    let done = rec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    let bytes = std::fs::read(&done.path).expect("the recording");
    let cut = pintrace_tests::scratch("damaged-for-screen.ptr");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).expect("writing");

    let t = Tmux::start(
        "pt-damaged",
        &format!("{} replay --speed max {}; echo EXIT=$?; sleep 60", pintrace_bin().display(), cut.display()),
    );
    t.wait_for("the damage on the screen", |s| s.contains("damaged recording"));
    t.keys(&["q"]);
    let s = t.wait_for("pintrace's exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=3") && s.contains("cut short"), "{s}");

    let t = Tmux::start(
        "pt-json",
        &format!("{} replay --json {}; echo EXIT=$?; sleep 60", pintrace_bin().display(), cut.display()),
    );
    let s = t.wait_for("pintrace's exit", |s| s.contains("EXIT="));
    assert!(s.contains("--json is for --batch output") && s.contains("EXIT=1"), "{s}");

    let t = Tmux::start(
        "pt-dumb",
        &format!("TERM=dumb {} replay {}; echo EXIT=$?; sleep 60", pintrace_bin().display(), cut.display()),
    );
    let s = t.wait_for("pintrace's exit", |s| s.contains("EXIT="));
    assert!(s.contains("the terminal cannot show the screen") && s.contains("EXIT=3"), "{s}");
    assert_eq!(t.modes(), (false, true), "no screen was opened");
}
