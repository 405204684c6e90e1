//! A Kafka cluster in its own process: librdkafka's mock cluster, hosted by this benchmark binary started
//! again in the `host-cluster` role. Running it apart keeps the broker's CPU and memory out of the figures of
//! the process being measured, as a real broker's would be.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kafka_mirror_tests::positions::Watermarks;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;

/// The topic of the latency measurement, beside the throughput topic and empty until then. The mock broker
/// finds a fetch position by walking a partition's record batches from the first, so on the preloaded
/// throughput topic the broker, not the mirror, would be the latency measured. 16 partitions: the paced load
/// fills each partition with small batches that every fetch walks again; with 64 the walk took the p50 at a
/// tenth of the maximum rate from 22 ms to 132 ms. The mock keeps 5 MiB of each, so the mirror may fall 80 MB
/// behind before records are trimmed under it.
pub const LATENCY_TOPIC: &str = "bench-latency";
pub const LATENCY_PARTITIONS: i32 = 16;

/// Hosts a one-broker mock cluster with `topic` of `partitions` partitions (and the latency topic): prints its
/// bootstrap servers on stdout, then serves until stdin closes (the parent exited or dropped its handle).
pub fn host(topic: &str, partitions: i32) -> ! {
    let cluster = MockCluster::new(1).expect("starting the mock cluster");
    cluster
        .create_topic(topic, partitions, 1)
        .expect("creating the benchmark topic");
    cluster
        .create_topic(LATENCY_TOPIC, LATENCY_PARTITIONS, 1)
        .expect("creating the latency topic");
    println!("{}", cluster.bootstrap_servers());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0)
}

/// A cluster process started by [`ClusterProcess::start`]; killed when dropped.
pub struct ClusterProcess {
    child: Child,
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
}

impl ClusterProcess {
    pub fn start(topic: &str, partitions: i32) -> ClusterProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["host-cluster", "--topic", topic, "--partitions"])
            .arg(partitions.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting a cluster process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("reading the cluster's bootstrap servers");
        assert!(
            !line.trim().is_empty(),
            "the cluster process printed nothing"
        );
        ClusterProcess {
            child,
            bootstrap: line.trim().to_string(),
            topic: topic.to_string(),
            partitions,
        }
    }

    /// CPU time the broker process has used so far.
    pub fn cpu(&self) -> Duration {
        crate::measure::so_far(self.child.id()).cpu
    }

    /// A client that asks the cluster for the topic's watermarks, all partitions in one request.
    pub fn watcher(&self) -> Watermarks {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        Watermarks::new(&config, &self.topic, self.partitions)
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
