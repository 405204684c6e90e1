//! Sample records produced to the source on a thread of their own while a test starts, stops and kills
//! workers: the source's own producers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use kafka_mirror_samples::{self as samples, SampleRecord};

/// Sample records produced to the source on a thread of their own while the test does other things.
pub struct BackgroundProducer {
    produced: Arc<AtomicU64>,
    thread: JoinHandle<Vec<SampleRecord>>,
}

impl BackgroundProducer {
    /// Produces `batches` batches of `batch` sample records (`keys` keys, values of `value_size` bytes) to
    /// `topic`, one batch every `pause`, each flushed before the next starts.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        batches: u64,
        batch: u64,
        pause: Duration,
        keys: u64,
        value_size: usize,
    ) -> BackgroundProducer {
        let produced = Arc::new(AtomicU64::new(0));
        let (bootstrap, topic, counter) =
            (bootstrap.to_string(), topic.to_string(), produced.clone());
        let thread = std::thread::spawn(move || {
            let mut records = Vec::with_capacity((batches * batch) as usize);
            for i in 0..batches {
                std::thread::sleep(pause);
                let (from, to) = (i * batch, (i + 1) * batch);
                records.extend(
                    samples::produce(&bootstrap, &topic, from, to, keys, value_size)
                        .expect("producing to the source"),
                );
                counter.store(to, Ordering::Release);
            }
            records
        });
        BackgroundProducer { produced, thread }
    }

    /// Records acknowledged by the source so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Acquire)
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the last batch; every record produced, in order.
    pub fn join(self) -> Vec<SampleRecord> {
        self.thread.join().expect("the background producer")
    }
}
