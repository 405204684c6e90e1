//! Sample records produced to the source on a thread of their own while a test starts, stops and kills
//! workers: the source's own producers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use kafka_mirror_samples::{self as samples, SampleRecord};
use rdkafka::ClientConfig;

/// What a [`BackgroundProducer`] writes: sample records numbered from `from` on, `batch` at a time (`keys`
/// keys, values of `value_size` bytes), each batch flushed before the next, `pause` before each batch.
#[derive(Debug, Clone)]
pub struct Feed {
    pub from: u64,
    pub batch: u64,
    pub keys: u64,
    pub value_size: usize,
    pub pause: Duration,
    /// How many batches; `None`: until [`BackgroundProducer::stop`].
    pub batches: Option<u64>,
}

impl Feed {
    /// `batches` batches of `batch` records from record 0 on.
    pub fn batches(
        batches: u64,
        batch: u64,
        pause: Duration,
        keys: u64,
        value_size: usize,
    ) -> Feed {
        Feed {
            from: 0,
            batch,
            keys,
            value_size,
            pause,
            batches: Some(batches),
        }
    }

    /// Batches of `batch` records from record 0 on until stopped.
    pub fn until_stopped(batch: u64, pause: Duration, keys: u64, value_size: usize) -> Feed {
        Feed {
            batches: None,
            ..Feed::batches(0, batch, pause, keys, value_size)
        }
    }
}

/// Sample records produced on a thread of their own while the test does other things. Dropping it stops the
/// thread after the batch in progress, so a failed assertion does not leave it writing.
pub struct BackgroundProducer {
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicU64>,
    thread: Option<JoinHandle<Vec<SampleRecord>>>,
}

impl BackgroundProducer {
    /// Starts producing `feed` to `topic` through a client configured by `config`.
    pub fn start(config: ClientConfig, topic: &str, feed: Feed) -> BackgroundProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicU64::new(0));
        let topic = topic.to_string();
        let thread = std::thread::spawn({
            let (stop, produced) = (stop.clone(), produced.clone());
            move || {
                let mut records = Vec::new();
                let mut batches = 0;
                while !stop.load(Ordering::Acquire) && Some(batches) != feed.batches {
                    std::thread::sleep(feed.pause);
                    let from = feed.from + records.len() as u64;
                    records.extend(
                        samples::produce_with(
                            &config,
                            &topic,
                            from,
                            from + feed.batch,
                            feed.keys,
                            feed.value_size,
                        )
                        .expect("producing to the source"),
                    );
                    produced.store(records.len() as u64, Ordering::Release);
                    batches += 1;
                }
                records
            }
        });
        BackgroundProducer {
            stop,
            produced,
            thread: Some(thread),
        }
    }

    /// Records acknowledged by the source so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Acquire)
    }

    /// Whether the last batch was produced (or the thread failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the last batch of a feed of so many batches; every record produced, in order.
    pub fn join(mut self) -> Vec<SampleRecord> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("the background producer")
    }

    /// Stops after the batch in progress; every record produced, in order.
    pub fn stop(self) -> Vec<SampleRecord> {
        self.stop.store(true, Ordering::Release);
        self.join()
    }
}

impl Drop for BackgroundProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
