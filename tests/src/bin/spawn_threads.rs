//! Runs on its own (no handshake), for `pintrace top|record -- CMD`.
//! Usage: `spawn_threads N [FILE]`. Creates N threads (each sleeps 2 ms),
//! joins them, writes its effective UID to FILE if given, and exits.
use std::{thread, time::Duration};

use pintrace_tests::arg;

fn main() {
    let n = arg(1);
    for h in (0..n).map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(2)))).collect::<Vec<_>>() {
        h.join().expect("thread");
    }
    if let Some(file) = std::env::args().nth(2) {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        std::fs::write(file, uid.to_string()).expect("writing the UID file");
    }
}
