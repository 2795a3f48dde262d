//! pintrace: per-thread scheduler tracing for Go services.
//!
//! The pipeline is source → decode → sink: `probe` loads and attaches the
//! kernel programs, `source` reads their ring buffer and decodes each record
//! once into an `event::Event`, and a sink either writes them to a `record`
//! file or hands them to the `analysis` stage, which folds them into the
//! pure aggregation `model` and judges each interval (`findings`) for the
//! screen (`tui`), batch output and the report.
pub mod analysis;
pub mod btf;
pub mod cgroup;
pub mod cli;
pub mod event;
pub mod findings;
pub mod fmt;
pub mod goruntime;
pub mod hist;
pub mod launch;
pub mod meta;
pub mod model;
pub mod mountinfo;
pub mod probe;
pub mod record;
pub mod run;
pub mod session;
pub mod source;
pub mod summary;
pub mod target;
pub mod tui;

/// A map keyed by TIDs, on the per-event path: foldhash is several times
/// faster than std's SipHash for integer keys and, seeded at random per
/// process, still hard to flood with colliding TIDs from a crafted record file.
pub type TidMap<K, V> = std::collections::HashMap<K, V, foldhash::quality::RandomState>;
