//! Creates threads in rounds and keeps them all alive until told to exit.
//! Usage: hold ROUNDS PER_ROUND. Prints `ready PID`; for each round, waits
//! for a line, creates PER_ROUND threads as fast as it can and prints
//! `tids ...`; after the last round waits for a line, then exits.
use std::{sync::mpsc, thread};

use pintrace_tests::{arg, gettid, ready_and_wait, say, wait_line};

fn main() {
    let (rounds, per_round) = (arg(1), arg(2));
    ready_and_wait("");
    let mut releases = Vec::new();
    let mut handles = Vec::new();
    for round in 0..rounds {
        if round > 0 {
            wait_line();
        }
        let mut tids = Vec::new();
        for _ in 0..per_round {
            let (tid_tx, tid_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            handles.push(thread::spawn(move || {
                let _ = tid_tx.send(gettid());
                let _ = go_rx.recv();
            }));
            releases.push(go_tx);
            tids.push(tid_rx.recv().expect("tid").to_string());
        }
        say(&format!("tids {}", tids.join(" ")));
    }
    wait_line();
    drop(releases);
    for h in handles {
        let _ = h.join();
    }
}
