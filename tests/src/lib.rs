//! The one test kit of kafka-mirror, for the suites on Apache Kafka (`tests/tests/`), the worker's own suites
//! (`mirror-worker/tests/`) and the benchmark (`mirror-worker/benches/`). It does not depend on the worker's
//! crate: it drives the `mirror-worker` binary as a process, and reads the clusters as a user's tools would.
//!
//! - [`kafka`]: Apache Kafka clusters as JVM processes (`tests/kafka/cluster.sh`), the fixture.
//! - [`control_plane`]: a real Kubernetes API server and controller manager on loopback
//!   (`tests/control-plane/up.sh`), the fixture, and `kubectl` for it.
//! - [`kill_points`]: the fault suites' repeatable random kill points.
//! - [`kubelet`]: a stand-in kubelet that runs the `mirror-worker` binary for the pods of a namespace on that
//!   control plane, from the ConfigMaps and Secrets they mount, and writes their status.
//! - [`operator`]: the `kafka-mirror-operator` process against that control plane.
//! - [`scene`]: a test's namespace with its pod runner and operator, and `kubectl` scoped to it.
//! - [`document`]: `KafkaMirror` documents, built with typed setters and written as YAML.
//! - [`worker`]: the `mirror-worker` process: start, signal, wait, and how it ended.
//! - [`http`]: the worker's HTTP endpoint: a free loopback address, `GET`, a metric by name.
//! - [`positions`]: a group's committed offsets and a topic's watermarks, and a mirror's progress from both.
//! - [`records`]: the test's own client: reading a topic back and verifying the copy.
//! - [`producer`]: sample records produced to the source in the background.
//! - [`group`]: a consumer group's partition owners as Kafka's own tool reports them.

pub mod control_plane;
pub mod document;
pub mod group;
pub mod http;
pub mod kafka;
pub mod kill_points;
pub mod kubelet;
pub mod operator;
pub mod positions;
pub mod producer;
pub mod records;
pub mod scene;
pub mod worker;

pub use control_plane::ControlPlane;
pub use http::{free_address, free_port, http_get};
pub use kafka::{ClusterOptions, KafkaCluster, SaslUser, Scram};
pub use kubelet::{PodRunner, PodView};
pub use operator::Operator;
pub use records::{client_config, read_records, read_records_isolated, verify_copy};
pub use scene::Scene;
pub use worker::{Finished, Launch, Worker, worker_binary};
