//! The TID set is changed by the kernel and by user space at once; neither
//! may undo the other's change to another bit of the same 64-bit word.
use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
    thread,
};

use pintrace::probe::{Options, Probes};
use pintrace_tests::workload;

const ROUNDS: usize = 10;
const PER_ROUND: usize = 60;

fn last_pid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").expect("ns_last_pid").trim().parse().expect("a PID")
}

#[test]
fn threads_created_while_user_space_clears_other_bits_of_their_word_keep_their_bit() {
    let mut w = workload!("hold", &ROUNDS.to_string(), &PER_ROUND.to_string());
    let mut probes = Probes::load(&Options::default()).expect("loading pintrace's kernel programs");
    let tids = probes.take_tids().expect("the TID set");
    tids.insert(w.pid).expect("insert");
    probes.attach_all().expect("attaching");

    let mut created = Vec::new();
    let mut decoy_words = BTreeSet::new();
    for round in 0..ROUNDS {
        // TIDs given out before this round and not the workload's: their bits
        // are clear and stay clear, and they share words with the TIDs the
        // workload's next threads get. User space clears them in a tight loop
        // while the kernel sets the new threads' bits.
        let last = last_pid();
        let existing = pintrace::target::threads(w.pid).expect("threads");
        let decoys: Vec<u32> = (last.saturating_sub(63)..=last).filter(|t| !existing.contains(t)).collect();
        decoy_words.extend(decoys.iter().map(|t| t >> 6));
        let stop = AtomicBool::new(false);
        let line = thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    for &d in &decoys {
                        tids.remove(d).expect("remove");
                    }
                }
            });
            if round > 0 {
                w.send("next");
            } else {
                w.send("go");
            }
            let line = w.read_line();
            stop.store(true, Ordering::Relaxed);
            line
        });
        created
            .extend(line.strip_prefix("tids ").expect("tids line").split(' ').map(|t| t.parse::<u32>().expect("tid")));
    }
    assert_eq!(created.len(), ROUNDS * PER_ROUND);
    let shared = created.iter().filter(|t| decoy_words.contains(&(*t >> 6))).count();
    assert!(shared >= ROUNDS, "too few new threads shared a word with a cleared bit ({shared}) to show anything");
    let missing: Vec<u32> = created.iter().copied().filter(|&t| !tids.contains(t).expect("contains")).collect();
    assert!(
        missing.is_empty(),
        "{} of {} new threads ({shared} sharing a word with bits user space cleared) lost their bit: {missing:?}",
        missing.len(),
        created.len()
    );
    w.send("exit");
    assert!(w.wait().success());
}
