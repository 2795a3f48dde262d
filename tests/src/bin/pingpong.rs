//! Two threads on one CPU passing a byte back and forth over pipes N times:
//! two context switches per round trip. Usage: `pingpong N [CPU]`.
use std::{
    fs::File,
    io::{Read, Write},
    os::fd::FromRawFd,
    thread,
};

use pintrace_tests::{arg, pin_to_cpu, ready_and_wait, say};

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn main() {
    let n = arg(1);
    let cpu = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(0usize);
    let (mut a_rx, mut a_tx) = pipe();
    let (mut b_rx, mut b_tx) = pipe();
    ready_and_wait("");
    let echo = thread::spawn(move || {
        pin_to_cpu(cpu);
        let mut b = [0u8; 1];
        for _ in 0..n {
            a_rx.read_exact(&mut b).expect("read");
            b_tx.write_all(&b).expect("write");
        }
    });
    pin_to_cpu(cpu);
    let mut b = [0u8; 1];
    for _ in 0..n {
        a_tx.write_all(&b).expect("write");
        b_rx.read_exact(&mut b).expect("read");
    }
    echo.join().expect("echo");
    say("done");
}
