//! The worker binary runs on jemalloc with the options `kafka_mirror_runtime::allocator::OPTIONS` compiles in
//! (its peak RSS in BENCHMARKS.md depends on them): jemalloc prints the options in effect when asked for its
//! statistics at exit, and complains on stderr about any option it does not know.

use std::process::Command;

#[test]
fn the_worker_runs_on_jemalloc_with_its_compiled_in_options() {
    let run = Command::new(env!("CARGO_BIN_EXE_mirror-worker"))
        .arg("--version")
        // Added to the compiled-in options, not replacing them: jemalloc reads both, the environment last.
        .env("MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let statistics = format!("{stdout}{stderr}");
    assert!(
        !statistics.contains("<jemalloc>: "),
        "jemalloc refused an option:\n{statistics}"
    );
    for option in [
        "opt.narenas: 1\n",
        "opt.dirty_decay_ms: 1000 ",
        "opt.muzzy_decay_ms: 0 ",
    ] {
        assert!(
            statistics.contains(option),
            "{option:?} not in jemalloc's statistics:\n{statistics}"
        );
    }
}
