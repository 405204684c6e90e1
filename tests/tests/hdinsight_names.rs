//! The HDInsight name case: brokers that advertise host names no DNS server resolves (worker-node FQDNs such as
//! `wn0-kafka.abc123.internal.cloudapp.net` in a peered VNet without a custom DNS server), reached by IP.
//!
//! The broker here is Apache Kafka whose PLAINTEXT listener advertises such a name while listening on
//! 127.0.0.1; the mirror's target is the same cluster's INTERNAL listener (advertised as 127.0.0.1). Without
//! `hostAliases` the worker bootstraps by IP, learns the names from the metadata and can reach no broker by
//! them: it must say so. `hostAliases` it cannot honour on this machine are refused before any connection. And
//! with the alias resolvable (a private `/etc/hosts` bind-mounted over the real one in a mount namespace of
//! the worker process only, as the operator's pod `hostAliases` do in Kubernetes) the mirror copies everything.

use std::io::ErrorKind;
use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_crds::Mode;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::{ClusterOptions, Finished, KafkaCluster, Worker, read_records};
use rdkafka::consumer::{BaseConsumer, Consumer};

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

/// The last line of the worker's stderr.
fn last_line(run: &Finished) -> &str {
    run.stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
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
    let last = last_line(&run);
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
/// cluster advertises (the `PLAINTEXT` list the cluster script prints, which is `advertised.listeners`), and
/// on the brokers the internal listener advertises (127.0.0.1), which pass.
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
    let check = |prefix: &str, brokers: &[(String, i32)]| {
        kafka_mirror_clients::host_aliases::check_advertised_brokers(
            prefix,
            brokers.iter().map(|(h, p)| (h.as_str(), *p)),
        )
    };
    let port = cluster.plaintext.rsplit_once(':').unwrap().1;
    let error = check("spec.source", &advertised(&cluster.plaintext))
        .expect_err("the advertised name resolves nowhere here");
    eprintln!("advertised-name check: {error}");
    assert!(
        error
            .to_string()
            .starts_with(&format!(
                "the brokers advertise host names this machine cannot resolve: {ADVERTISED}:{port}; map each \
                 name to its broker's IP address in spec.source.hostAliases"
            )),
        "{error}"
    );
    // The internal listener's metadata, read for real: its brokers are advertised as 127.0.0.1.
    let internal: BaseConsumer = cluster.client().create().unwrap();
    let resolvable = internal
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(
        kafka_mirror_clients::host_aliases::check_advertised("spec.target", &resolvable).is_ok(),
        "brokers advertised as 127.0.0.1 pass"
    );
}

/// An accepting socket that counts who connected, for "before any connection".
struct Listener(TcpListener);

impl Listener {
    fn new() -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Listener(listener)
    }

    fn address(&self) -> String {
        self.0.local_addr().unwrap().to_string()
    }

    fn connections(&self) -> usize {
        let mut count = 0;
        loop {
            match self.0.accept() {
                Ok(_) => count += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return count,
                Err(e) => panic!("accepting: {e}"),
            }
        }
    }
}

/// A cluster section's `hostAliases` entries as (ip, host name).
type Aliases = &'static [(&'static str, &'static str)];

/// `hostAliases` this machine does not resolve as written are refused at start with exit 2 (a configuration
/// error), naming the entry, before the worker connects anywhere: on the source a name that resolves nowhere,
/// on the target (second entry, the first being one that holds) a name that resolves elsewhere.
#[test]
fn host_aliases_this_machine_does_not_resolve_are_refused_before_any_connection() {
    let cases: [(&str, Aliases, Aliases, String); 2] = [
        (
            "spec.source.hostAliases[0]",
            &[("10.23.0.11", ADVERTISED)],
            &[],
            format!(
                "{ADVERTISED} does not resolve to 10.23.0.11 on this machine (it resolves to nothing)"
            ),
        ),
        (
            "spec.target.hostAliases[1]",
            &[],
            &[("127.0.0.1", "localhost"), ("10.23.0.7", "localhost")],
            "localhost does not resolve to 10.23.0.7 on this machine (it resolves to ".to_string(),
        ),
    ];
    for (field, source_aliases, target_aliases, says) in cases {
        let (source, target) = (Listener::new(), Listener::new());
        let section = |listener: &Listener, aliases: &[(&str, &str)]| {
            aliases.iter().fold(
                Connection::new(&listener.address()),
                |section, (ip, host)| section.host_alias(ip, &[host]),
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let document = document(
            dir.path(),
            "refused-aliases",
            section(&source, source_aliases),
            section(&target, target_aliases),
        );
        let run = timed(
            field,
            Worker::spawn(&document, dir.path(), &[]),
            Duration::from_secs(20),
        );
        assert!(run.exited_by_itself, "{}", run.output());
        assert_eq!(run.status.code(), Some(2), "{}", run.output());
        let last = last_line(&run);
        eprintln!("{field}: {last}");
        assert!(
            last.starts_with(&format!("mirror-worker: error: {field}: {says}"))
                && last.contains("in Kubernetes the operator adds it to the pod's /etc/hosts")
                && last.contains("/etc/hosts"),
            "the exit message names the entry and what to do:\n{}",
            run.output()
        );
        let connections = (source.connections(), target.connections());
        eprintln!("{field}: connections to source and target: {connections:?}");
        assert_eq!(connections, (0, 0), "refused before any connection");
    }
}

/// How to run a command with `hosts` bind-mounted over `/etc/hosts` for that command only: a mount namespace
/// of its own (`unshare --mount`, as root), else one inside a user namespace (`--map-root-user`, for a user
/// that may create them). The real `/etc/hosts` is never written. Panics naming what was tried when neither
/// works here: the positive path is then not proven, and the suite must say so rather than skip it.
fn private_hosts_wrapper(hosts: &Path) -> Vec<String> {
    let hosts = hosts.to_str().unwrap().to_string();
    let script = "mount --bind \"$0\" /etc/hosts && exec \"$@\"".to_string();
    let candidates = [
        vec!["unshare", "--mount"],
        vec!["unshare", "--user", "--map-root-user", "--mount"],
    ];
    let mut failures = Vec::new();
    for candidate in candidates {
        let mut wrapper: Vec<String> = candidate.iter().map(|s| s.to_string()).collect();
        wrapper.extend(["sh".into(), "-c".into(), script.clone(), hosts.clone()]);
        let probe = Command::new(&wrapper[0])
            .args(&wrapper[1..])
            .args(["getent", "hosts", ADVERTISED])
            .output();
        match probe {
            Ok(output) if output.status.success() => return wrapper,
            Ok(output) => failures.push(format!(
                "{}: {} {}",
                candidate.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(e) => failures.push(format!("{}: {e}", candidate.join(" "))),
        }
    }
    panic!(
        "cannot give the worker a private /etc/hosts on this machine (needs root or unprivileged user \
         namespaces, and util-linux's unshare):\n{}",
        failures.join("\n")
    );
}

/// With the advertised name resolvable for the worker (a private `/etc/hosts` holding the `hostAliases`
/// entry, as the operator's pods get), the alias check passes and the mirror bootstraps by IP, reaches the
/// broker by its advertised name and copies every record intact. The test's own process and the real
/// `/etc/hosts` never see the name.
#[test]
fn with_the_alias_resolvable_the_mirror_copies_every_record() {
    let cluster = cluster();
    let name = "aliased";
    let seeded = seed(cluster, name);
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let real = std::fs::read_to_string("/etc/hosts").unwrap();
    std::fs::write(&hosts, format!("{real}\n127.0.0.1 {ADVERTISED}\n")).unwrap();
    let wrapper = private_hosts_wrapper(&hosts);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    eprintln!(
        "{name}: the worker runs through {:?}",
        &wrapper[..wrapper.len() - 3]
    );

    let document = document(
        dir.path(),
        name,
        Connection::new(&by_ip(cluster)).host_alias("127.0.0.1", &[ADVERTISED]),
        Connection::new(&cluster.internal),
    );
    let worker = Worker::spawn_through(&wrapper, &document, dir.path(), &[]);
    let run = timed(name, worker, Duration::from_secs(120));
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
        "the private hosts file stayed private"
    );
    assert_eq!(
        std::fs::read_to_string("/etc/hosts").unwrap(),
        real,
        "the real /etc/hosts is untouched"
    );
}
