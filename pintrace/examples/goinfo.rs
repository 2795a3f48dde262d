//! Prints what pintrace reads from an executable: for debugging.
fn main() {
    let path = std::env::args().nth(1).expect("an executable");
    match pintrace::goruntime::GoBinary::open(&path) {
        Ok(b) => {
            println!("version {}", b.go_version());
            println!("build {:?}", b.build_info().map(|i| &i.path));
            println!("runtime {:?}", b.runtime_layout());
            println!("sched {:?}", b.sched_layout());
            println!("symbols {:?}", b.runtime_symbols());
        }
        Err(e) => println!("error: {e}"),
    }
}
