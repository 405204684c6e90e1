//! Lets every stream of a process commit before any of them leaves the consumer group: a member leaving
//! starts a rebalance, and commits made during a rebalance can be refused.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

pub struct ShutdownGate {
    arrived: Mutex<usize>,
    all_arrived: Condvar,
    expected: usize,
}

impl ShutdownGate {
    pub fn new(expected: usize) -> Self {
        Self {
            arrived: Mutex::new(0),
            all_arrived: Condvar::new(),
            expected,
        }
    }

    /// Marks this stream as committed and waits for the others until `deadline`. True when all arrived.
    pub fn arrive_and_wait(&self, deadline: Instant) -> bool {
        let mut arrived = self.arrived.lock().unwrap_or_else(|p| p.into_inner());
        *arrived += 1;
        self.all_arrived.notify_all();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (arrived, _) = self
            .all_arrived
            .wait_timeout_while(arrived, timeout, |arrived| *arrived < self.expected)
            .unwrap_or_else(|p| p.into_inner());
        *arrived >= self.expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn opens_when_every_stream_arrived_and_not_before() {
        let gate = Arc::new(ShutdownGate::new(2));
        let early = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.arrive_and_wait(Instant::now() + Duration::from_secs(10))
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!early.is_finished(), "one of two streams must wait");
        assert!(gate.arrive_and_wait(Instant::now() + Duration::from_secs(10)));
        assert!(early.join().unwrap());
    }

    #[test]
    fn a_missing_stream_does_not_block_past_the_deadline() {
        let gate = ShutdownGate::new(2);
        assert!(!gate.arrive_and_wait(Instant::now() + Duration::from_millis(20)));
    }
}
