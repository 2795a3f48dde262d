//! A process whose main thread exits while another thread runs on.
//! Usage: leader_exits MS. On "go": prints the worker's TID, the main thread
//! exits (the leader becomes a zombie), and the worker sleeps 1 ms at a
//! time for MS milliseconds, then ends the process.
use std::{
    thread,
    time::{Duration, Instant},
};

use pintrace_tests::{arg, gettid, ready_and_wait, say};

fn main() {
    let ms = arg(1);
    ready_and_wait("");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(gettid());
        let end = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < end {
            thread::sleep(Duration::from_millis(1));
        }
        std::process::exit(0);
    });
    let worker = rx.recv().expect("worker TID");
    say(&format!("worker {worker}"));
    // The raw exit system call ends only this thread (exit(3) would end them all).
    // SAFETY: nothing on this thread is needed after it; the worker owns what it uses.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("SYS_exit returned");
}
