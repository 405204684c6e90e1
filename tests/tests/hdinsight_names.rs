//! The HDInsight name case: brokers that advertise host names no DNS server resolves (worker-node FQDNs such as
//! `wn0-kafka.abc123.internal.cloudapp.net` in a peered VNet without a custom DNS server), reached by IP.
//!
//! The broker here is Apache Kafka whose PLAINTEXT listener advertises such a name while listening on
//! 127.0.0.1; the mirror's other side is the same cluster. Without `hostAliases` the worker bootstraps by IP,
//! learns the name from the metadata and can reach no broker by it: it must say so. With `hostAliases` in the
//! document the worker's own clients resolve the name through them (nothing on this machine resolves it, and
//! `/etc/hosts` is not touched) and the mirror copies everything; the readers the operator measures lag and
//! migration progress with do the same.

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::broker_probe::BrokerProbe;
use kafka_mirror_clients::host_aliases::{self, HostAliases};
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::Mode;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::{ClusterOptions, Finished, KafkaCluster, Worker, read_records};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// The name the broker advertises; nothing on this machine resolves it (checked by [`cluster`]).
const ADVERTISED: &str = "wn0-kafka.abc123.internal.cloudapp.net";
const RECORDS: u64 = 500;

fn cluster() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        assert!(
            (ADVERTISED, 0).to_socket_addrs().is_err(),
            "{ADVERTISED} resolves on this machine: these tests need a name that resolves nowhere"
        );
        KafkaCluster::start(&ClusterOptions {
            advertised_host: Some(ADVERTISED.into()),
            ..ClusterOptions::default()
        })
    })
}

/// The PLAINTEXT listener by IP: what a user writes in `bootstrapServers` for HDInsight.
fn by_ip(cluster: &KafkaCluster) -> String {
    assert!(
        cluster.plaintext.contains(ADVERTISED),
        "{}",
        cluster.plaintext
    );
    cluster.plaintext.replace(ADVERTISED, "127.0.0.1")
}

/// A `mode: migrate` document copying `<name>-orders` to `mirror.<name>-orders` from `source` to `target`,
/// written to `dir`.
fn document(dir: &Path, name: &str, source: Connection, target: Connection) -> PathBuf {
    MirrorDocument::new(name, source, target)
        .include(&format!("{name}-orders"))
        .rename("mirror.{topic}")
        .create(1, &[])
        .mode(Mode::Migrate)
        .num_streams(1)
        .write_in(dir)
}

/// `<name>-orders` with 3 partitions and RECORDS sample records, through the internal listener.
fn seed(cluster: &KafkaCluster, name: &str) -> Vec<samples::SampleRecord> {
    let topic = format!("{name}-orders");
    cluster.create_topic(&topic, 3, 1, &[]);
    samples::produce_with(&cluster.client(), &topic, 0, RECORDS, 25, 100).unwrap()
}

fn timed(name: &str, worker: Worker, timeout: Duration) -> Finished {
    let started = Instant::now();
    let run = worker.finish(timeout);
    eprintln!(
        "{name}: the worker exited with {} after {:.1} s",
        run.status,
        started.elapsed().as_secs_f64()
    );
    run
}

/// Bootstrapping by IP works, but the metadata names the broker `wn0-kafka...`, which does not resolve: the
/// worker gives up by itself (exit 1) naming that name and `spec.source.hostAliases`, and mirrors nothing.
#[test]
fn without_host_aliases_the_worker_gives_up_naming_the_advertised_name_and_host_aliases() {
    let cluster = cluster();
    let name = "no-aliases";
    seed(cluster, name);
    let dir = tempfile::tempdir().unwrap();
    let document = document(
        dir.path(),
        name,
        Connection::new(&by_ip(cluster)),
        Connection::new(&cluster.internal),
    );
    let run = timed(
        name,
        Worker::spawn(&document, dir.path(), &[]),
        Duration::from_secs(90),
    );
    assert!(
        run.exited_by_itself,
        "the worker should give up by itself:\n{}",
        run.output()
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.output());
    let last = run.last_line();
    eprintln!("{name}: {last}");
    assert!(
        last.starts_with("mirror-worker: error: ")
            && last.contains(ADVERTISED)
            && last.contains("spec.source.hostAliases"),
        "the exit message names the unresolvable name and the field that fixes it:\n{}",
        run.output()
    );
    let copied = cluster.records(&format!("mirror.{name}-orders"));
    eprintln!("{name}: {copied} records mirrored");
    assert_eq!(copied, 0, "nothing mirrored");
}

/// Which of the worker's two messages a run gets depends on whether librdkafka answered its first metadata
/// request through the bootstrap connection (by IP) before it moved to the advertised name (a race, so no test
/// can choose it). When it did, the worker checks the advertised names itself: that check, on the brokers this
/// cluster advertises (the `PLAINTEXT` list the cluster script prints, which is `advertised.listeners`), fails
/// without an alias for the name and passes with one; the brokers the internal listener advertises
/// (127.0.0.1) pass.
#[test]
fn the_advertised_name_check_names_the_unresolvable_broker_and_host_aliases() {
    let cluster = cluster();
    let advertised = |list: &str| -> Vec<(String, i32)> {
        list.split(',')
            .map(|b| {
                let (host, port) = b.rsplit_once(':').unwrap();
                (host.to_string(), port.parse().unwrap())
            })
            .collect()
    };
    let check = |prefix: &str, brokers: &[(String, i32)], aliases: &HostAliases| {
        host_aliases::check_advertised_brokers(
            prefix,
            brokers.iter().map(|(h, p)| (h.as_str(), *p)),
            aliases,
        )
    };
    let port = cluster.plaintext.rsplit_once(':').unwrap().1;
    let brokers = advertised(&cluster.plaintext);
    let error = check("spec.source", &brokers, &HostAliases::default())
        .expect_err("the advertised name resolves nowhere here");
    eprintln!("advertised-name check: {error}");
    assert!(
        error.to_string().starts_with(&format!(
            "the brokers advertise host names that neither spec.source.hostAliases nor this machine's \
             resolver resolve: {ADVERTISED}:{port}; map each name to its broker's IP address in \
             spec.source.hostAliases"
        )),
        "{error}"
    );
    let aliased = HostAliases::from_pairs([(ADVERTISED, "127.0.0.1".parse().unwrap())]);
    assert!(
        check("spec.source", &brokers, &aliased).is_ok(),
        "a name hostAliases maps passes"
    );
    // The internal listener's metadata, read for real: its brokers are advertised as 127.0.0.1.
    let internal: BaseConsumer = cluster.client().create().unwrap();
    let resolvable = internal
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(
        host_aliases::check_advertised("spec.target", &resolvable, &HostAliases::default()).is_ok(),
        "brokers advertised as 127.0.0.1 pass"
    );
}

/// With `hostAliases` in the document (the advertised name → 127.0.0.1) and nothing else, the worker's clients
/// resolve the name themselves: the source bootstrapped by IP as on HDInsight, the target bootstrapped by the
/// name itself, both through the aliases. The migration completes and every record arrives intact, although
/// nothing on this machine resolves the name, before or after.
#[test]
fn with_host_aliases_the_worker_copies_every_record() {
    let cluster = cluster();
    let name = "aliased";
    let seeded = seed(cluster, name);
    let dir = tempfile::tempdir().unwrap();
    let hosts_before = std::fs::read_to_string("/etc/hosts").unwrap();
    let document = document(
        dir.path(),
        name,
        Connection::new(&by_ip(cluster)).host_alias("127.0.0.1", &[ADVERTISED]),
        Connection::new(&cluster.plaintext).host_alias("127.0.0.1", &[ADVERTISED]),
    );
    let run = timed(
        name,
        Worker::spawn(&document, dir.path(), &[]),
        Duration::from_secs(120),
    );
    run.assert_migration_complete(name);
    let copy = read_records(
        &cluster.client(),
        &format!("mirror.{name}-orders"),
        seeded.len(),
        Duration::from_secs(60),
    );
    let verification = samples::verify(&seeded, &copy);
    eprintln!("{name}: {verification}");
    assert!(verification.is_intact(), "{verification}");
    assert_eq!(verification.duplicated, 0, "{verification}");
    assert!(
        (ADVERTISED, 0).to_socket_addrs().is_err(),
        "the name still resolves nowhere on this machine"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/hosts").unwrap(),
        hosts_before,
        "/etc/hosts is untouched"
    );
}

/// What the operator asks Kafka on every reconcile, through brokers known only by the advertised name: the
/// source positions its lag and migration progress come from (`lag::read_positions` on the plan's source
/// admin settings: topic list, the group's committed offsets from the coordinator, each partition's watermarks
/// from its leader) and the target probe, both bootstrapped by the name and resolving it through the document's
/// `hostAliases`, in this test's process, where nothing else resolves it.
#[test]
fn the_operators_kafka_readers_resolve_the_advertised_name_through_host_aliases() {
    let cluster = cluster();
    let name = "measured";
    seed(cluster, name);
    let topic = format!("{name}-orders");
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(
        name,
        Connection::new(&cluster.plaintext).host_alias("127.0.0.1", &[ADVERTISED]),
        Connection::new(&cluster.plaintext).host_alias("127.0.0.1", &[ADVERTISED]),
    )
    .include(&topic)
    .rename("mirror.{topic}")
    .create(1, &[]);
    let plan = MirrorPlan::load(&mirror.write_in(dir.path()), &Secrets::new(dir.path())).unwrap();

    // The mirror group has copied 7 records of partition 0 (committed through the internal listener).
    let committer: BaseConsumer = cluster
        .client()
        .set("group.id", &plan.group_id)
        .create()
        .unwrap();
    let mut committed = TopicPartitionList::new();
    committed
        .add_partition_offset(&topic, 0, Offset::Offset(7))
        .unwrap();
    committer.commit(&committed, CommitMode::Sync).unwrap();

    let positions = kafka_mirror_operator::lag::read_positions(
        &plan.source_admin,
        &plan.group_id,
        &plan.filter,
    )
    .unwrap_or_else(|e| panic!("the source positions through the alias: {e}"));
    eprintln!("{name}: {positions:?}");
    assert_eq!(positions.len(), 3, "{positions:?}");
    let records: i64 = positions.values().map(|p| p.high - p.low).sum();
    assert_eq!(records, RECORDS as i64, "{positions:?}");
    let first = positions[&(topic.clone(), 0)];
    assert_eq!(first.committed, Some(7), "{positions:?}");
    assert_eq!(first.lag(), first.high - 7, "{positions:?}");

    let probe = BrokerProbe::new(&plan.target_admin, "spec.target").unwrap();
    let metadata = probe
        .metadata(None, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the target through the alias: {e}"));
    assert!(
        metadata.brokers().iter().all(|b| b.host() == ADVERTISED),
        "the target's brokers are known by the advertised name only"
    );
    assert!(
        host_aliases::check_advertised("spec.target", &metadata, probe.host_aliases()).is_ok(),
        "the advertised name is one of the target's hostAliases"
    );
    assert!(
        (ADVERTISED, 0).to_socket_addrs().is_err(),
        "nothing in this process resolves the name but the mirror's clients"
    );
}
