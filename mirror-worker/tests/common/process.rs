//! The worker as a real process: start it on a document, signal it, wait for its exit, ask its HTTP endpoint,
//! and read the mirror's state from the clusters (records on the target, the group's commits on the source).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_mirror_clients::positions::GroupPositions;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// A running `mirror-worker` process with its log in a file (not a pipe nobody reads while it runs).
pub struct Worker {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Worker {
    /// Starts the worker on `document`, committing every 200 ms; `extra` are further arguments.
    pub fn spawn(document: &Path, log: PathBuf, extra: &[&str]) -> Worker {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_mirror-worker"))
            .args(["--config", document.to_str().unwrap()])
            .args(["--commit-interval", "0.2"])
            .args(["--http-listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting mirror-worker");
        Worker { child, port, log }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL, as the OOM killer or a node failure would: no drain, no commit, no goodbye.
    pub fn kill_hard(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `condition` like [`wait_until`], but a timeout shows this worker's log and whether it still runs:
    /// a worker that fell behind and one that exited look the same from the clusters.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
        if !poll_until(timeout, condition) {
            let state = match self.child.try_wait().unwrap() {
                None => "still running".to_string(),
                Some(status) => format!("exited with {status}"),
            };
            panic!(
                "timed out after {timeout:?} waiting for {what}; the worker is {state}; its log:\n{}",
                self.log_text()
            );
        }
    }

    /// Waits for the process to exit within `timeout`; returns its exit code and log.
    pub fn wait_exit(mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.log_text());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "mirror-worker did not exit within {timeout:?}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the worker's HTTP endpoint: status code and body; status 0 while nothing listens yet.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path)
    }
}

/// `GET path` on `127.0.0.1:port`: status code and body; status 0 while nothing answers. Free of the
/// [`Worker`], so a [`Worker::wait_for`] condition can ask the endpoint of the worker it waits on.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    kafka_mirror_tests::http_get(([127, 0, 0, 1], port).into(), path).unwrap_or_default()
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failed assertion must not leave a worker running against the next test's clusters.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Records on the target: the sum of the high watermarks of `partitions` partitions of `topic`.
pub fn target_records(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum()
}

/// The group's committed offsets on the source, summed over `partitions` partitions of `topic`.
pub fn committed(source: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", source);
    let parts: Vec<_> = (0..partitions).map(|p| (topic.to_string(), p)).collect();
    GroupPositions::new(&config, group)
        .unwrap()
        .committed(&parts)
        .unwrap()
        .values()
        .map(|c| c.unwrap_or(0))
        .sum()
}

/// Polls `condition` every 100 ms until it holds, failing with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, condition),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Polls `condition` every 100 ms until it holds (true) or `timeout` passes (false).
fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}
