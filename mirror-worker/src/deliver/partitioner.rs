//! Target partition choice: the Java producer's default partitioner for keyed records, so consumers of the
//! target see the same key → partition mapping a Java client would have produced.

use kafka_mirror_crds::Partitioning;

/// Kafka's `Utils.murmur2` (the Java client's key hash), bit for bit.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The target partition of one record.
///
/// Keyed records under `Partitioning::Key` go where the Java producer would put them. Records without a key
/// follow their source partition (modulo the target's count), which keeps their relative order — the Java
/// client would scatter them, losing it.
pub fn target_partition(
    partitioning: Partitioning,
    key: Option<&[u8]>,
    source_partition: i32,
    target_partitions: i32,
) -> i32 {
    debug_assert!(target_partitions > 0);
    match (partitioning, key) {
        (Partitioning::Key, Some(key)) => (murmur2(key) & 0x7fff_ffff) % target_partitions,
        (Partitioning::Key, None) => source_partition % target_partitions,
        (Partitioning::Preserve, _) => source_partition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn matches_the_java_clients_murmur2() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn keyed_records_use_the_positive_hash_modulo_partitions() {
        // murmur2("21") is negative: the sign bit is masked, not abs()'d, as in Java's toPositive.
        let expected = ((-973932308i32) & 0x7fff_ffff) % 7;
        assert_eq!(
            target_partition(Partitioning::Key, Some(b"21"), 0, 7),
            expected
        );
    }

    #[test]
    fn unkeyed_records_follow_their_source_partition() {
        assert_eq!(target_partition(Partitioning::Key, None, 5, 3), 2);
        assert_eq!(
            target_partition(Partitioning::Preserve, Some(b"k"), 5, 8),
            5
        );
    }
}
