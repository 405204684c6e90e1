//! The JVM peers: MirrorMaker 1 (`kafka.tools.MirrorMaker` of Kafka 3.9.x, exactly as the seed guide runs it)
//! and MirrorMaker 2 in dedicated mode (`org.apache.kafka.connect.mirror.MirrorMaker mm2.properties`), each from
//! the jars `tests/mirrormaker/install.sh` fetched from Maven Central, started as `java` the way Kafka's own
//! launch scripts start them (`kafka-run-class.sh`, `connect-mirror-maker.sh`): the same heap and JVM options.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{ClusterProcess, KAFKA_JVM_PERFORMANCE_OPTS};
use crate::measure::{self, Usage};

/// MirrorMaker 1's heap: the one `connect-mirror-maker.sh` gives MirrorMaker 2, the only heap Kafka's scripts set
/// for a MirrorMaker. The guide's command (`kafka-run-class.sh kafka.tools.MirrorMaker`) gets the script's default
/// `-Xmx256M`, with which MirrorMaker 1 ran out of heap (`OutOfMemoryError: Java heap space` in its consumers,
/// 0.33 of 1.5 million 100-byte records copied): its four consumers fetch up to 50 MB each.
pub const MM1_HEAP: &str = "-Xms256M -Xmx2G";
/// `connect-mirror-maker.sh`'s heap for MirrorMaker 2.
pub const MM2_HEAP: &str = "-Xms256M -Xmx2G";

/// Which MirrorMaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Mm1,
    Mm2,
}

impl Peer {
    fn install_name(self) -> &'static str {
        match self {
            Peer::Mm1 => "mm1",
            Peer::Mm2 => "mm2",
        }
    }

    /// The directory of the peer's jars (installed on first use).
    pub fn libs(self) -> String {
        let install = repo_root().join("tests/mirrormaker/install.sh");
        let output = Command::new("bash")
            .arg(&install)
            .arg(self.install_name())
            .stderr(Stdio::inherit())
            .output()
            .expect("running tests/mirrormaker/install.sh");
        assert!(
            output.status.success(),
            "tests/mirrormaker/install.sh {} failed",
            self.install_name()
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .expect("install.sh prints the jar directory")
            .to_string()
    }

    /// The Kafka version of the peer's jars, from its pom.
    pub fn version(self) -> String {
        let pom = std::fs::read_to_string(
            repo_root().join(format!("tests/mirrormaker/{}/pom.xml", self.install_name())),
        )
        .unwrap_or_default();
        pom.split("<kafka.version>")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or("?")
            .to_string()
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The name of the target topic a peer writes `topic` to: MirrorMaker 2's default replication policy prefixes
/// the source cluster's alias; MirrorMaker 1 and the worker keep the name.
pub fn mm2_target_topic(alias: &str, topic: &str) -> String {
    format!("{alias}.{topic}")
}

/// The properties files and command line of one MirrorMaker run, as the report shows them.
pub struct PeerSetup {
    pub files: Vec<(String, String)>,
    pub command: String,
}

/// MirrorMaker 1 exactly as the seed guide runs it: its `consumer.properties` (`bootstrap.servers`,
/// `group.id`) and `producer.properties` (`bootstrap.servers`, `compression.type=none`), `--whitelist` the
/// topic, `--num.streams 4`.
pub fn mm1_setup(source: &str, target: &str, group: &str, topic: &str) -> PeerSetup {
    PeerSetup {
        files: vec![
            (
                "consumer.properties".into(),
                format!("bootstrap.servers={source}\ngroup.id={group}\n"),
            ),
            (
                "producer.properties".into(),
                format!("bootstrap.servers={target}\ncompression.type=none\n"),
            ),
        ],
        command: format!(
            "kafka.tools.MirrorMaker --consumer.config consumer.properties --producer.config \
             producer.properties --whitelist {topic} --num.streams 4"
        ),
    }
}

/// MirrorMaker 2 in dedicated mode, replicating one topic one way: Kafka's sample
/// `config/connect-mirror-maker.properties` with the two clusters, the one flow and its topic, and its
/// replication factors of 1 (one broker per cluster). Heartbeats, checkpoints, `tasks.max` (1), the replication
/// policy (target topic `<alias>.<topic>`) and every client setting are MirrorMaker 2's defaults.
pub fn mm2_setup(source: &str, target: &str, alias: &str, topic: &str) -> PeerSetup {
    let properties = format!(
        "clusters = {alias}, target\n\
         {alias}.bootstrap.servers = {source}\n\
         target.bootstrap.servers = {target}\n\
         {alias}->target.enabled = true\n\
         {alias}->target.topics = {topic}\n\
         replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         offset.storage.replication.factor = 1\n\
         status.storage.replication.factor = 1\n\
         config.storage.replication.factor = 1\n"
    );
    PeerSetup {
        files: vec![("mm2.properties".into(), properties)],
        command: "org.apache.kafka.connect.mirror.MirrorMaker mm2.properties".into(),
    }
}

/// A running MirrorMaker JVM; killed when dropped.
pub struct PeerProcess {
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl PeerProcess {
    /// Writes the setup's files into a directory of its own and starts the peer there, its output in `log`.
    pub fn start(peer: Peer, setup: &PeerSetup, log: PathBuf) -> PeerProcess {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in &setup.files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let heap = match peer {
            Peer::Mm1 => MM1_HEAP,
            Peer::Mm2 => MM2_HEAP,
        };
        let log4j = repo_root().join("tests/mirrormaker/log4j2.properties");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("java")
            .args(heap.split_whitespace())
            .args(KAFKA_JVM_PERFORMANCE_OPTS.split_whitespace())
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg("-cp")
            .arg(format!("{}/*", peer.libs()))
            .args(setup.command.split_whitespace())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting java (tests/benchmark.sh installs a JDK)");
        PeerProcess {
            child: Some(child),
            _dir: dir,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Why the peer is no longer running, if it is not.
    pub fn exited(&mut self) -> Result<(), String> {
        match self.child.as_mut().unwrap().try_wait().unwrap() {
            Some(status) => Err(format!(
                "the peer exited with {status}; its log, {}:\n{}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )),
            None => Ok(()),
        }
    }

    /// CPU and peak memory so far.
    pub fn usage_so_far(&self) -> Usage {
        measure::so_far(self.pid())
    }

    /// SIGTERM (MirrorMaker closes its clients, leaving its consumer group), SIGKILL after 30 s.
    pub fn stop(mut self) {
        self.stop_child();
    }

    fn stop_child(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        measure::signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the peer on `setup` and waits until `target` holds `expected` records of `target_topic`; returns the
/// time from the first record on the target to the last and what the peer cost until then.
pub fn copy(
    peer: Peer,
    setup: &PeerSetup,
    log: PathBuf,
    target: &ClusterProcess,
    target_topic: &str,
    partitions: i32,
    expected: i64,
) -> (crate::copies::Arrival, Usage) {
    let mut process = PeerProcess::start(peer, setup, log);
    let pid = process.pid();
    let arrival = crate::copies::wait_for_arrival(
        &target.watcher(target_topic, partitions),
        expected,
        Some(pid),
        || process.exited(),
    );
    let usage = process.usage_so_far();
    process.stop();
    (arrival, usage)
}
