//! Prints every event of a record file, one per line: for debugging.
fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).expect("a record file");
    let mut r = pintrace::record::Reader::open(std::path::Path::new(&path))?;
    while let Some(c) = r.next_chunk()? {
        if let pintrace::record::Chunk::Events(events) = c {
            for e in events {
                println!("{} {} {:?}", e.ts_ns, e.cpu, e.kind);
            }
        }
    }
    Ok(())
}
