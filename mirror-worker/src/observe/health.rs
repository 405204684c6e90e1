//! What `/healthz` and `/readyz` answer, updated by the engine's threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kafka_mirror_runtime::http::Endpoints;

use super::metrics::Metrics;

#[derive(Default)]
pub struct Health {
    /// Stream threads running their consume loop.
    streams_running: AtomicUsize,
    streams_expected: AtomicUsize,
    /// False while librdkafka reports every target broker down; set true again by the next delivery.
    target_reachable: AtomicBool,
    /// A reason the engine must stop (e.g. a record the target refuses for good). Set once.
    fatal: Mutex<Option<String>>,
    /// `mode: migrate` with the operator's end offsets: the migration is complete and the worker idles, no
    /// stream running, until it is scaled to zero.
    migration_complete: AtomicBool,
}

impl Health {
    pub fn new(streams: usize) -> Self {
        Self {
            streams_expected: AtomicUsize::new(streams),
            target_reachable: AtomicBool::new(true),
            ..Self::default()
        }
    }

    pub fn stream_started(&self) {
        self.streams_running.fetch_add(1, Ordering::AcqRel);
    }

    pub fn stream_stopped(&self) {
        self.streams_running.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn set_target_reachable(&self, reachable: bool) {
        self.target_reachable.store(reachable, Ordering::Release);
    }

    pub fn target_reachable(&self) -> bool {
        self.target_reachable.load(Ordering::Acquire)
    }

    /// Records the first fatal error; later ones are consequences and only logged.
    pub fn set_fatal(&self, reason: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            *fatal = Some(reason);
        }
    }

    /// The migration is complete: the worker stays up, idle and ready, copying nothing.
    pub fn set_migration_complete(&self) {
        self.migration_complete.store(true, Ordering::Release);
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Alive: no fatal error. (A stuck target is not a reason to restart the pod; it is one to not be ready.)
    pub fn live(&self) -> Result<(), String> {
        match self.fatal() {
            Some(reason) => Err(format!("fatal: {reason}")),
            None => Ok(()),
        }
    }

    /// Ready: alive, and every stream consuming with the target reachable, or the migration complete.
    pub fn ready(&self) -> Result<(), String> {
        self.live()?;
        if self.migration_complete.load(Ordering::Acquire) {
            return Ok(());
        }
        let running = self.streams_running.load(Ordering::Acquire);
        let expected = self.streams_expected.load(Ordering::Acquire);
        if running < expected {
            return Err(format!("{running} of {expected} streams running"));
        }
        if !self.target_reachable.load(Ordering::Acquire) {
            return Err("all target brokers are down or unreachable".to_string());
        }
        Ok(())
    }
}

/// The worker's endpoints: engine metrics and stream health.
pub struct WorkerEndpoints {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl Endpoints for WorkerEndpoints {
    /// The engine's metrics, with `ready` and `target_reachable` as `/readyz` would answer now.
    fn metrics(&self) -> String {
        self.metrics
            .ready
            .set(i64::from(self.health.ready().is_ok()));
        self.metrics
            .target_reachable
            .set(i64::from(self.health.target_reachable()));
        self.metrics.encode()
    }
    fn live(&self) -> std::result::Result<(), String> {
        self.health.live()
    }
    fn ready(&self) -> std::result::Result<(), String> {
        self.health.ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(streams: usize) -> WorkerEndpoints {
        WorkerEndpoints {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new(streams)),
        }
    }

    #[test]
    fn metrics_say_ready_and_target_reachable_as_readyz_would_answer() {
        let worker = endpoints(1);
        let text = worker.metrics();
        assert!(
            text.contains("kafka_mirror_ready 0\n"),
            "no stream yet: {text}"
        );
        assert!(text.contains("kafka_mirror_target_reachable 1\n"), "{text}");

        worker.health.stream_started();
        assert!(worker.metrics().contains("kafka_mirror_ready 1\n"));

        worker.health.set_target_reachable(false);
        let text = worker.metrics();
        assert!(text.contains("kafka_mirror_ready 0\n"), "{text}");
        assert!(text.contains("kafka_mirror_target_reachable 0\n"), "{text}");

        worker.health.set_target_reachable(true);
        worker
            .health
            .set_fatal("the target refused a record".into());
        let text = worker.metrics();
        assert!(
            text.contains("kafka_mirror_ready 0\n"),
            "a fatal stop: {text}"
        );
        assert!(text.contains("kafka_mirror_target_reachable 1\n"), "{text}");
    }
}
