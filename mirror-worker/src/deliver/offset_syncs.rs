//! `spec.consumerGroups`: the offset map of every assigned source partition, built from the delivery reports
//! (each names the target offset a record got) and published to the compacted topic
//! `kafka-mirror.offset-syncs.<groupId>` on the target, where the operator reads it to translate the followed
//! groups' offsets. The map itself, and what a translation guarantees, is
//! [`kafka_mirror_clients::offset_map`].
//!
//! A partition's map is published at most once per [`PUBLISH_INTERVAL`] and only when it changed: by the
//! stream that owns it through the shared producer, or with `delivery: exactlyOnce` inside the partition's
//! transaction, so a `read_committed` reader sees the map and the copies it describes together. A partition's
//! map is published as the partition is revoked, and the topic is read again before partitions are assigned,
//! so what a previous owner of a partition mapped stays translatable (up to the last map it published, if it
//! died).
//!
//! Under `partitioning: key` a partition's map is a [`KeyedMap`], published with the *heads* of its target
//! topic: per target partition, the offset after the last copy the process's one producer had acknowledged
//! there ([`Heads`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::keyed_map::KeyedMap;
use kafka_mirror_clients::offset_map::{
    self, OffsetMap, PublishedMap, offset_syncs_topic, partition_key,
};
use kafka_mirror_crds::Partitioning;
use kafka_mirror_crds::topics::TopicSelection;
use tracing::{info, warn};

use super::own_topic;
use super::{MirrorProducer, own_record};
use crate::acks::PartitionState;
use crate::{Error, Result};

/// How often a partition's map is published at most. A consumer that switches reads again at most what the
/// mirror copied of its partition since the last publish before the group's last sync.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The offset maps of the partitions this process owns: what they start from, and the heads they share.
pub struct OffsetSyncs {
    pub topic: String,
    partitioning: Partitioning,
    topics: TopicSelection,
    /// For reading the topic again at each assignment: the target's connection, the mirror's group id.
    target: KafkaClientConfig,
    group_id: String,
    /// The maps as last read from the topic, by source partition: where a partition's map starts when it is
    /// assigned (read again at each assignment, after the previous owner published its last on revoking).
    earlier: Mutex<HashMap<(String, i32), PublishedMap>>,
    /// `partitioning: key`: by target topic.
    heads: Mutex<HashMap<String, Arc<Heads>>>,
}

/// Per partition of a target topic, the offset after the last copy the process's producer had acknowledged
/// there. A copy acknowledged later lies at or after it: one idempotent producer's copies are written and
/// acknowledged in order. (Not with `delivery: exactlyOnce`, whose producers are one per transaction group.)
#[derive(Default)]
pub struct Heads(Mutex<BTreeMap<i32, i64>>);

impl Heads {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acknowledged(&self, partition: i32, offset: i64) {
        let mut heads = self.lock();
        let head = heads.entry(partition).or_insert(offset + 1);
        *head = (*head).max(offset + 1);
    }
}

impl OffsetSyncs {
    /// Creates the topic on the target if missing and reads what it holds. `None` without
    /// `spec.consumerGroups`: nothing translates the maps then.
    pub async fn start(plan: &MirrorPlan) -> Result<Option<Arc<Self>>> {
        if plan.spec.consumer_groups.is_none() {
            return Ok(None);
        }
        let topic = offset_syncs_topic(&plan.group_id);
        // The operator reads the whole topic on every group sync: one-minute segments, so compaction keeps it
        // near one record per partition plus a minute of updates (at most one per partition per second).
        own_topic::ensure(
            plan,
            &topic,
            1,
            "spec.consumerGroups publishes offset maps in",
            Duration::from_secs(60),
        )
        .await?;
        // Created just above; a cluster whose metadata lags may not know it yet, which reads as empty. Blocking,
        // as the engine's other librdkafka calls: the engine runs on a multi-threaded runtime.
        let earlier = tokio::task::block_in_place(|| {
            offset_map::read_published(&plan.target_admin, &plan.group_id, READ_TIMEOUT)
        })
        .map_err(|why| Error::Fatal(format!("reading the offset maps on the target: {why}")))?;
        info!(
            topic,
            partitions = earlier.len(),
            "spec.consumerGroups: publishing offset maps; read the ones already published"
        );
        Ok(Some(Arc::new(Self {
            topic,
            partitioning: plan.spec.partitioning,
            topics: plan.spec.topics.clone(),
            earlier: Mutex::new(earlier),
            target: plan.target_admin.clone(),
            group_id: plan.group_id.clone(),
            heads: Mutex::new(HashMap::new()),
        })))
    }

    /// Partitions are being assigned to this process: reads what the topic holds now, so each map starts from
    /// its previous owner's last (published when it revoked the partition). A failed read leaves the maps read
    /// before: positions the previous owner mapped since then resume earlier and count as read again, never
    /// past a record a group has not read. Blocking: on the stream's thread, in the rebalance.
    pub fn read_before_assigning(&self) {
        match offset_map::read_published(&self.target, &self.group_id, READ_TIMEOUT) {
            Ok(published) => *self.earlier.lock().unwrap_or_else(|p| p.into_inner()) = published,
            Err(why) => warn!(
                topic = self.topic,
                %why,
                "the offset maps on the target could not be read again; assigned partitions start from the ones read before"
            ),
        }
    }

    /// The map of a source partition being assigned to this process, carrying on from what was published for
    /// it (by this process or another) when read last.
    pub fn partition(&self, topic: &str, partition: i32) -> Arc<PartitionSyncs> {
        let key = (topic.to_string(), partition);
        let earlier = self
            .earlier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let map = match self.partitioning {
            Partitioning::Preserve => MapState::Preserve {
                map: None,
                earlier: earlier.and_then(|e| match e {
                    PublishedMap::Preserve(map) => Some(map),
                    PublishedMap::Key(_) => None,
                }),
            },
            Partitioning::Key => MapState::Key {
                map: match &earlier {
                    Some(PublishedMap::Key(map)) => KeyedMap::after(map),
                    _ => KeyedMap::default(),
                },
                heads: self
                    .heads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(self.topics.target_name(topic))
                    .or_default()
                    .clone(),
            },
        };
        Arc::new(PartitionSyncs {
            key: partition_key(topic, partition),
            state: Mutex::new(SyncState {
                map,
                changed: false,
                published: None,
            }),
        })
    }

    /// Publishes the maps of `states` that are due through the shared producer (`delivery: atLeastOnce`; with
    /// `exactlyOnce` they go inside each partition's transaction instead). A map the producer's full queue
    /// refuses is due again next time.
    pub fn publish_due(&self, producer: &MirrorProducer, states: &[Arc<PartitionState>]) {
        for state in states {
            let Some(syncs) = &state.offset_syncs else {
                continue;
            };
            let Some(value) = syncs.take_due(state.committable()) else {
                continue;
            };
            if producer
                .send(own_record(&self.topic, 0, &syncs.key, &value, state))
                .is_err()
            {
                syncs.not_published();
            }
        }
    }
}

/// One source partition's map and when it was last published.
pub struct PartitionSyncs {
    /// The record key in the offset syncs topic.
    pub key: String,
    state: Mutex<SyncState>,
}

struct SyncState {
    map: MapState,
    changed: bool,
    published: Option<Instant>,
}

enum MapState {
    Preserve {
        /// Created at the first copy: its target partition.
        map: Option<OffsetMap>,
        /// What a previous owner published, joined to the map at its first copy.
        earlier: Option<OffsetMap>,
    },
    Key {
        map: KeyedMap,
        /// The heads of the partition's target topic, shared with the process's other partitions writing there.
        heads: Arc<Heads>,
    },
}

impl PartitionSyncs {
    fn state(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The target acknowledged the copy of source offset `source` at `target_offset` of `target_partition`.
    pub fn copied(&self, source: i64, target_partition: i32, target_offset: i64) {
        let mut state = self.state();
        match &mut state.map {
            MapState::Preserve { map, earlier } => {
                let map = map.get_or_insert_with(|| OffsetMap::new(target_partition));
                let first = map.segments.is_empty();
                map.copied(source, target_offset);
                if first
                    && let Some(earlier) = earlier
                        .as_ref()
                        .filter(|e| e.target_partition == target_partition)
                {
                    map.prepend(earlier);
                }
            }
            MapState::Key { map, heads } => {
                map.copied(source, target_partition, target_offset);
                // After the map: a publish that sees this head sees the copy too.
                heads.acknowledged(target_partition, target_offset);
            }
        }
        state.changed = true;
    }

    /// The partition is leaving this process: its map is due now, if it changed, whenever it was last
    /// published, so the next owner starts from all of it.
    pub fn due_now(&self) {
        self.state().published = None;
    }

    /// The map to publish now, if it changed and was not published within [`PUBLISH_INTERVAL`]; marked as
    /// published. `copied_through`: the partition's committable offset, read before this call (every copy
    /// below it is in the map).
    pub fn take_due(&self, copied_through: Option<i64>) -> Option<Vec<u8>> {
        let mut state = self.state();
        if !state.changed
            || state
                .published
                .is_some_and(|at| at.elapsed() < PUBLISH_INTERVAL)
        {
            return None;
        }
        let value = match &mut state.map {
            MapState::Preserve { map, .. } => serde_json::to_vec(map.as_ref()?),
            MapState::Key { map, heads } => {
                // Read under this map's lock: a copy acknowledged below a head is in the map.
                let heads = heads.lock().clone();
                serde_json::to_vec(map.publish(heads, copied_through))
            }
        }
        .ok()?;
        state.changed = false;
        state.published = Some(Instant::now());
        Some(value)
    }

    /// Publishing what [`take_due`](Self::take_due) gave failed: it is due again.
    pub fn not_published(&self) {
        let mut state = self.state();
        state.changed = true;
        state.published = None;
    }
}
