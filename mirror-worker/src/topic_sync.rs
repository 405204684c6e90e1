//! `spec.topics.sync`: target topics follow their source topics, so the target stays a usable replica for
//! consumers and producers that fail over to it. Partitions added to a source topic are added to its target
//! topic; the source topic's configs of [`SYNCED_CONFIGS`](kafka_mirror_crds::topics::SYNCED_CONFIGS) are copied
//! to the target topic. Neither ever removes anything from the target: Kafka cannot remove partitions, and a
//! config the source topic does not set is left as the target topic has it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_mirror_clients::host_aliases::ResolvingContext;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, OwnedResourceSpecifier,
    ResourceSpecifier,
};
use tracing::{info, warn};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A target topic with fewer partitions than its source topic: grown to `to`.
pub struct Growth {
    pub target_topic: String,
    pub from: i32,
    pub to: i32,
}

/// Adds partitions to each target topic of `growths`. Returns the partition count each topic has now, or why
/// it could not grow (another worker growing it first counts as grown).
pub async fn add_partitions(
    target: &AdminClient<ResolvingContext>,
    growths: &[Growth],
) -> Vec<(String, Result<i32, String>)> {
    if growths.is_empty() {
        return Vec::new();
    }
    let requests: Vec<NewPartitions<'_>> = growths
        .iter()
        .map(|g| NewPartitions::new(&g.target_topic, g.to as usize))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let to: HashMap<&str, &Growth> = growths
        .iter()
        .map(|g| (g.target_topic.as_str(), g))
        .collect();
    match target.create_partitions(&requests, &options).await {
        Ok(results) => results
            .into_iter()
            .map(|result| match result {
                Ok(topic) => {
                    let g = to[topic.as_str()];
                    info!(
                        topic,
                        from = g.from,
                        to = g.to,
                        "added partitions to the target topic: its source topic has more"
                    );
                    (topic, Ok(g.to))
                }
                // Another worker of the mirror added them first: the topic has at least as many now.
                Err((topic, rdkafka::error::RDKafkaErrorCode::InvalidPartitions))
                    if to.contains_key(topic.as_str()) =>
                {
                    let g = to[topic.as_str()];
                    (topic, Ok(g.to))
                }
                Err((topic, code)) => (
                    topic,
                    Err(format!(
                        "adding partitions to the target topic failed: {code}"
                    )),
                ),
            })
            .collect(),
        Err(error) => growths
            .iter()
            .map(|g| {
                (
                    g.target_topic.clone(),
                    Err(format!(
                        "adding partitions to the target topic failed: {error}"
                    )),
                )
            })
            .collect(),
    }
}

/// The configs a topic sets itself (not inherited from its broker's or cluster's defaults), by topic.
async fn topic_overrides(
    admin: &AdminClient<ResolvingContext>,
    topics: &[&str],
) -> Result<HashMap<String, BTreeMap<String, String>>, String> {
    let resources: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results = admin
        .describe_configs(&resources, &options)
        .await
        .map_err(|e| e.to_string())?;
    let mut overrides = HashMap::new();
    for result in results {
        let resource = result.map_err(|code| code.to_string())?;
        let OwnedResourceSpecifier::Topic(topic) = resource.specifier else {
            continue;
        };
        let set: BTreeMap<String, String> = resource
            .entries
            .into_iter()
            .filter(|e| e.source == ConfigSource::DynamicTopic)
            .filter_map(|e| Some((e.name, e.value?)))
            .collect();
        overrides.insert(topic, set);
    }
    Ok(overrides)
}

/// What a target topic's own configs become: `target` with each of `synced` that `source` sets set to the
/// same value. A config the source topic does not set is left as the target topic has it: removing it there
/// would also remove what a person set on the target on purpose (a longer retention for the replica, a
/// smaller record limit). `None` when nothing changes.
pub fn followed(
    source: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
    synced: &[&str],
) -> Option<BTreeMap<String, String>> {
    let mut next = target.clone();
    for config in synced {
        if let Some(value) = source.get(*config) {
            next.insert(config.to_string(), value.clone());
        }
    }
    (next != *target).then_some(next)
}

/// Copies the `synced` configs of each source topic of `pairs` (source, target) to its target topic. Kafka's
/// AlterConfigs replaces a topic's whole set of own configs, so each target topic's other own configs are
/// sent along unchanged. Returns the target topics changed, or why the copy failed.
pub async fn copy_configs(
    source: &AdminClient<ResolvingContext>,
    target: &AdminClient<ResolvingContext>,
    pairs: &[(String, String)],
    synced: &[&str],
) -> Result<Vec<String>, String> {
    if pairs.is_empty() || synced.is_empty() {
        return Ok(Vec::new());
    }
    let sources: Vec<&str> = pairs.iter().map(|(s, _)| s.as_str()).collect();
    let targets: Vec<&str> = pairs.iter().map(|(_, t)| t.as_str()).collect();
    let source_configs = topic_overrides(source, &sources)
        .await
        .map_err(|e| format!("reading the source topics' configs: {e}"))?;
    let target_configs = topic_overrides(target, &targets)
        .await
        .map_err(|e| format!("reading the target topics' configs: {e}"))?;
    let empty = BTreeMap::new();
    let changes: Vec<(&str, BTreeMap<String, String>)> = pairs
        .iter()
        .filter_map(|(s, t)| {
            let next = followed(
                source_configs.get(s).unwrap_or(&empty),
                target_configs.get(t).unwrap_or(&empty),
                synced,
            )?;
            Some((t.as_str(), next))
        })
        .collect();
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let alters: Vec<AlterConfig<'_>> = changes
        .iter()
        .map(|(topic, configs)| {
            configs.iter().fold(
                AlterConfig::new(ResourceSpecifier::Topic(topic)),
                |alter, (k, v)| alter.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results = target
        .alter_configs(&alters, &options)
        .await
        .map_err(|e| format!("changing the target topics' configs: {e}"))?;
    let mut changed = Vec::new();
    for result in results {
        match result {
            Ok(OwnedResourceSpecifier::Topic(topic)) => {
                let configs = changes
                    .iter()
                    .find(|(t, _)| *t == topic)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default();
                info!(
                    topic,
                    ?configs,
                    "target topic configs now follow the source topic's"
                );
                changed.push(topic);
            }
            Ok(_) => {}
            Err((resource, code)) => {
                warn!(?resource, %code, "a target topic's configs could not be changed");
                return Err(format!(
                    "changing the configs of {resource:?} on the target: {code}"
                ));
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_target_topic_takes_the_synced_configs_and_keeps_its_others() {
        let synced = ["retention.ms", "cleanup.policy"];
        let source = configs(&[("retention.ms", "1000"), ("segment.ms", "5")]);
        let target = configs(&[("cleanup.policy", "compact"), ("flush.ms", "9")]);
        assert_eq!(
            followed(&source, &target, &synced),
            // retention.ms copied; cleanup.policy kept (the source does not set it); flush.ms (not synced) kept;
            // segment.ms (not in this list) not copied.
            Some(configs(&[
                ("cleanup.policy", "compact"),
                ("flush.ms", "9"),
                ("retention.ms", "1000")
            ]))
        );
        let same = configs(&[("retention.ms", "1000"), ("flush.ms", "9")]);
        // Nothing to copy: unchanged.
        assert_eq!(followed(&source, &same, &synced), None);
    }
}
