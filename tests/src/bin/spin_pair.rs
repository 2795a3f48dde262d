//! Two threads on CPU 0, both spinning for MS milliseconds: each waits on
//! the run queue while the other runs. The main thread pins itself to CPU 0
//! before it says ready, so the spinners are born with CPU 0 as their only
//! CPU and never migrate. Usage: spin_pair MS. Prints `tids A B` and exits.
use std::{thread, time::Duration};

use pintrace_tests::{arg, gettid, pin_to_cpu, ready_and_wait, say, spin};

fn main() {
    let ms = arg(1);
    pin_to_cpu(0);
    ready_and_wait("");
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                spin(Duration::from_millis(ms));
                gettid()
            })
        })
        .collect();
    let tids: Vec<String> = spinners.into_iter().map(|h| h.join().expect("spinner").to_string()).collect();
    say(&format!("tids {}", tids.join(" ")));
}
