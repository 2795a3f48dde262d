//! The pipe ping-pong of `pingpong`, paced: two threads on CPU 0 pass a
//! byte back and forth ROUND_TRIPS times in a batch, BATCHES_PER_SEC
//! batches a second on a fixed grid (a late batch starts at once), until
//! killed. A round trip is two context switches (pintrace records two
//! events, four with wake-up events), a batch a few more (the pacing sleep),
//! so the event rate is set by the two numbers. Usage: paced ROUND_TRIPS BATCHES_PER_SEC.
//! Prints `ready PID`, waits for a line, then runs until it is killed.
use std::{
    fs::File,
    io::{Read, Write},
    os::fd::FromRawFd,
    thread,
    time::{Duration, Instant},
};

use pintrace_tests::{arg, pin_to_cpu, ready_and_wait};

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn main() {
    let (round_trips, per_sec) = (arg(1), arg(2));
    let period = Duration::from_secs_f64(1.0 / per_sec.max(1) as f64);
    let (mut a_rx, mut a_tx) = pipe();
    let (mut b_rx, mut b_tx) = pipe();
    ready_and_wait("");
    thread::spawn(move || {
        pin_to_cpu(0);
        let mut b = [0u8; 1];
        while a_rx.read_exact(&mut b).is_ok() && b_tx.write_all(&b).is_ok() {}
    });
    pin_to_cpu(0);
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack (1 ns: sleeps as long as asked).
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let mut b = [0u8; 1];
    let mut due = Instant::now();
    loop {
        for _ in 0..round_trips {
            a_tx.write_all(&b).expect("write");
            b_rx.read_exact(&mut b).expect("read");
        }
        due += period;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
}
