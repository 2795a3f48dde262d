//! Creates exactly N threads that each run briefly and exit.
//! Usage: threads N. Prints the TIDs it created, then exits.
use std::{thread, time::Duration};

use pintrace_tests::{arg, gettid, ready_and_wait, say};

fn main() {
    let n = arg(1);
    ready_and_wait("");
    let tids: Vec<String> = (0..n)
        .map(|_| {
            thread::spawn(|| {
                thread::sleep(Duration::from_millis(2));
                gettid()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("thread").to_string())
        .collect();
    say(&format!("tids {}", tids.join(" ")));
}
