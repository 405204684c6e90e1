//! What the operator asks Kafka on every reconcile: the mirror group's positions on the source (for lag and
//! migration progress) and whether the target answers at all. Blocking librdkafka calls, each bounded by a
//! timeout: run [`observe`] on the blocking thread pool. Failures become messages naming the field to check.

use std::time::Duration;

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::broker_probe::BrokerProbe;
use rdkafka::ClientConfig;

use crate::lag::{Positions, read_positions};

const TARGET_TIMEOUT: Duration = Duration::from_secs(10);

/// The answers of both clusters.
#[derive(Debug)]
pub struct KafkaView {
    pub positions: Result<Positions, String>,
    pub target: Result<(), String>,
}

pub fn observe(plan: &MirrorPlan) -> KafkaView {
    let positions = read_positions(&plan.source_admin, &plan.group_id, &plan.filter).map_err(|e| {
        format!(
            "spec.source.bootstrapServers {:?}: {e}",
            plan.spec.source.connection.bootstrap_servers
        )
    });
    let target = probe(&plan.target_admin, "spec.target").map_err(|e| {
        format!(
            "spec.target.bootstrapServers {:?}: {e}",
            plan.spec.target.connection.bootstrap_servers
        )
    });
    KafkaView { positions, target }
}

/// One metadata request: proves the brokers are reachable and the credentials accepted, or says why not.
fn probe(config: &ClientConfig, prefix: &str) -> Result<(), String> {
    let client = BrokerProbe::new(config, prefix).map_err(|e| format!("creating a client: {e}"))?;
    client
        .metadata(None, TARGET_TIMEOUT)
        .map(|_| ())
        .map_err(|e| format!("reading the cluster's metadata: {e}"))
}
