//! `topics.include` / `topics.exclude` compiled once, used for discovery by the worker and for lag by the
//! operator.

use regex::Regex;

use crate::FieldError;

/// Decides whether a source topic is mirrored.
#[derive(Debug, Clone)]
pub struct TopicFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl TopicFilter {
    /// Compiles the patterns, anchored at both ends (a pattern must match the whole name, as MirrorMaker's
    /// whitelist does). Errors name the offending list entry.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, Vec<FieldError>> {
        Self::of_field("spec.topics", include, exclude)
    }

    /// The same for the lists `<field>.include` and `<field>.exclude` (e.g. `spec.consumerGroups`, whose
    /// group ids are matched by the same rule).
    pub fn of_field(
        field: &str,
        include: &[String],
        exclude: &[String],
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let include = compile_all(include, &format!("{field}.include"), &mut errors);
        let exclude = compile_all(exclude, &format!("{field}.exclude"), &mut errors);
        if errors.is_empty() {
            Ok(Self { include, exclude })
        } else {
            Err(errors)
        }
    }

    /// True when the topic is mirrored. Internal topics (`__consumer_offsets`, `__transaction_state`, ...)
    /// never are: copying them would corrupt the target's own bookkeeping.
    pub fn matches(&self, topic: &str) -> bool {
        !topic.starts_with("__")
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
