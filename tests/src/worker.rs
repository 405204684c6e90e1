//! The `mirror-worker` binary as a process of its own: started on a document ([`Launch`]), asked through its
//! HTTP endpoint, signalled, waited for, and read back ([`Finished`]) — the one harness of the test suites and
//! the benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kafka_mirror_crds::worker_pod;

use crate::http::{assigned_partitions_at, free_address};

/// The binary `name` of this build, next to the test executable's `deps/` folder (`cargo build --workspace
/// --bins` puts it there; tests/run-all.sh does).
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (tests/run-all.sh does)",
        path.display()
    );
    path
}

/// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`, ...) to process `pid`, as `kill` does; fails the test when
/// it cannot.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The `mirror-worker` binary of this build.
pub fn worker_binary() -> PathBuf {
    built_binary("mirror-worker")
}

/// How a worker is started: which binary, on which document, with which timings, log level and log file.
pub struct Launch {
    binary: PathBuf,
    wrapper: Vec<String>,
    document: PathBuf,
    secrets_dir: Option<PathBuf>,
    commit_interval: Option<String>,
    drain_timeout: Duration,
    env: Vec<(String, String)>,
    log_file: Option<PathBuf>,
    migration_end: Option<PathBuf>,
}

/// The worker's own `--drain-timeout` default, which a launch without [`Launch::drain_timeout`] runs with.
const WORKER_DRAIN_TIMEOUT: Duration = Duration::from_secs(worker_pod::DRAIN_TIMEOUT_SECONDS);

/// What a graceful stop may take beyond the drain before the kit kills the worker: the worker's own stop margin
/// (after which it exits by itself) and 5 s for its exit, as the operator's grace period counts.
const STOP_MARGIN: Duration = Duration::from_secs(worker_pod::STOP_MARGIN_SECONDS + 5);

impl Launch {
    /// What the tests on Apache Kafka run: commits every half second and at most 5 s of draining on SIGTERM,
    /// so a test sees a commit soon and a stop never waits long; logs at `info` unless [`Launch::env`] sets
    /// `RUST_LOG`.
    pub fn new(document: &Path) -> Launch {
        Launch::worker_defaults(document)
            .commit_interval("0.5")
            .drain_timeout(Duration::from_secs(5))
            .env(&[("RUST_LOG", "info")])
    }

    /// The worker's own defaults for commit interval, drain timeout and log level: what a pod runs, and what
    /// the benchmark measures.
    pub fn worker_defaults(document: &Path) -> Launch {
        Launch {
            binary: PathBuf::new(),
            wrapper: Vec::new(),
            document: document.to_path_buf(),
            secrets_dir: None,
            commit_interval: None,
            drain_timeout: WORKER_DRAIN_TIMEOUT,
            env: Vec::new(),
            log_file: None,
            migration_end: None,
        }
    }

    /// This binary instead of [`worker_binary`] (a suite of the worker's own crate knows it from Cargo:
    /// `env!("CARGO_BIN_EXE_mirror-worker")`).
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Launch {
        self.binary = binary.into();
        self
    }

    /// Started through `wrapper` (a program and its arguments, given the worker's command line after them, e.g.
    /// `unshare --mount ...`). The wrapper must `exec` that command line, so that the process the harness waits
    /// for and signals is the worker itself.
    pub fn through(mut self, wrapper: &[&str]) -> Launch {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Secrets as files under `dir` (`--secrets-dir`), laid out as the operator mounts them.
    pub fn secrets_dir(mut self, dir: &Path) -> Launch {
        self.secrets_dir = Some(dir.to_path_buf());
        self
    }

    /// `--commit-interval`, in seconds as the flag takes them.
    pub fn commit_interval(mut self, seconds: &str) -> Launch {
        self.commit_interval = Some(seconds.to_string());
        self
    }

    /// `--drain-timeout`; it also bounds how long a graceful stop is waited for (see [`Worker::finish`]).
    pub fn drain_timeout(mut self, timeout: Duration) -> Launch {
        self.drain_timeout = timeout;
        self
    }

    /// Environment variables added (a later value of a key wins).
    pub fn env(mut self, env: &[(&str, &str)]) -> Launch {
        self.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// `--migration-end`: the end offsets of a `mode: migrate` run, as the operator mounts them.
    pub fn migration_end(mut self, path: &Path) -> Launch {
        self.migration_end = Some(path.to_path_buf());
        self
    }

    /// The worker's stderr (its log) to `path`, which outlives the worker (the benchmark keeps it for a look
    /// at what the worker did); by default it goes to a temporary file beside its stdout.
    pub fn log_file(mut self, path: PathBuf) -> Launch {
        self.log_file = Some(path);
        self
    }

    /// Starts the worker, serving its HTTP endpoint on a free loopback port.
    pub fn spawn(self) -> Worker {
        let http = free_address();
        let logs = tempfile::Builder::new()
            .prefix("mirror-worker-")
            .tempdir()
            .expect("a directory for the worker's output");
        let stderr = self
            .log_file
            .clone()
            .unwrap_or_else(|| logs.path().join("stderr"));
        let binary = if self.binary.as_os_str().is_empty() {
            worker_binary()
        } else {
            self.binary
        };
        let mut command = match self.wrapper.split_first() {
            None => Command::new(&binary),
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(&binary);
                command
            }
        };
        command.arg("--config").arg(&self.document);
        if let Some(dir) = &self.secrets_dir {
            command.arg("--secrets-dir").arg(dir);
        }
        command.args(["--http-listen", &http.to_string()]);
        if let Some(path) = &self.migration_end {
            command.arg(worker_pod::MIGRATION_END_FLAG).arg(path);
        }
        if let Some(seconds) = &self.commit_interval {
            command.args(["--commit-interval", seconds]);
        }
        if self.drain_timeout != WORKER_DRAIN_TIMEOUT {
            command.args([
                "--drain-timeout",
                &self.drain_timeout.as_secs_f64().to_string(),
            ]);
        }
        // The worker reads only what the launch says: none of the `KMIRROR_*` settings (secrets directory,
        // HTTP address, log format, Secret values) of the environment the tests run in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with(worker_pod::ENV_PREFIX) {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        Worker::start(command, logs, stderr, http, self.drain_timeout)
    }
}

/// A running `mirror-worker`. Its stdout and stderr go to files, so a test can read what it said so far (and
/// show it when a wait times out) while it still runs. Killed when dropped.
pub struct Worker {
    child: Child,
    logs: tempfile::TempDir,
    stderr: PathBuf,
    /// How long a SIGTERM'd worker is waited for before SIGKILL: its drain timeout and a margin.
    stop_timeout: Duration,
    /// Where it serves /metrics, /healthz and /readyz.
    pub http: SocketAddr,
}

/// How a worker run ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// It exited before it was asked to stop.
    pub exited_by_itself: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both outputs, for searching and for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }

    /// The last non-empty line of its stderr: where the worker says why it stopped.
    pub fn last_line(&self) -> &str {
        self.stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or_default()
    }

    /// The exit code of a run the test expected to end by itself; fails the test when it had to be stopped.
    pub fn exit_code(&self) -> Option<i32> {
        assert!(
            self.exited_by_itself,
            "the worker was expected to stop by itself:\n{}",
            self.output()
        );
        self.status.code()
    }

    /// Asserts that a `mode: migrate` run (`what`, for the message) ended by itself with exit 0 and said so.
    pub fn assert_migration_complete(&self, what: &str) {
        assert!(
            self.exited_by_itself && self.status.success(),
            "{what}: the migration should complete by itself with exit 0 ({}):\n{}",
            self.status,
            self.output()
        );
        assert!(
            self.stdout.contains("migration complete"),
            "{what}: no \"migration complete\" in its output:\n{}",
            self.output()
        );
    }
}

impl Worker {
    /// Runs `command` (a `mirror-worker` command line serving its endpoint at `http`, drained within
    /// `drain_timeout` on SIGTERM), its stdout into `logs/stdout` and its stderr into `stderr`.
    pub fn start(
        mut command: Command,
        logs: tempfile::TempDir,
        stderr: PathBuf,
        http: SocketAddr,
        drain_timeout: Duration,
    ) -> Worker {
        let create = |path: &Path| {
            std::fs::File::create(path)
                .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
        };
        command
            .stdin(Stdio::null())
            .stdout(create(&logs.path().join("stdout")))
            .stderr(create(&stderr));
        let child = command.spawn().expect("starting mirror-worker");
        Worker {
            child,
            logs,
            stderr,
            stop_timeout: drain_timeout + STOP_MARGIN,
            http,
        }
    }

    /// Starts the worker on `document` as the tests on Apache Kafka do ([`Launch::new`]), Secrets as files
    /// under `secrets_dir`, with `env` added.
    pub fn spawn(document: &Path, secrets_dir: &Path, env: &[(&str, &str)]) -> Worker {
        Launch::new(document)
            .secrets_dir(secrets_dir)
            .env(env)
            .spawn()
    }

    /// As [`Worker::spawn`], started through `wrapper` (see [`Launch::through`]).
    pub fn spawn_through(
        wrapper: &[&str],
        document: &Path,
        secrets_dir: &Path,
        env: &[(&str, &str)],
    ) -> Worker {
        Launch::new(document)
            .through(wrapper)
            .secrets_dir(secrets_dir)
            .env(env)
            .spawn()
    }

    /// The process id (to signal it from elsewhere, or read its usage from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the worker wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default()
    }

    /// What the worker wrote to stderr (its log) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kafka_mirror_assigned_partitions` on its `/metrics` (-1 while its endpoint does not answer yet).
    pub fn assigned_partitions(&self) -> i64 {
        assigned_partitions_at(self.http)
    }

    /// One series of its `/metrics` (e.g. `kafka_mirror_records_mirrored_total{topic="t"}`), `None` while the
    /// endpoint does not answer or lacks it.
    pub fn metric(&self, series: &str) -> Option<f64> {
        crate::http::metric_at(self.http, series)
    }

    /// How the process exited, once it did.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// SIGKILL, as the OOM killer or a node failure would: no drain, no commit, no goodbye.
    pub fn kill_hard(mut self) -> Finished {
        let _ = self.child.kill();
        self.finished(false)
    }

    /// Polls `condition` every 100 ms until it holds; after `timeout` fails the test with `what`, whether the
    /// worker still runs, and its log (a worker that fell behind and one that exited look alike from Kafka).
    pub fn wait_for(&mut self, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            if Instant::now() >= deadline {
                let state = match self.child.try_wait() {
                    Ok(None) => "still running".to_string(),
                    Ok(Some(status)) => format!("exited with {status}"),
                    Err(e) => format!("in an unknown state ({e})"),
                };
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the worker is {state}; its log:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `timeout` for the worker to exit by itself, then sends SIGTERM (and SIGKILL if it is still
    /// there after its drain timeout and a margin: 20 s for [`Launch::new`]).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        // Asked at least once, also with a zero timeout: a worker that exited (and was reaped by
        // `exit_status`) has no process left to signal.
        let exited_by_itself = loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !exited_by_itself {
            self.signal("TERM");
            let deadline = Instant::now() + self.stop_timeout;
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
        self.finished(exited_by_itself)
    }

    /// SIGTERM now (a graceful stop, as Kubernetes stops a pod), then as [`Worker::finish`].
    pub fn stop(self) -> Finished {
        self.finish(Duration::ZERO)
    }

    fn finished(mut self, exited_by_itself: bool) -> Finished {
        let status = self.child.wait().expect("waiting for mirror-worker");
        Finished {
            status,
            exited_by_itself,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failed assertion must not leave a worker running against the next test's clusters.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
