//! A worker thread, first pinned to CPU 1, that alternates its CPU
//! affinity between CPU 0 and 1 K times, spinning a little on each. Usage: affinity K.
//! Prints `ready PID WORKER_TID`; on "go" does the work, prints "done" once
//! the worker is blocked again; exits on the next line.
use std::{sync::mpsc, thread, time::Duration};

use pintrace_tests::{arg, gettid, pin_to_cpu, ready_and_wait, say, spin, wait_asleep, wait_line};

fn main() {
    let k = arg(1);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let (tid_tx, tid_rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        // Start on CPU 1, so that each of the K changes (to 0, 1, 0, ...) moves the thread.
        pin_to_cpu(1);
        tid_tx.send(gettid()).expect("tid");
        go_rx.recv().expect("go");
        for i in 0..k {
            pin_to_cpu((i % 2) as usize);
            spin(Duration::from_millis(2));
        }
        done_tx.send(()).expect("done");
        let _ = exit_rx.recv();
    });
    let tid = tid_rx.recv().expect("worker tid");
    wait_asleep(tid); // the worker is blocked in recv
    ready_and_wait(&tid.to_string());
    go_tx.send(()).expect("go");
    done_rx.recv().expect("done");
    wait_asleep(tid); // the worker is blocked again
    say("done");
    wait_line();
    drop(exit_tx);
    worker.join().expect("worker");
}
