//! Threads that sleep and wake on a CPU another thread keeps busy, so each
//! wake-up waits in the run queue. All on CPU 0 (the main thread pins itself
//! before it says ready; threads inherit it). A spinner runs for MS
//! milliseconds while N sleepers each sleep 1 ms in a loop; when the spinner
//! is done, every thread reads its own `/proc/thread-self/schedstat` and
//! exits. Usage: wake_wait MS N. Prints one line per thread,
//! `TID RUN_DELAY_NS TIMESLICES`, the kernel's total wait for a CPU over the
//! thread's life.
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use pintrace_tests::{arg, gettid, pin_to_cpu, ready_and_wait, say, spin};

/// `TID run_delay pcount` of the calling thread.
fn schedstat() -> String {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let f: Vec<&str> = text.split_whitespace().collect();
    format!("{} {} {}", gettid(), f[1], f[2])
}

fn main() {
    let ms = arg(1);
    let n = arg(2);
    pin_to_cpu(0);
    ready_and_wait("");
    let done = Arc::new(AtomicBool::new(false));
    let sleepers: Vec<_> = (0..n)
        .map(|_| {
            let done = done.clone();
            thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                }
                schedstat()
            })
        })
        .collect();
    let spinner = thread::spawn(move || {
        spin(Duration::from_millis(ms));
        schedstat()
    });
    let mut lines = vec![spinner.join().expect("spinner")];
    done.store(true, Ordering::Relaxed);
    lines.extend(sleepers.into_iter().map(|h| h.join().expect("sleeper")));
    for l in lines {
        say(&l);
    }
}
