//! What `spec.consumerGroups` costs a worker per delivered record, and the size of what it publishes: the
//! offset map of one source partition fed a million copies, under `partitioning: preserve` (one target
//! partition) and `key` (spread over 3 and 64 target partitions), then serialized as the worker publishes it.
//! Not a test: numbers for BENCHMARKS.md.
//!
//! `cargo run --release -p kafka-mirror-clients --example offset_map_cost`

use std::collections::BTreeMap;
use std::time::Instant;

use kafka_mirror_clients::keyed_map::KeyedMap;
use kafka_mirror_clients::offset_map::OffsetMap;

const COPIES: i64 = 1_000_000;

fn report(what: &str, started: Instant, published: &[u8]) {
    let elapsed = started.elapsed();
    println!(
        "{what:<44} {:>6.1} ns per copied record; published record {:>6} bytes",
        elapsed.as_nanos() as f64 / COPIES as f64,
        published.len()
    );
}

fn main() {
    // At least once, nothing re-sent: one segment.
    let started = Instant::now();
    let mut map = OffsetMap::new(0);
    for s in 0..COPIES {
        map.copied(s, s + 7);
    }
    report(
        "preserve, plain copy",
        started,
        &serde_json::to_vec(&map).unwrap(),
    );

    // Exactly once, a transaction marker after every 100 records: the map thins to its 64 segments.
    let started = Instant::now();
    let mut map = OffsetMap::new(0);
    for s in 0..COPIES {
        map.copied(s, s + s / 100);
    }
    report(
        "preserve, a marker every 100 records",
        started,
        &serde_json::to_vec(&map).unwrap(),
    );

    for partitions in [3, 64] {
        let started = Instant::now();
        let mut map = KeyedMap::default();
        let mut ends = vec![0i64; partitions];
        // Keys spread by a multiplicative hash; other source partitions' copies in between (x4).
        for s in 0..COPIES {
            let q = ((s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % partitions;
            map.copied(s, q as i32, ends[q]);
            ends[q] += 4;
        }
        let heads: BTreeMap<i32, i64> = (0..partitions as i32)
            .map(|q| (q, ends[q as usize]))
            .collect();
        let published = serde_json::to_vec(map.publish(heads, Some(COPIES))).unwrap();
        report(
            &format!("key, over {partitions} target partitions"),
            started,
            &published,
        );
    }
}
