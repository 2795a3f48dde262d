//! The ring-buffer edge: kernel records in, decoded events out, in batches.
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, watch},
};

use crate::{
    event::{Decoder, Event, EventKind, NO_CPU},
    probe::LostCounter,
    target::monotonic_ns,
};

/// Events are handed on in batches of at most this many.
pub const BATCH: usize = 4096;
/// After a look that found the ring empty, the next comes this many polls later.
const IDLE_POLLS: u32 = 5;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub events: u64,
    pub lost: u64,
    pub decode_errors: u64,
}

pub struct Source {
    ring: AsyncFd<RingBuf<MapData>>,
    lost: LostCounter,
    /// Keeps each thread's run-queue total between its switch-ins.
    decoder: Decoder,
    stats: SourceStats,
    decode_errors: DecodeErrors,
}

/// The count of records that could not be decoded and the first one's
/// error, readable while the source runs.
#[derive(Clone, Debug, Default)]
pub struct DecodeErrors(std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::OnceLock<String>)>);

impl DecodeErrors {
    pub fn get(&self) -> u64 {
        self.0 .0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The first error: later ones are only counted.
    pub fn first(&self) -> Option<String> {
        self.0 .1.get().cloned()
    }

    fn add(&self, err: &crate::event::DecodeError) {
        self.0 .0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0 .1.get_or_init(|| err.to_string());
    }
}

impl Source {
    /// Must be called inside the tokio runtime.
    pub fn new(ring: RingBuf<MapData>, lost: LostCounter) -> Result<Self> {
        // SAFETY: the ring buffer owns its map fd, which stays open and the
        // same for as long as the RingBuf lives, and the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register(ring) }
            .map_err(|e| e.into_parts().1)
            .context("registering the ring buffer with the event loop")?;
        Ok(Source {
            ring,
            lost,
            decoder: Decoder::default(),
            stats: SourceStats::default(),
            decode_errors: DecodeErrors::default(),
        })
    }

    /// The totals, the decode errors read from their shared count.
    fn finish(&self) -> SourceStats {
        SourceStats { decode_errors: self.decode_errors.get(), ..self.stats }
    }

    pub fn decode_errors(&self) -> DecodeErrors {
        self.decode_errors.clone()
    }

    /// Reads until `stop` turns true, then drains what is left and returns.
    /// The reader wakes when the kernel says the buffer is filling up or
    /// every `poll`, whichever comes first: never once per event.
    pub async fn run(
        mut self,
        tx: mpsc::Sender<Vec<Event>>,
        mut stop: watch::Receiver<bool>,
        poll: Duration,
    ) -> Result<SourceStats> {
        // Polling an idle ring costs wake-ups for nothing: after an empty look
        // the next comes IDLE_POLLS polls later. A burst cannot overrun the
        // ring meanwhile: the kernel wakes the reader when it is a quarter full.
        loop {
            let stopping = *stop.borrow_and_update();
            let got = self.drain(&tx).await?;
            if stopping {
                return Ok(self.finish());
            }
            let wait = if got == 0 { poll * IDLE_POLLS } else { poll };
            tokio::select! {
                guard = self.ring.readable() => {
                    if let Ok(mut guard) = guard {
                        guard.clear_ready();
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        // Whoever could stop us is gone: stop.
                        self.drain(&tx).await?;
                        return Ok(self.finish());
                    }
                }
            }
        }
    }

    /// Sends what the ring holds; returns how many records it read.
    async fn drain(&mut self, tx: &mpsc::Sender<Vec<Event>>) -> Result<u64> {
        let mut read = 0;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            {
                let ring = self.ring.get_mut();
                while batch.len() < BATCH {
                    let Some(item) = ring.next() else { break };
                    read += 1;
                    match self.decoder.decode(&item) {
                        Ok(e) => {
                            batch.push(e);
                            self.stats.events += 1;
                        }
                        Err(err) => self.decode_errors.add(&err),
                    }
                }
            }
            let full = batch.len() == BATCH;
            if !full {
                let lost = self.lost.total()?;
                if lost != self.stats.lost {
                    self.stats.lost = lost;
                    batch.push(Event { ts_ns: monotonic_ns(), cpu: NO_CPU, kind: EventKind::Lost { total: lost } });
                }
            }
            if !batch.is_empty() {
                let next = Vec::with_capacity(BATCH);
                // A closed receiver means the consumer is gone: nothing left to do.
                if tx.send(std::mem::replace(&mut batch, next)).await.is_err() {
                    return Ok(0);
                }
            }
            if !full {
                return Ok(read);
            }
        }
    }
}
