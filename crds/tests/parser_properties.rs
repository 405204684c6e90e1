//! Properties of the document parser (`parse_document`, which runs `validate`), over generated input:
//!
//! - any text, random or YAML-shaped, gives `Ok` or a `DocumentError` whose every line names a field; never a
//!   panic;
//! - a valid generated `KafkaMirror` written as YAML reads back as the same resource, whether written from the
//!   typed value or from the JSON the API server would store;
//! - a valid document with one field dropped, one value replaced by a scalar of another type, or one unknown key
//!   inserted is refused naming the field it broke (or one above it), or still reads; never a panic, and an
//!   unknown key in an object of the API is always refused naming its exact path.
//!
//! 512 cases per property by default (a few seconds in a debug build); `PROPTEST_CASES=20000` for a long run.

use kafka_mirror_crds::{DocumentError, KafkaMirror, parse_document, refused_config_key};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        // Shrinking a failure of a 20,000-case run should not take longer than the run.
        max_shrink_iters: 4096,
        // A failure is printed with its minimal input; it becomes a plain #[test] here, not a file proptest
        // writes into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Valid documents, built as the JSON the API server would store (so a field added to the API later does not
// break this file; fields absent here take their defaults).

/// Strings that YAML might read as something else if they were written without quotes.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "true",
            "false",
            "yes",
            "no",
            "on",
            "off",
            "null",
            "~",
            "Null",
            "1e3",
            "0x1F",
            "0o17",
            "012",
            "1_000",
            ".inf",
            "-.inf",
            ".nan",
            "3.14",
            "-0",
            "+1",
            "a: b",
            "- x",
            "# not a comment",
            "&anchor",
            "*alias",
            "!tag",
            "|",
            ">",
            "'quoted'",
            "\"dq\"",
            "{a: 1}",
            "[1, 2]",
            " leading",
            "trailing ",
            "two\nlines",
            "tab\there",
            "ümlaut",
            "日本語",
            "emoji 🚀",
            "%YAML",
            "---",
            "...",
            "? key",
            "@at",
            "`tick`",
        ])
        .prop_map(str::to_string),
        ".{0,24}",
        "[0-9]{1,12}",
    ]
}

fn int_or_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::from),
        tricky_string().prop_map(Value::from),
    ]
}

fn client_config() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        select(vec![
            "compression.type",
            "linger.ms",
            "fetch.max.bytes",
            "client.rack",
            "message.max.bytes",
            "batch.size",
            "socket.keepalive.enable",
            "queue.buffering.max.kbytes",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,8}(\\.[a-z]{1,8}){0,3}",
    ]
    .prop_filter("a key the mirror refuses", |k| {
        refused_config_key(k).is_none()
    });
    proptest::collection::btree_map(key, int_or_string(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn secret_ref() -> impl Strategy<Value = Value> {
    (
        "[a-z0-9]([-a-z0-9.]{0,12}[a-z0-9])?",
        "[-_a-zA-Z0-9][-._a-zA-Z0-9]{0,12}",
    )
        .prop_map(|(name, key)| json!({"name": name, "key": key}))
}

fn host_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,8}){0,3}"
}

/// A bootstrap list whose hosts start with `side` (`source`/`target`), or IPs of a range of its own, so the two
/// sides never name the same broker.
fn bootstrap_servers(side: &'static str) -> impl Strategy<Value = String> {
    let octet = if side == "source" { 23 } else { 24 };
    let host = prop_oneof![
        (any::<u8>(), any::<u8>()).prop_map(move |(a, b)| format!("10.{octet}.{a}.{b}")),
        host_name().prop_map(move |h| format!("{side}-{h}")),
    ];
    (
        proptest::collection::vec((host, 1..=65535u16), 1..4),
        select(vec![",", ", "]),
    )
        .prop_map(|(servers, separator)| {
            servers
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(separator)
        })
}

fn host_alias() -> impl Strategy<Value = Value> {
    let ip = prop_oneof![
        any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
    ];
    (ip, proptest::collection::vec(host_name(), 1..3))
        .prop_map(|(ip, hostnames)| json!({"ip": ip, "hostnames": hostnames}))
}

fn connection(side: &'static str) -> impl Strategy<Value = Map<String, Value>> {
    let tls = (
        proptest::option::of(secret_ref()),
        proptest::option::of((secret_ref(), secret_ref())),
    )
        .prop_map(|(ca, client)| {
            let mut tls = Map::new();
            if let Some(ca) = ca {
                tls.insert("ca".into(), ca);
            }
            if let Some((certificate, key)) = client {
                tls.insert("clientCertificate".into(), certificate);
                tls.insert("clientKey".into(), key);
            }
            Value::Object(tls)
        });
    let authentication = (
        select(vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
        prop_oneof![Just("$ConnectionString".to_string()), ".{1,20}"],
        secret_ref(),
    )
        .prop_map(|(mechanism, username, password)| {
            json!({"mechanism": mechanism, "username": username, "password": password})
        });
    (
        bootstrap_servers(side),
        proptest::collection::vec(host_alias(), 0..3),
        proptest::option::of(tls),
        proptest::option::of(authentication),
        client_config(),
    )
        .prop_map(|(servers, aliases, tls, authentication, config)| {
            let mut c = Map::new();
            c.insert("bootstrapServers".into(), servers.into());
            if !aliases.is_empty() {
                c.insert("hostAliases".into(), aliases.into());
            }
            if let Some(tls) = tls {
                c.insert("tls".into(), tls);
            }
            if let Some(authentication) = authentication {
                c.insert("authentication".into(), authentication);
            }
            if !config.is_empty() {
                c.insert("config".into(), Value::Object(config));
            }
            c
        })
}

/// A topic pattern that is a valid regular expression.
fn pattern() -> impl Strategy<Value = String> {
    let name = "[a-zA-Z0-9_-]{1,12}(\\.[a-zA-Z0-9_-]{1,8}){0,2}";
    prop_oneof![
        name.prop_map(|n| n.to_string()),
        name.prop_map(|n| format!("{}\\..*", n.replace('.', "\\."))),
        (name, name).prop_map(|(a, b)| format!("({a}|{b})")),
    ]
}

fn topics() -> impl Strategy<Value = Value> {
    let create = (
        any::<bool>(),
        proptest::option::of(1..=32i32),
        proptest::collection::btree_map("[a-z]{1,8}(\\.[a-z]{1,8}){0,2}", tricky_string(), 0..3),
    )
        .prop_map(|(enabled, rf, config)| {
            let mut create = json!({"enabled": enabled});
            if let Some(rf) = rf {
                create["replicationFactor"] = rf.into();
            }
            if !config.is_empty() {
                create["config"] = json!(config);
            }
            create
        });
    (
        proptest::collection::vec(pattern(), 1..4),
        proptest::collection::vec(pattern(), 0..3),
        proptest::option::of("[a-zA-Z0-9._-]{0,10}\\{topic\\}[a-zA-Z0-9._-]{0,10}"),
        proptest::option::of(create),
        proptest::option::of(1..=3600i32),
    )
        .prop_map(|(include, exclude, rename, create, refresh)| {
            let mut t = json!({"include": include});
            if !exclude.is_empty() {
                t["exclude"] = json!(exclude);
            }
            if let Some(rename) = rename {
                t["rename"] = rename.into();
            }
            if let Some(create) = create {
                t["create"] = create;
            }
            if let Some(refresh) = refresh {
                t["refreshIntervalSeconds"] = refresh.into();
            }
            t
        })
}

fn template() -> impl Strategy<Value = Value> {
    let labels =
        || proptest::collection::btree_map("[a-z]{1,8}(/[a-z]{1,8})?", tricky_string(), 0..3);
    (
        proptest::option::of("[a-z]{1,10}(/[a-z]{1,10}){0,2}:[0-9]\\.[0-9]"),
        proptest::option::of(select(vec!["Always", "IfNotPresent", "Never"])),
        labels(),
        labels(),
    )
        .prop_map(|(image, policy, node_selector, annotations)| {
            let mut t = Map::new();
            if let Some(image) = image {
                t.insert("image".into(), image.into());
            }
            if let Some(policy) = policy {
                t.insert("imagePullPolicy".into(), policy.into());
            }
            if !node_selector.is_empty() {
                t.insert("nodeSelector".into(), json!(node_selector));
            }
            if !annotations.is_empty() {
                t.insert("podAnnotations".into(), json!(annotations));
            }
            Value::Object(t)
        })
}

/// A valid `KafkaMirror` document as JSON.
fn valid_document() -> impl Strategy<Value = Value> {
    let scalars = (
        proptest::option::of(select(vec!["key", "preserve"])),
        proptest::option::of(select(vec!["atLeastOnce", "exactlyOnce"])),
        proptest::option::of(select(vec!["continuous", "migrate"])),
        proptest::option::of(0..=1000i32),
        proptest::option::of(1..=64i32),
        proptest::option::of(any::<bool>()),
    );
    (
        "[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?",
        connection("source"),
        proptest::option::of("[a-zA-Z0-9._-]{1,40}"),
        connection("target"),
        topics(),
        scalars,
        proptest::option::of(template()),
    )
        .prop_map(
            |(name, mut source, group, target, topics, scalars, template)| {
                if let Some(group) = group {
                    source.insert("groupId".into(), group.into());
                }
                let mut spec = json!({"source": source, "target": target, "topics": topics});
                let (partitioning, delivery, mode, replicas, streams, paused) = scalars;
                // Exactly once is refused with mode: migrate (spec.delivery).
                let mode = mode.filter(|m| !(delivery == Some("exactlyOnce") && *m == "migrate"));
                let optional: [(&str, Option<Value>); 7] = [
                    ("partitioning", partitioning.map(Value::from)),
                    ("delivery", delivery.map(Value::from)),
                    ("mode", mode.map(Value::from)),
                    ("replicas", replicas.map(Value::from)),
                    ("numStreams", streams.map(Value::from)),
                    ("paused", paused.map(Value::from)),
                    ("template", template),
                ];
                for (field, value) in optional {
                    if let Some(value) = value {
                        spec[field] = value;
                    }
                }
                json!({
                    "apiVersion": "kafkamirror.io/v1alpha1",
                    "kind": "KafkaMirror",
                    "metadata": {"name": name},
                    "spec": spec,
                })
            },
        )
}

// ---------------------------------------------------------------------------------------------------------
// Checks shared by the properties.

/// Every error names a document path and says something, on one line.
fn check_error(error: &DocumentError) -> Result<(), TestCaseError> {
    let errors = error.field_errors();
    prop_assert!(!errors.is_empty(), "an error without a field: {error}");
    for e in errors {
        // An unknown key at the top of the document is named as it is; everything else hangs under a root field.
        let top_level_unknown = e.message.starts_with("unknown field") && !e.field.is_empty();
        prop_assert!(
            top_level_unknown
                || ["document", "apiVersion", "kind", "metadata", "spec"]
                    .iter()
                    .any(|root| e.field == *root
                        || e.field.starts_with(&format!("{root}."))
                        || e.field.starts_with(&format!("{root}["))),
            "the error does not name a document path: {e}"
        );
        prop_assert!(!e.message.trim().is_empty(), "an empty message: {e}");
        prop_assert!(
            !e.message.contains('\n'),
            "a message of more than one line: {e:?}"
        );
        prop_assert!(!e.field.contains(".?"), "serde's `?` in a path: {e}");
    }
    Ok(())
}

/// `field` is `path`, above it, or below it.
fn related(field: &str, path: &str) -> bool {
    let below = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}.")) || a.starts_with(&format!("{b}["))
    };
    field == "document" || below(path, field) || below(field, path)
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn path_string(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Every path in `value` to an object member or an array element, and every object (for insertions).
fn all_paths(
    value: &Value,
    here: &mut Vec<Step>,
    members: &mut Vec<Vec<Step>>,
    objects: &mut Vec<Vec<Step>>,
) {
    match value {
        Value::Object(map) => {
            objects.push(here.clone());
            for (k, v) in map {
                here.push(Step::Key(k.clone()));
                members.push(here.clone());
                all_paths(v, here, members, objects);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                here.push(Step::Index(i));
                members.push(here.clone());
                all_paths(v, here, members, objects);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(value: &'a mut Value, steps: &[Step]) -> &'a mut Value {
    steps.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// Objects of the API whose keys are free (maps), where an unknown key is not an error.
fn is_free_map(path: &str) -> bool {
    [
        "config",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "labels",
        "annotations",
    ]
    .iter()
    .any(|m| path == *m || path.ends_with(&format!(".{m}")))
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        tricky_string().prop_map(Value::from),
    ]
}

fn same_kind(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.is_f64() == y.is_f64(),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    Replace(Value),
    Insert(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Drop),
        scalar().prop_map(Mutation::Replace),
        ("zz[a-zA-Z]{1,8}", scalar()).prop_map(|(k, v)| Mutation::Insert(k, v)),
    ]
}

// ---------------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any text at all: `Ok` or a `DocumentError` naming a field; never a panic.
    #[test]
    fn any_text_is_read_or_refused_naming_a_field(text in ".{0,300}") {
        if let Err(e) = parse_document(&text) {
            check_error(&e)?;
        }
    }

    /// Any bytes, read as the worker would read a file that is not UTF-8 (lossily).
    #[test]
    fn any_bytes_are_read_or_refused_naming_a_field(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = parse_document(&String::from_utf8_lossy(&bytes)) {
            check_error(&e)?;
        }
    }

    /// Text made of YAML's own punctuation, after a valid header or not: reaches deeper than random text.
    #[test]
    fn yaml_shaped_text_is_read_or_refused_naming_a_field(
        header in any::<bool>(),
        body in "([ \\n\\t:,\\-\\[\\]{}&*!|>'\"#%@?~.0-9]|[a-z]{1,6}|spec|source|target|topics|include|bootstrapServers){0,80}",
    ) {
        let text = if header {
            format!("apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\n{body}")
        } else {
            body
        };
        if let Err(e) = parse_document(&text) {
            check_error(&e)?;
        }
    }

    /// A valid document reads back as the same resource: from YAML written from the typed value, and from
    /// YAML written from the JSON the API server stores.
    #[test]
    fn a_valid_document_round_trips(document in valid_document()) {
        let expected: KafkaMirror = serde_json::from_value(document.clone())
            .map_err(|e| TestCaseError::fail(format!("the generator made an ill-typed document: {e}\n{document:#}")))?;
        for yaml in [
            yaml_serde::to_string(&expected).unwrap(),
            yaml_serde::to_string(&document).unwrap(),
        ] {
            match parse_document(&yaml) {
                Ok(parsed) => {
                    prop_assert_eq!(&parsed.spec, &expected.spec, "\n{}", yaml);
                    prop_assert_eq!(&parsed.metadata, &expected.metadata);
                }
                Err(e) => prop_assert!(false, "a valid document was refused: {e}\n{yaml}"),
            }
        }
    }

    /// One field dropped, one value replaced by a scalar of another type, or one unknown key inserted: the
    /// document still reads, or is refused naming the field (or one above it); an unknown key in an object of
    /// the API is refused naming its exact path.
    #[test]
    fn a_mutated_document_is_refused_naming_the_field(
        document in valid_document(),
        pick in any::<proptest::sample::Index>(),
        mutation in mutation(),
    ) {
        let mut members = Vec::new();
        let mut objects = Vec::new();
        all_paths(&document, &mut Vec::new(), &mut members, &mut objects);
        let mut mutated = document.clone();
        let (path, inserted_into_struct) = match &mutation {
            Mutation::Drop => {
                let steps = pick.get(&members).clone();
                let (last, parent) = steps.split_last().unwrap();
                match (at_mut(&mut mutated, parent), last) {
                    (Value::Object(map), Step::Key(k)) => { map.remove(k); }
                    (Value::Array(items), Step::Index(i)) => { items.remove(*i); }
                    _ => unreachable!(),
                }
                (path_string(&steps), false)
            }
            Mutation::Replace(value) => {
                let steps = pick.get(&members).clone();
                let target = at_mut(&mut mutated, &steps);
                prop_assume!(!same_kind(target, value));
                *target = value.clone();
                (path_string(&steps), false)
            }
            Mutation::Insert(key, value) => {
                let steps = pick.get(&objects).clone();
                let parent = path_string(&steps);
                at_mut(&mut mutated, &steps)
                    .as_object_mut()
                    .unwrap()
                    .insert(key.clone(), value.clone());
                let path = if parent.is_empty() { key.clone() } else { format!("{parent}.{key}") };
                (path, !is_free_map(&parent))
            }
        };
        let yaml = yaml_serde::to_string(&mutated).unwrap();
        match parse_document(&yaml) {
            Ok(_) => prop_assert!(
                !inserted_into_struct,
                "the unknown field {path} was accepted:\n{yaml}"
            ),
            Err(e) => {
                check_error(&e)?;
                if inserted_into_struct {
                    let errors = e.field_errors();
                    prop_assert_eq!(errors.len(), 1);
                    prop_assert_eq!(&errors[0].field, &path, "{}\n{}", e, yaml);
                    prop_assert!(errors[0].message.starts_with("unknown field"), "{}", e);
                } else if let DocumentError::Shape(field_error) = &e {
                    prop_assert!(
                        related(&field_error.field, &path),
                        "{:?} of {} gave an error about another field: {}\n{}",
                        mutation, path, e, yaml
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Inputs a random generator will not find: resource exhaustion through nesting and aliases.

#[test]
fn deep_nesting_is_refused_quickly_not_a_stack_overflow() {
    let header =
        "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {name: m}\nspec: ";
    for open in ["[", "{a: ", "- ", "[{a: "] {
        for text in [
            open.repeat(100_000),
            format!("{header}{}", open.repeat(100_000)),
        ] {
            let started = std::time::Instant::now();
            let e = parse_document(&text).expect_err("refused");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{open:?}: {:?}",
                started.elapsed()
            );
            check_error(&e).unwrap();
        }
    }
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names: Vec<char> = ('b'..='j').collect();
    let mut previous = 'a';
    for name in &names {
        text.push_str(&format!(
            "{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
        ));
        previous = *name;
    }
    let text = format!("apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\n{text}");
    let started = std::time::Instant::now();
    let e = parse_document(&text).expect_err("refused");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(e.to_string().starts_with("document:"), "{e}");
}

/// Found by a 20,000-case run: a line that is only `?` is a null key, once named as an empty field.
#[test]
fn an_empty_key_is_named() {
    for (text, field) in [
        (
            "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\n?",
            "\"\"",
        ),
        (
            "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {name: m}\nspec:\n  ?\n",
            "spec.\"\"",
        ),
    ] {
        let e = parse_document(text).expect_err("refused");
        check_error(&e).unwrap();
        assert_eq!(e.field_errors()[0].field, field, "{e}");
    }
}
