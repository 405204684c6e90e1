//! The README's first command, `mirror-worker demo`, run as a user runs it (a short `--records` run, stdout a
//! pipe as in CI): it exits 0, its stdout holds the progress, the final table and the verification and no log
//! line, and the engine's log went to the file it names: one line per lifecycle event with the mirror, stream and
//! topic as fields, nothing per record.

use std::process::Command;

#[test]
fn the_demo_mirrors_verifies_and_prints_its_table_with_the_log_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let run = Command::new(env!("CARGO_BIN_EXE_mirror-worker"))
        .args(["demo", "--records", "3000", "--log-file"])
        .arg(&log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!("{stdout}");
    assert!(
        run.status.success(),
        "the demo failed ({}):\n{stdout}\n{stderr}",
        run.status
    );

    // The final table: a header and the topic's row, every seeded record arrived and nothing else.
    let header = stdout
        .lines()
        .find(|l| l.starts_with("TOPIC "))
        .unwrap_or_else(|| panic!("no final table:\n{stdout}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    let row: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("testtopic "))
        .unwrap_or_else(|| panic!("no row for testtopic:\n{stdout}"))
        .split_whitespace()
        .collect();
    let cell = |name: &str| row[columns.iter().position(|c| *c == name).unwrap()];
    assert_eq!(
        (
            cell("RECORDS"),
            cell("ARRIVED"),
            cell("LOST"),
            cell("ALTERED")
        ),
        ("3000", "3000/3000", "0", "0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the copy is complete and intact"),
        "{stdout}"
    );

    // Progress reads as state: "mirroring" only once partitions are assigned.
    let progress: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("mirrored "))
        .collect();
    assert!(!progress.is_empty(), "no progress line:\n{stdout}");
    for line in &progress {
        if line.contains("partitions 0/") {
            assert!(
                !line.ends_with("mirroring"),
                "mirroring with no partition assigned: {line}"
            );
        }
    }
    assert!(progress.last().unwrap().ends_with("mirroring"), "{stdout}");

    // No log line on the terminal; the log file has the engine's lifecycle.
    for out in [&*stdout, &*stderr] {
        assert!(
            !out.contains(" INFO ") && !out.contains(" WARN "),
            "a log line on the terminal:\n{out}"
        );
    }
    assert!(
        stdout.contains(&format!("the engine's log: {}", log.display())),
        "{stdout}"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    // Lifecycle events, one line per stream and topic, with the mirror, stream and topic as fields.
    for event in [
        "partitions assigned",
        "committed before leaving the group",
        "partitions revoked",
    ] {
        let lines: Vec<&str> = logged.lines().filter(|l| l.contains(event)).collect();
        assert!(
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|l| l.contains("mirror=demo") && l.contains("topic=\"testtopic\"")),
            "{event}: {lines:#?}"
        );
    }
    assert_eq!(
        logged
            .lines()
            .filter(|l| l.contains("stream stopped mirror=demo"))
            .count(),
        4,
        "one line per stream stopped:\n{logged}"
    );
    // Nothing per record: 3,000 records leave a log of tens of lines (librdkafka's own included).
    let lines = logged.lines().count();
    assert!(
        lines < 200,
        "{lines} log lines for 3,000 records:\n{logged}"
    );
}
