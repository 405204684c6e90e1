//! `topics.include` / `topics.exclude` compiled once, used for discovery by the worker and for lag by the
//! operator.

use regex::Regex;

use crate::FieldError;

/// The prefix of the topics kafka-mirror keeps for itself on a target (its positions, transaction groups and
/// offset syncs, each followed by a group id). They hold another cluster's offsets, so no mirror copies them:
/// a reverse mirror of `.*`, as a failback sets up, would otherwise copy the forward mirror's bookkeeping back.
pub const OWN_TOPIC_PREFIX: &str = "kafka-mirror.";

/// Kafka's internal topics (`__consumer_offsets`, `__transaction_state`, ...): copying them would corrupt the
/// target's own bookkeeping.
const INTERNAL_PREFIX: &str = "__";

/// Decides whether a source topic is mirrored.
#[derive(Debug, Clone)]
pub struct TopicFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    /// Names starting with one of these never match, whatever the patterns say.
    never: &'static [&'static str],
}

impl TopicFilter {
    /// Compiles the patterns, anchored at both ends (a pattern must match the whole name, as MirrorMaker's
    /// whitelist does). Errors name the offending list entry. Kafka's internal topics and kafka-mirror's own
    /// ([`OWN_TOPIC_PREFIX`]) never match.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, Vec<FieldError>> {
        Self::compile(
            "spec.topics",
            include,
            exclude,
            &[INTERNAL_PREFIX, OWN_TOPIC_PREFIX],
        )
    }

    /// The same for the lists `<field>.include` and `<field>.exclude` (e.g. `spec.consumerGroups`, whose
    /// group ids are matched by the same rule); only names starting with `__` never match.
    pub fn of_field(
        field: &str,
        include: &[String],
        exclude: &[String],
    ) -> Result<Self, Vec<FieldError>> {
        Self::compile(field, include, exclude, &[INTERNAL_PREFIX])
    }

    fn compile(
        field: &str,
        include: &[String],
        exclude: &[String],
        never: &'static [&'static str],
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let include = compile_all(include, &format!("{field}.include"), &mut errors);
        let exclude = compile_all(exclude, &format!("{field}.exclude"), &mut errors);
        if errors.is_empty() {
            Ok(Self {
                include,
                exclude,
                never,
            })
        } else {
            Err(errors)
        }
    }

    /// True when the name is selected: not one that never is, matched by an `include` pattern and by no
    /// `exclude` pattern.
    pub fn matches(&self, topic: &str) -> bool {
        !self.never.iter().any(|prefix| topic.starts_with(prefix))
            && self.include.iter().any(|r| r.is_match(topic))
            && !self.exclude.iter().any(|r| r.is_match(topic))
    }
}

fn compile_all(patterns: &[String], field: &str, errors: &mut Vec<FieldError>) -> Vec<Regex> {
    let mut compiled = Vec::with_capacity(patterns.len());
    for (i, pattern) in patterns.iter().enumerate() {
        if pattern.is_empty() {
            errors.push(FieldError::new(format!("{field}[{i}]"), "empty pattern"));
            continue;
        }
        match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => compiled.push(regex),
            Err(e) => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!(
                    "invalid regular expression {pattern:?}: {}",
                    one_line(&e.to_string())
                ),
            )),
        }
    }
    compiled
}

/// regex errors are multi-line with a caret diagram; a condition message and an exit message want one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> TopicFilter {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        TopicFilter::new(&owned(include), &owned(exclude)).unwrap()
    }

    #[test]
    fn patterns_match_whole_names_only() {
        let f = filter(&["testtopic"], &[]);
        assert!(f.matches("testtopic"));
        assert!(!f.matches("testtopic2"));
        assert!(!f.matches("my-testtopic"));
    }

    #[test]
    fn exclude_wins_and_internal_topics_never_match() {
        let f = filter(&["orders\\..*", ".*"], &["orders\\.tmp"]);
        assert!(f.matches("orders.eu"));
        assert!(!f.matches("orders.tmp"));
        assert!(!f.matches("__consumer_offsets"));
    }

    #[test]
    fn kafka_mirrors_own_topics_are_never_mirrored_but_groups_of_that_name_are_selectable() {
        let everything = filter(&[".*"], &[]);
        for own in [
            "kafka-mirror.transactions.kafka-mirror.prod.dr",
            "kafka-mirror.offset-syncs.g",
            "kafka-mirror.offsets.g",
        ] {
            assert!(!everything.matches(own), "{own}");
        }
        assert!(everything.matches("kafka-mirror-orders"));
        // A consumer group's id may start with the prefix (the mirrors' default group ids do).
        let groups = TopicFilter::of_field("spec.consumerGroups", &[".*".into()], &[]).unwrap();
        assert!(groups.matches("kafka-mirror.prod.dr"));
        assert!(!groups.matches("__internal"));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        // Without the group, `^a|b$` would match "bxx"-free "axx".
        let f = filter(&["a|b"], &[]);
        assert!(f.matches("a") && f.matches("b"));
        assert!(!f.matches("axx"));
    }

    #[test]
    fn invalid_pattern_names_its_index_in_one_line() {
        let errors = TopicFilter::new(&["ok".into(), "orders[".into()], &[]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "spec.topics.include[1]");
        assert!(
            errors[0]
                .message
                .starts_with("invalid regular expression \"orders[\""),
            "{}",
            errors[0].message
        );
        assert!(!errors[0].message.contains('\n'));
    }
}
