//! Faults of the worker process and around it, on Apache Kafka: the worker killed with SIGKILL again and
//! again, the target cluster gone for 30 s, the group scaled from one worker to four and back. The worker runs
//! as a real process between two clusters; every record is counted on both sides by key and sequence number
//! (`samples::verify`), so each test prints what arrived, what was lost and what was duplicated, and fails on a
//! lost, altered or reordered record. Where at-least-once allows duplicates, the test measures how many each
//! fault caused and asserts the bound the README states: one commit interval's worth.
//!
//! One source and one target cluster serve the file (each test has its own topic and mirror name, so its own
//! consumer group); the outage test kills its target's broker, so it starts a target of its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use kafka_mirror_samples::{self as samples, ReadRecord, SampleRecord, Verification};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::group::{PartitionOwner, describe_group};
use kafka_mirror_tests::http::{assigned_partitions_at, metric};
use kafka_mirror_tests::kafka::KEEP_FOREVER;
use kafka_mirror_tests::kill_points::{SplitMix64, kill_seed};
use kafka_mirror_tests::positions::Progress;
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, Finished, KafkaCluster, Worker, client_config};

/// How often the workers of this file commit: the `--commit-interval 0.5` that [`Worker::spawn`] passes. The
/// unit of the duplicate bounds.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// How long the committed position may trail an acknowledgement beyond one commit interval: the stream hands
/// acknowledged offsets to librdkafka every 100 ms (`STORE_INTERVAL` in `stream.rs`, checked between polls that
/// wait up to 100 ms), the commit takes a round trip to the group coordinator, and on the shared 2-core machine
/// a thread may wait its turn for a few hundred milliseconds. Records the target acknowledged longer ago than
/// one interval + this slack must be committed; records still in flight at a kill were written to the target
/// within the same window.
const COMMIT_SLACK: Duration = Duration::from_millis(500);

/// The source and target cluster the tests of this file share.
fn clusters() -> &'static (KafkaCluster, KafkaCluster) {
    static CLUSTERS: OnceLock<(KafkaCluster, KafkaCluster)> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        std::thread::scope(|s| {
            let source = s.spawn(|| KafkaCluster::start(&ClusterOptions::default()));
            let target = KafkaCluster::start(&ClusterOptions::default());
            (source.join().expect("starting the source cluster"), target)
        })
    })
}

/// Reads the target back and checks it against what was seeded ([`kafka_mirror_tests::verify_copy`]).
fn read_and_verify(
    what: &str,
    target: &str,
    topic: &str,
    seeded: &[SampleRecord],
) -> (Verification, Vec<ReadRecord>) {
    let copy = samples::read_all(target, topic, seeded.len(), Duration::from_secs(120)).unwrap();
    (kafka_mirror_tests::verify_copy(what, seeded, &copy), copy)
}

/// A sample record's identity: its key and that key's sequence number (the `seq` header).
fn identity(record: &ReadRecord) -> Option<(String, u64)> {
    let key = String::from_utf8(record.key.clone()?).ok()?;
    let seq = record
        .headers
        .iter()
        .find(|(name, _)| name == "seq")
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())?;
    Some((key, seq))
}

/// Where each seeded record sits on the source: `(key, seq)` → `(partition, offset)`.
fn source_positions(
    source: &str,
    topic: &str,
    seeded: &[SampleRecord],
) -> HashMap<(String, u64), (i32, i64)> {
    let records = samples::read_all(source, topic, seeded.len(), Duration::from_secs(120)).unwrap();
    assert_eq!(
        records.len(),
        seeded.len(),
        "the source holds every seeded record once"
    );
    records
        .iter()
        .map(|r| {
            (
                identity(r).expect("a sample record"),
                (r.partition, r.offset),
            )
        })
        .collect()
}

/// Duplicates among the records of `copy` at target offsets in `[from[p], to[p])` of each partition `p`:
/// copies of a record that already sat at a lower offset.
fn duplicates_between(copy: &[ReadRecord], from: &[i64], to: &[i64]) -> usize {
    let mut sorted: Vec<&ReadRecord> = copy.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut seen = HashSet::new();
    sorted
        .into_iter()
        .filter(|r| {
            let first = seen.insert(identity(r));
            let p = r.partition as usize;
            !first && r.offset >= from[p] && r.offset < to[p]
        })
        .count()
}

/// Every offset commit a worker's log reports, from librdkafka's `debug: cgrp` lines ("OffsetCommit for 4
/// partition(s) in join-state steady: cgrp auto commit timer: returned: Success"), tallied by why it was sent
/// (the auto-commit timer, "unassigned partitions" when a revoke completes, "manual" for the engine's final
/// commit), the member's join state at the answer, and the broker's answer.
fn commit_outcomes<'a>(
    logs: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<(String, String, String), usize> {
    let mut tally = BTreeMap::new();
    for line in logs.into_iter().flat_map(str::lines) {
        let Some((_, rest)) = line.split_once("OffsetCommit for ") else {
            continue;
        };
        let Some((_, rest)) = rest.split_once(" in join-state ") else {
            continue;
        };
        let Some((join_state, rest)) = rest.split_once(": ") else {
            continue;
        };
        let Some((reason, returned)) = rest.rsplit_once(": returned: ") else {
            continue;
        };
        // The engine adds the stream (`stream=0`) after librdkafka's own text.
        let returned = returned.split(" stream=").next().unwrap_or_default().trim();
        let key = (
            reason.to_string(),
            join_state.to_string(),
            returned.to_string(),
        );
        *tally.entry(key).or_default() += 1;
    }
    tally
}

/// The lines of `log` that show a refused commit, for the report.
fn refused_commit_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            (l.contains("OffsetCommit for")
                && l.contains("returned:")
                && !l.contains("returned: Success")
                // A commit with nothing new to commit: not sent.
                && !l.contains("returned: Local: No offset stored"))
                || l.contains("committing source offsets failed")
                || l.contains("COMMITFAIL")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// SIGKILL, ten times
// ---------------------------------------------------------------------------------------------------------

/// One SIGKILL: when it came and the positions the clusters held right after it.
struct Kill {
    /// Time from the run owning every partition to the kill.
    after_assignment: Duration,
    at: Duration,
    produced: u64,
    /// High watermark of each target partition.
    on_target: Vec<i64>,
    /// The group's committed offset of each source partition.
    committed: Vec<i64>,
    /// Records the target received in the window before the kill that one commit may trail by: the last
    /// commit interval + slack, reaching back over a group join phase that overlaps it (see [`bound_window`]).
    written_in_window: i64,
    /// How far the window reaches back, and the join phase that stretched it, if one did.
    window: Duration,
    join_phase: Option<JoinPhase>,
    /// The killed run's account of its group membership and commits (join-state changes, assignments,
    /// revokes, commit answers), shown when a bound fails.
    group_log: Vec<String>,
}

/// The lines of a worker log about its group membership and commits.
fn group_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains("changed join state")
                || l.contains("partitions assigned")
                || l.contains("partitions revoked")
                || l.contains("OffsetCommit for")
        })
        .map(strip_ansi)
        .collect()
}

/// `line` without terminal colour codes (the worker's text log has them even in a file).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A stretch of time in which one stream's consumer was not in librdkafka's steady join state: joining the
/// group, waiting for the other members to rejoin, syncing, or serving the assignment. Its interval commits
/// are skipped then, and none could pass while its JoinGroup is pending (the coordinator serves one request
/// per connection at a time and answers the JoinGroup only once every member rejoined).
#[derive(Debug, Clone, Copy)]
struct JoinPhase {
    stream: u32,
    start: SystemTime,
    /// `None`: still joining when the worker was killed.
    end: Option<SystemTime>,
}

/// The join phases of every stream in a worker log with librdkafka's `debug: cgrp` lines ("Group ... changed
/// join state wait-join -> wait-sync" with the engine's `stream=N`).
fn join_phases(log: &str) -> Vec<JoinPhase> {
    let mut phases: Vec<JoinPhase> = Vec::new();
    let mut open: HashMap<u32, usize> = HashMap::new();
    for line in log.lines().map(strip_ansi) {
        let Some((_, change)) = line.split_once("changed join state ") else {
            continue;
        };
        let (Some(at), Some(stream)) = (
            line.split_whitespace().next().and_then(parse_timestamp),
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("stream="))
                .and_then(|n| n.parse().ok()),
        ) else {
            continue;
        };
        let Some((from, to)) = change.split_once(" -> ") else {
            continue;
        };
        let to = to.split_whitespace().next().unwrap_or_default();
        if to == "steady" {
            if let Some(i) = open.remove(&stream) {
                phases[i].end = Some(at);
            }
        } else if !open.contains_key(&stream) && (from == "steady" || from == "init") {
            open.insert(stream, phases.len());
            phases.push(JoinPhase {
                stream,
                start: at,
                end: None,
            });
        }
    }
    phases
}

/// `2026-12-02T04:56:12.015495Z` (the worker log's timestamps, UTC) as a time.
fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|n| n.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let (hours, minutes) = (
        time.next()?.parse::<i64>().ok()?,
        time.next()?.parse::<i64>().ok()?,
    );
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let whole = (days * 86_400 + hours * 3600 + minutes * 60) as f64 + seconds;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(whole))
}

/// The window before a kill at `killed_at` in which the records the run wrote may still be uncommitted: one
/// commit interval + slack, or, when a join phase of the run overlaps that, from one commit interval + slack
/// before the phase began (the last commit came before it, the next only after it). Returns the window's
/// length and the phase that stretched it.
fn bound_window(killed_at: SystemTime, phases: &[JoinPhase]) -> (Duration, Option<JoinPhase>) {
    let interval = COMMIT_INTERVAL + COMMIT_SLACK;
    let from = killed_at - interval;
    let stretching = phases
        .iter()
        .filter(|p| p.end.is_none_or(|end| end > from) && p.start < from)
        .min_by_key(|p| p.start)
        .copied();
    match stretching {
        Some(phase) => (
            killed_at.duration_since(phase.start).unwrap_or_default() + interval,
            Some(phase),
        ),
        None => (interval, None),
    }
}

/// What one kill cost, per the final copy (see [`kill_costs`]).
#[derive(Debug, Default, Clone, Copy)]
struct KillCost {
    /// Records on the target past the committed position at the kill: what the next owner reads again.
    excess: i64,
    /// The part this run wrote itself after its last commit: what the commit interval bounds.
    own_uncommitted: i64,
    /// The part an earlier run wrote that this run had not re-read yet when it was killed.
    carried: i64,
    /// Copies the next run wrote of records already on the target.
    duplicates_after: usize,
}

/// Works out each kill's cost from the final copy. A target record belongs to run `r` when its offset lies
/// between the target's high watermarks at kill `r - 1` and kill `r` (the kill ends the run, the next run
/// starts after the snapshot). Per source partition, `hi` is one past the highest source offset any run up to
/// the kill wrote, `reach` the same for this run alone; the excess `hi - committed` splits into what this run
/// wrote after its last commit (`reach - committed`) and what it had not re-read of earlier runs' writes.
/// Also returns the duplicates of the first run (no kill before it: they must be 0).
fn kill_costs(
    copy: &[ReadRecord],
    origin: &HashMap<(String, u64), (i32, i64)>,
    kills: &[Kill],
    partitions: usize,
) -> (Vec<KillCost>, usize) {
    let runs = kills.len() + 1;
    let mut reach = vec![vec![0i64; partitions]; runs];
    let mut duplicates = vec![0usize; runs];
    let mut sorted: Vec<&ReadRecord> = copy.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut seen = HashSet::new();
    for record in sorted {
        let id = identity(record).expect("a sample record on the target");
        let (source_partition, source_offset) = origin[&id];
        let run = kills
            .iter()
            .filter(|k| k.on_target[record.partition as usize] <= record.offset)
            .count();
        let r = &mut reach[run][source_partition as usize];
        *r = (*r).max(source_offset + 1);
        if !seen.insert(id) {
            duplicates[run] += 1;
        }
    }
    let mut hi = vec![0i64; partitions];
    let costs = kills
        .iter()
        .enumerate()
        .map(|(k, kill)| {
            let mut cost = KillCost {
                duplicates_after: duplicates[k + 1],
                ..KillCost::default()
            };
            for p in 0..partitions {
                hi[p] = hi[p].max(reach[k][p]);
                let committed = kill.committed[p];
                assert!(
                    committed <= hi[p],
                    "kill {k}: partition {p} committed {committed}, past the {} records it had on the target",
                    hi[p]
                );
                let reached = reach[k][p].max(committed);
                cost.own_uncommitted += reached - committed;
                cost.carried += hi[p] - reached;
                cost.excess += hi[p] - committed;
            }
            cost
        })
        .collect();
    (costs, duplicates[0])
}

/// Samples the target's record count every 50 ms while `condition` holds, as `(when, records)` pairs.
fn sample_target_while(
    progress: &Progress,
    samples: &mut Vec<(SystemTime, i64)>,
    mut condition: impl FnMut() -> bool,
) {
    while condition() {
        samples.push((SystemTime::now(), progress.on_target_total()));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sessions for the SIGKILL test. A killed member is only noticed after `session.timeout.ms`; with the
/// default 45 s, ten kills would add 7.5 minutes of waiting. 6 s is the broker's `group.min.session.timeout.ms`
/// default (the shortest it accepts); heartbeats every 2 s keep Kafka's rule of at most a third of the session.
/// A production mirror may run the same to fail over fast; the price is a member expelled whenever its
/// heartbeats stop for 6 s (a paused process, a network hiccup), and the rebalance that follows.
const SIGKILL_SESSION: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "2000"),
];

#[test]
fn sigkill_ten_times_during_200_000_records_loses_nothing_and_each_kill_costs_at_most_one_commit_interval()
 {
    const TOPIC: &str = "sigkill-orders";
    const NAME: &str = "sigkill";
    const PARTITIONS: i32 = 8;
    const KILLS: usize = 10;
    const RECORDS: u64 = 200_000;
    /// After a run owns every partition and the producer has passed the run's kill position, it is killed
    /// after a further uniformly random delay below this: from before the run's first commit to five commit
    /// intervals later. (A kill less than one commit interval + slack after the assignment is bounded by
    /// everything the run wrote, which is all such a kill can cost.)
    const KILL_DELAY_MS: u64 = 2500;
    let started = Instant::now();
    let (source, target) = clusters();
    source.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    target.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    let (s, t) = (source.plaintext.as_str(), target.plaintext.as_str());
    let dir = tempfile::tempdir().unwrap();
    // librdkafka's account of the group (join states, commit answers) in each run's log, for the report.
    let config: Vec<(&str, &str)> = SIGKILL_SESSION
        .iter()
        .copied()
        .chain([("debug", "cgrp")])
        .collect();
    let mirror = MirrorDocument::new(
        NAME,
        Connection::new(s).configs(&config),
        Connection::new(t),
    )
    .include(TOPIC)
    .num_streams(2);
    let document = mirror.write_in(dir.path());
    let env = [("RUST_LOG", "info,librdkafka=debug")];
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);
    let seed = kill_seed();
    eprintln!("SIGKILL points from seed {seed} (KMIRROR_FAULTS_SEED={seed} repeats them)");
    let mut random = SplitMix64(seed);
    // Where in the stream each kill comes: ten positions drawn uniformly over the 200,000 records.
    let mut positions: Vec<u64> = (0..KILLS).map(|_| random.below(RECORDS)).collect();
    positions.sort_unstable();
    let delays: Vec<u64> = (0..KILLS).map(|_| random.below(KILL_DELAY_MS)).collect();
    eprintln!("kill positions (records produced) {positions:?}, then delays (ms) {delays:?}");

    // About 60 to 90 s of production (a batch takes 100 to 250 ms to produce and flush here, plus the pause),
    // about as long as ten runs take (each first waits up to the 6 s session for the group to drop the killed
    // members), so most runs start while records still arrive.
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::batches(RECORDS / 1000, 1000, Duration::from_millis(200), 1000, 64),
    );
    let mut kills: Vec<Kill> = Vec::new();
    for round in 0..KILLS {
        let mut samples = vec![(SystemTime::now(), progress.on_target_total())];
        let mut worker = Worker::spawn(&document, dir.path(), &env);
        let http = worker.http;
        worker.wait_for(
            &format!("run {round} to own all {PARTITIONS} partitions"),
            Duration::from_secs(60),
            || assigned_partitions_at(http) == i64::from(PARTITIONS),
        );
        let assigned_at = Instant::now();
        sample_target_while(&progress, &mut samples, || {
            producer.produced() < positions[round] && !producer.is_finished()
        });
        let kill_at = Instant::now() + Duration::from_millis(delays[round]);
        sample_target_while(&progress, &mut samples, || Instant::now() < kill_at);
        let after_assignment = assigned_at.elapsed();
        let killed: Finished = worker.kill_hard();
        let (killed_at, killed_at_wall) = (Instant::now(), SystemTime::now());
        // Requests the process sent before it died are still served by the brokers: let them land.
        std::thread::sleep(Duration::from_millis(300));
        let on_target = progress.on_target();
        let (window, join_phase) = bound_window(killed_at_wall, &join_phases(&killed.stderr));
        let window_start = killed_at_wall - window;
        let before_window = samples
            .iter()
            .rev()
            .find(|(at, _)| *at <= window_start)
            .unwrap_or(&samples[0])
            .1;
        let kill = Kill {
            after_assignment,
            at: killed_at - started,
            produced: producer.produced(),
            written_in_window: on_target.iter().sum::<i64>() - before_window,
            window,
            join_phase,
            committed: progress.committed(),
            on_target,
            group_log: group_lines(&killed.stderr),
        };
        let refused = refused_commit_lines(&killed.stderr);
        let committed_before: i64 = kills.last().map_or(0, |k| k.committed.iter().sum());
        let committed_now: i64 = kill.committed.iter().sum();
        eprintln!(
            "kill {round} at {:.1} s, {:.2} s after the run owned every partition: {} produced, {} on the target, \
             {committed_now} committed ({}), {} written in the last {:.1} s{}{}",
            kill.at.as_secs_f64(),
            after_assignment.as_secs_f64(),
            kill.produced,
            kill.on_target.iter().sum::<i64>(),
            if committed_now > committed_before {
                format!("{} by this run", committed_now - committed_before)
            } else {
                "nothing new committed by this run".to_string()
            },
            kill.written_in_window,
            kill.window.as_secs_f64(),
            match kill.join_phase {
                Some(phase) => format!(
                    " (stream {} was in a group join phase from {:.2} s before the kill{})",
                    phase.stream,
                    killed_at_wall
                        .duration_since(phase.start)
                        .unwrap_or_default()
                        .as_secs_f64(),
                    match phase.end {
                        Some(end) => format!(
                            " to {:.2} s before it",
                            killed_at_wall
                                .duration_since(end)
                                .unwrap_or_default()
                                .as_secs_f64()
                        ),
                        None => " to the kill".to_string(),
                    }
                ),
                None => String::new(),
            },
            if refused.is_empty() {
                String::new()
            } else {
                format!("; refused commits: {refused:?}")
            }
        );
        kills.push(kill);
    }
    let seeded = producer.join();
    assert_eq!(seeded.len() as u64, RECORDS);

    let mut last = Worker::spawn(&document, dir.path(), &[]);
    let http = last.http;
    // Up and in the group before it is asked to finish (a SIGTERM before the handler is installed would kill
    // it, which is not what this test is about).
    last.wait_for(
        "the last run to own every partition",
        Duration::from_secs(60),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    last.wait_for(
        "the last run to commit all 200,000 records",
        Duration::from_secs(180),
        || progress.committed_total() >= RECORDS as i64,
    );
    let finished = last.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());

    let origin = source_positions(s, TOPIC, &seeded);
    let (v, copy) = read_and_verify("10 × SIGKILL during 200,000 records", t, TOPIC, &seeded);
    assert_eq!(
        copy.len() as i64,
        progress.on_target_total(),
        "the whole target was read"
    );
    let (costs, first_run_duplicates) = kill_costs(&copy, &origin, &kills, PARTITIONS as usize);
    eprintln!(
        "kill | after assignment | excess at kill (own + carried) | bound (written in window) | duplicates the next run wrote"
    );
    for (k, (kill, cost)) in kills.iter().zip(&costs).enumerate() {
        eprintln!(
            "{k:>4} | {:>14.2} s | {:>8} ({} + {}) | {:>8} | {:>8}",
            kill.after_assignment.as_secs_f64(),
            cost.excess,
            cost.own_uncommitted,
            cost.carried,
            kill.written_in_window,
            cost.duplicates_after
        );
    }
    let total_duplicates: usize =
        costs.iter().map(|c| c.duplicates_after).sum::<usize>() + first_run_duplicates;
    eprintln!(
        "duplicates per kill {:?} (sum {total_duplicates}, first run {first_run_duplicates}); {:.1} s",
        costs.iter().map(|c| c.duplicates_after).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(v.lost, 0);
    assert_eq!(
        total_duplicates, v.duplicated,
        "the per-run accounting finds the duplicates verify counts"
    );
    assert_eq!(
        first_run_duplicates, 0,
        "nothing is written twice before the first kill"
    );
    for (k, (kill, cost)) in kills.iter().zip(&costs).enumerate() {
        assert!(
            cost.own_uncommitted <= kill.written_in_window,
            "kill {k}: {} records written by the run were not committed at the kill, more than the {} the \
             target received in the last {:?} (one commit interval + slack{}): a commit is missing. The run's \
             group log:\n{}",
            cost.own_uncommitted,
            kill.written_in_window,
            kill.window,
            if kill.join_phase.is_some() {
                ", reaching back over a group join phase"
            } else {
                ""
            },
            kill.group_log.join("\n")
        );
        assert!(
            cost.duplicates_after as i64 <= cost.excess,
            "kill {k}: the next run wrote {} duplicates, more than the {} records past the committed position",
            cost.duplicates_after,
            cost.excess
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// The target unreachable
// ---------------------------------------------------------------------------------------------------------

#[test]
fn the_target_unreachable_for_30_seconds_is_reported_moves_no_offset_and_the_worker_resumes_by_itself()
 {
    const TOPIC: &str = "outage-orders";
    const NAME: &str = "outage";
    const PARTITIONS: i32 = 4;
    const OUTAGE: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let (source, _) = clusters();
    // Its own target: this test kills the target's only broker.
    let target = KafkaCluster::start(&ClusterOptions::default());
    source.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    target.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    let (s, t) = (source.plaintext.as_str(), target.plaintext.as_str());
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(NAME, Connection::new(s), Connection::new(t))
        .include(TOPIC)
        .num_streams(1);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);
    let get = |worker: &Worker, path: &str| {
        kafka_mirror_tests::http_get(worker.http, path).unwrap_or_default()
    };

    // About 40 s of production: records keep arriving on the source through the whole outage.
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::batches(60, 1000, Duration::from_millis(600), 1000, 64),
    );
    let mut worker = Worker::spawn(&document, dir.path(), &[]);
    worker.wait_for("records to flow", Duration::from_secs(60), || {
        progress.on_target_total() >= 3000
    });
    assert_eq!(
        get(&worker, "/readyz").0,
        200,
        "ready while the target answers"
    );

    target.kill_broker(1);
    let down_at = Instant::now();
    let http = worker.http;
    worker.wait_for(
        "/readyz to report the target unreachable",
        Duration::from_secs(25),
        || {
            let (status, body) = kafka_mirror_tests::http_get(http, "/readyz").unwrap_or_default();
            status == 503 && body.contains("target")
        },
    );
    let reported_after = down_at.elapsed();
    let (status, readyz) = get(&worker, "/readyz");
    let (_, metrics) = get(&worker, "/metrics");
    let unreachable = metric(
        &metrics,
        "kafka_mirror_errors_total{kind=\"target_unreachable\"}",
    );
    assert!(unreachable.is_some_and(|n| n >= 1.0), "{metrics}");
    // Offsets stored before the outage may still be committed in its first moments; after that, nothing.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down_at.elapsed()));
    let committed_while_down = progress.committed();
    while down_at.elapsed() < OUTAGE {
        assert!(
            worker.is_running(),
            "the worker stays alive while the target is down"
        );
        assert_eq!(
            get(&worker, "/healthz").0,
            200,
            "alive, so the pod is not restarted"
        );
        assert_eq!(
            get(&worker, "/readyz").0,
            503,
            "not ready while the target is down"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        progress.committed(),
        committed_while_down,
        "no source offset moves while the target cannot acknowledge"
    );
    target.start_broker(1);
    let up_at = Instant::now();
    worker.wait_for(
        "/readyz to answer 200 again",
        Duration::from_secs(60),
        || kafka_mirror_tests::http_get(http, "/readyz").is_ok_and(|(status, _)| status == 200),
    );
    let ready_after = up_at.elapsed();

    let seeded = producer.join();
    worker.wait_for(
        "the worker to commit every record after the outage",
        Duration::from_secs(120),
        || progress.committed_total() >= seeded.len() as i64,
    );
    let finished = worker.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());
    let (v, _) = read_and_verify("target down for 30 s", t, TOPIC, &seeded);
    eprintln!(
        "outage: /readyz said {status} {readyz:?} {:.1} s after the broker died, \
         kafka_mirror_errors_total{{kind=\"target_unreachable\"}} {unreachable:?}, committed stayed at {} \
         during it; ready again {:.1} s after the broker was started; {v}; {:.1} s",
        reported_after.as_secs_f64(),
        committed_while_down.iter().sum::<i64>(),
        ready_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(v.lost, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Scaling 1 → 4 → 1
// ---------------------------------------------------------------------------------------------------------

/// Waits until the group coordinator reports `owners` distinct members owning every one of `partitions`
/// partitions of `topic`, each exactly once; returns the owners.
fn wait_for_owners(
    source: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    owners: usize,
) -> Vec<PartitionOwner> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let described = describe_group(source, group);
        if let Some(rows) = &described {
            let rows: Vec<_> = rows.iter().filter(|r| r.topic == topic).cloned().collect();
            let mut partitions_seen: Vec<i32> = rows
                .iter()
                .filter(|r| r.consumer_id.is_some())
                .map(|r| r.partition)
                .collect();
            partitions_seen.sort_unstable();
            let members: HashSet<_> = rows.iter().filter_map(|r| r.consumer_id.clone()).collect();
            if partitions_seen == (0..partitions).collect::<Vec<_>>() && members.len() == owners {
                return rows;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the group never had {owners} members owning each of the {partitions} partitions once: {described:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn scaling_one_worker_to_four_and_back_to_one_mid_stream_loses_nothing_and_a_step_costs_at_most_one_commit_interval()
 {
    const TOPIC: &str = "scale-orders";
    const NAME: &str = "scale";
    const PARTITIONS: i32 = 8;
    let started = Instant::now();
    let (source, target) = clusters();
    source.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    target.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    let (s, t) = (source.plaintext.as_str(), target.plaintext.as_str());
    let dir = tempfile::tempdir().unwrap();
    // librdkafka's own account of every commit (`OffsetCommit ... returned: <error>`) in the worker logs: the
    // evidence for whether Apache Kafka refuses commits during a cooperative rebalance. Sessions stay at
    // librdkafka's defaults (45 s, heartbeat 3 s): workers leave the group on purpose here.
    let mirror = MirrorDocument::new(
        NAME,
        Connection::new(s).config("debug", "cgrp"),
        Connection::new(t),
    )
    .include(TOPIC)
    .num_streams(1);
    let document = mirror.write_in(dir.path());
    let env = [("RUST_LOG", "info,librdkafka=debug")];
    let group = mirror.group_id();
    let progress = Progress::new(s, t, &group, TOPIC, PARTITIONS);

    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::batches(80, 1000, Duration::from_millis(400), 1000, 64),
    );
    let mut first = Worker::spawn(&document, dir.path(), &env);
    let http = first.http;
    first.wait_for(
        "one worker to own all 8 partitions",
        Duration::from_secs(60),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    let (before_up, before_up_at) = (progress.on_target(), Instant::now());

    let more: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&document, dir.path(), &env))
        .collect();
    let with_four = wait_for_owners(s, &group, TOPIC, PARTITIONS, 4);
    // The coordinator's view and each worker's own (its assignment callbacks) agree within moments.
    let shares_now = || -> Vec<i64> {
        std::iter::once(&first)
            .chain(&more)
            .map(Worker::assigned_partitions)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shares = shares_now();
    while shares.iter().sum::<i64>() != i64::from(PARTITIONS) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        shares = shares_now();
    }
    assert_eq!(
        shares.iter().sum::<i64>(),
        i64::from(PARTITIONS),
        "every partition has one owner: {shares:?}"
    );
    assert!(
        shares.iter().all(|&n| n > 0),
        "each of the four workers owns a share: {shares:?}"
    );
    let (after_up, after_up_at) = (progress.on_target(), Instant::now());

    // Back to one: a scale-down stops the three pods at once.
    for worker in &more {
        worker.signal("TERM");
    }
    let mut logs: Vec<String> = Vec::new();
    for worker in more {
        let stopped = worker.finish(Duration::from_secs(60));
        assert!(
            stopped.exited_by_itself && stopped.status.code() == Some(0),
            "{}",
            stopped.output()
        );
        logs.push(stopped.stderr);
    }
    first.wait_for(
        "the first worker to own all 8 again",
        Duration::from_secs(60),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    wait_for_owners(s, &group, TOPIC, PARTITIONS, 1);
    let (after_down, after_down_at) = (progress.on_target(), Instant::now());

    let seeded = producer.join();
    first.wait_for(
        "the mirror to commit every record",
        Duration::from_secs(120),
        || progress.committed_total() >= seeded.len() as i64,
    );
    let stopped = first.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.output());
    logs.insert(0, stopped.stderr);

    let (v, copy) = read_and_verify("scaled 1 → 4 → 1 mid-stream", t, TOPIC, &seeded);
    let end = vec![i64::MAX; PARTITIONS as usize];
    let zero = vec![0; PARTITIONS as usize];
    let outcomes = commit_outcomes(logs.iter().map(String::as_str));
    let refused: Vec<&str> = logs.iter().flat_map(|l| refused_commit_lines(l)).collect();
    eprintln!("owners with four workers: {with_four:?}; assigned per worker {shares:?}");
    eprintln!("offset commits in the four workers' logs (reason, join state, answer: count):");
    for ((reason, join_state, answer), count) in &outcomes {
        eprintln!("  {reason} | {join_state} | {answer}: {count}");
    }
    eprintln!("refused commits: {refused:#?}");
    let revoke_commits: usize = outcomes
        .iter()
        .filter(|((reason, join_state, answer), _)| {
            reason == "unassigned partitions"
                && join_state.contains("incr-unassign")
                && answer == "Success"
        })
        .map(|(_, count)| count)
        .sum();
    let alone =
        duplicates_between(&copy, &zero, &before_up) + duplicates_between(&copy, &after_down, &end);
    eprintln!("one worker alone (before and after): {alone} duplicates");
    let steps = [
        ("1 → 4", &before_up, &after_up, after_up_at - before_up_at),
        ("4 → 1", &after_up, &after_down, after_down_at - after_up_at),
    ];
    let mut measured = Vec::new();
    for (step, from, to, took) in steps {
        let duplicates = duplicates_between(&copy, from, to);
        // One commit interval's worth at the rate the target received records during the step.
        let written: i64 = to.iter().sum::<i64>() - from.iter().sum::<i64>();
        let rate = written as f64 / took.as_secs_f64();
        let bound = (rate * (COMMIT_INTERVAL + COMMIT_SLACK).as_secs_f64()).ceil() as usize;
        eprintln!(
            "{step}: {duplicates} duplicates in {:.1} s; bound {bound} ({written} records at {rate:.0}/s × {:?})",
            took.as_secs_f64(),
            COMMIT_INTERVAL + COMMIT_SLACK
        );
        measured.push((step, duplicates, bound));
    }
    eprintln!("scaling took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(v.lost, 0);
    assert_eq!(alone, 0, "no duplicates while one worker runs alone");
    assert!(
        revoke_commits > 0,
        "the scale-up moved partitions with a cooperative revoke whose commit Kafka accepted: {outcomes:?}"
    );
    for (step, duplicates, bound) in measured {
        assert!(
            duplicates <= bound,
            "{step}: {duplicates} duplicates, more than one commit interval carries ({bound})"
        );
    }
}
