//! Runs one input through a Go fuzz target's path (`go_binary` or
//! `go_memory`) and prints how long it took: to find the slowest inputs
//! of a fuzzing run (see the README, "Fuzzing").
fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("go_binary or go_memory");
    for path in args {
        let data = std::fs::read(&path).expect("reading the input");
        let started = std::time::Instant::now();
        match target.as_str() {
            "go_binary" => pintrace::goruntime::fuzzing::binary(&data),
            "go_memory" => pintrace::goruntime::fuzzing::memory(&data),
            other => panic!("no target {other}"),
        };
        println!("{:.6} {path}", started.elapsed().as_secs_f64());
    }
}
