//! Detects a source partition that lost records the mirror had not copied yet: retention (or
//! `kafka-delete-records`, or a recreated topic) removed the offset the mirror was about to read.
//!
//! librdkafka handles this on its own: the fetch fails with `OFFSET_OUT_OF_RANGE` and the consumer jumps to
//! `auto.offset.reset`, skipping every record in between. Its only trace is one warning in its log, so the
//! stream's context reads that line. The mirror's policy is to stop instead of skipping silently (see
//! `SourceTruncated` in the README): the committed offset stays where the copy really ended, the operator
//! sees it below the partition's first offset and reports it, and a person decides to accept the loss.

use rdkafka::config::RDKafkaLogLevel;

/// A partition whose next offset is gone from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetReset {
    pub topic: String,
    pub partition: i32,
    /// The offset the consumer wanted to read next.
    pub wanted: i64,
    /// Where librdkafka would continue, when it says: the first offset the source still holds.
    pub resumes_at: Option<i64>,
    /// librdkafka's own words, kept for the log.
    pub detail: String,
}

impl OffsetReset {
    /// The reason the worker stops, as its exit message and `/healthz` show it.
    pub fn reason(&self) -> String {
        let gap = match self.resumes_at {
            Some(next) if next > self.wanted => format!(
                "offsets {}..{} ({} records)",
                self.wanted,
                next - 1,
                next - self.wanted
            ),
            // librdkafka names the new position only when a fetch had told it the first offset left.
            _ => format!("offset {} and possibly later ones", self.wanted),
        };
        format!(
            "source partition {}[{}] no longer holds offset {}: {gap} were deleted before the mirror copied \
             them (retention, delete-records, or the topic was recreated). The mirror stops rather than skip \
             them. To accept the loss, move the group past the gap: kafka-consumer-groups.sh --reset-offsets \
             --to-earliest --topic {}:{} --group <spec.source.groupId> --execute (librdkafka: {})",
            self.topic, self.partition, self.wanted, self.topic, self.partition, self.detail
        )
    }
}

/// Reads librdkafka's warning about a reset after a failed fetch, e.g.
/// `[thrd:main]: orders [2]: offset reset (at offset 1200 (leader epoch 0), broker 1) to cached BEGINNING
/// offset offset 29456 (leader epoch -1): fetch failed due to requested offset not available on the broker:
/// Broker: Offset out of range`.
///
/// A reset without an error (a new group starting at `earliest`) is only debug-logged by librdkafka, so it
/// never matches.
pub fn parse_offset_reset(
    level: RDKafkaLogLevel,
    facility: &str,
    message: &str,
) -> Option<OffsetReset> {
    if facility != "OFFSET" || !matches!(level, RDKafkaLogLevel::Warning | RDKafkaLogLevel::Error) {
        return None;
    }
    let line = match message.strip_prefix("[thrd:") {
        Some(rest) => rest.split_once("]: ")?.1,
        None => message,
    };
    let (topic, rest) = line.split_once(" [")?;
    let (partition, rest) = rest.split_once("]: offset reset (at offset ")?;
    let wanted = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .next()?;
    let resumes_at = rest
        .split_once(") to ")
        .and_then(|(_, target)| target.split(": ").next())
        .and_then(|target| target.split_whitespace().find_map(|word| word.parse().ok()));
    Some(OffsetReset {
        topic: topic.to_string(),
        partition: partition.parse().ok()?,
        wanted: wanted.parse().ok()?,
        resumes_at,
        detail: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "[thrd:main]: orders [2]: offset reset (at offset 1200 (leader epoch 0), broker 1) to \
                        cached BEGINNING offset offset 29456 (leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out \
                        of range";

    #[test]
    fn reads_the_partition_and_the_offset_the_consumer_wanted() {
        let reset = parse_offset_reset(RDKafkaLogLevel::Warning, "OFFSET", LINE).unwrap();
        assert_eq!(
            (
                reset.topic.as_str(),
                reset.partition,
                reset.wanted,
                reset.resumes_at
            ),
            ("orders", 2, 1200, Some(29456))
        );
        assert!(
            reset
                .reason()
                .contains("offsets 1200..29455 (28256 records) were deleted")
        );
        assert!(
            reset
                .reason()
                .contains("orders[2] no longer holds offset 1200")
        );
        assert!(reset.reason().contains("--topic orders:2"));
    }

    #[test]
    fn a_reset_without_a_number_still_names_the_offset() {
        let line = "orders [0]: offset reset (at offset 7 (leader epoch -1), broker 1) to BEGINNING: fetch \
                    failed: Broker: Offset out of range";
        let reset = parse_offset_reset(RDKafkaLogLevel::Warning, "OFFSET", line).unwrap();
        assert_eq!((reset.wanted, reset.resumes_at), (7, None));
        assert!(
            reset
                .reason()
                .contains("offset 7 and possibly later ones were deleted")
        );
    }

    #[test]
    fn ignores_debug_lines_other_facilities_and_other_messages() {
        assert_eq!(
            parse_offset_reset(RDKafkaLogLevel::Debug, "OFFSET", LINE),
            None
        );
        assert_eq!(
            parse_offset_reset(RDKafkaLogLevel::Warning, "FETCH", LINE),
            None
        );
        assert_eq!(
            parse_offset_reset(
                RDKafkaLogLevel::Warning,
                "OFFSET",
                "orders [2]: failed to commit offset"
            ),
            None
        );
    }
}
