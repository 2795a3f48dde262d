//! Sends exactly M SIGURG with tgkill from the main thread to W worker
//! threads, round robin. Usage: sigurg M W.
//! Prints `sender TID workers TID...` once done, then exits.
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc, Arc,
    },
    thread,
    time::Duration,
};

use pintrace_tests::{arg, gettid, ready_and_wait, say};

static RECEIVED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigurg(_: libc::c_int) {
    RECEIVED.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    let (m, w) = (arg(1), arg(2));
    // SAFETY: installs an async-signal-safe handler (one atomic add).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigurg as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        assert_eq!(libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut()), 0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let workers: Vec<_> = (0..w)
        .map(|_| {
            let (stop, tx) = (stop.clone(), tx.clone());
            thread::spawn(move || {
                tx.send(gettid()).expect("send tid");
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    let tids: Vec<u32> = (0..w).map(|_| rx.recv().expect("worker tid")).collect();
    ready_and_wait("");
    let pid = std::process::id() as libc::pid_t;
    for i in 0..m {
        let tid = tids[(i % w) as usize] as libc::pid_t;
        // SAFETY: tgkill to a thread of this process that is alive until `stop`.
        let rc = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGURG) };
        assert_eq!(rc, 0, "tgkill");
        if i % 16 == 15 {
            thread::sleep(Duration::from_micros(200));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in workers {
        h.join().expect("worker");
    }
    let list: Vec<String> = tids.iter().map(u32::to_string).collect();
    say(&format!("sender {} workers {}", gettid(), list.join(" ")));
}
