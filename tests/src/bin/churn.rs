//! Creates threads at a steady rate. Usage: churn RATE SECONDS.
//! Prints `ready PID`, waits for a line, then creates RATE threads a second
//! (each sleeps 1 ms and exits) for SECONDS, prints `created N` once all
//! have exited, and exits.
use std::{
    thread,
    time::{Duration, Instant},
};

use pintrace_tests::{arg, ready_and_wait, say};

fn main() {
    let (rate, secs) = (arg(1), arg(2));
    ready_and_wait("");
    let start = Instant::now();
    let n = rate * secs;
    let mut threads = Vec::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        threads.push(thread::spawn(|| thread::sleep(Duration::from_millis(1))));
    }
    // Every thread has exited when this is said.
    threads.into_iter().for_each(|t| t.join().expect("a thread"));
    say(&format!("created {n}"));
}
