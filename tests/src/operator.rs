//! The `kafka-mirror-operator` binary as a process of its own, pointed at a [`ControlPlane`] through its admin
//! kubeconfig: started with `run`, asked through its HTTP endpoint, signalled, and read back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ControlPlane;
use crate::http::{free_address, http_get, metric_at};
use crate::worker::{built_binary, send_signal};

/// The `kafka-mirror-operator` binary of this build.
pub fn operator_binary() -> PathBuf {
    built_binary("kafka-mirror-operator")
}

/// A running operator. Its log goes to a file a test reads while it runs. Killed when dropped.
pub struct Operator {
    child: Child,
    log: tempfile::NamedTempFile,
    /// Where it serves /metrics, /healthz and /readyz.
    pub http: SocketAddr,
    /// Its identity in the Lease and in Events.
    pub identity: String,
}

impl Operator {
    /// `kafka-mirror-operator run` against `control_plane` as `identity`, measuring lag every 2 s unless `args`
    /// give `--lag-interval`, with `args` added (`--namespace`, `--leader-election`, ...).
    pub fn start(control_plane: &ControlPlane, identity: &str, args: &[&str]) -> Operator {
        let http = free_address();
        let log = tempfile::Builder::new()
            .prefix("operator-")
            .suffix(".log")
            .tempfile()
            .expect("a file for the operator's log");
        let mut command = Command::new(operator_binary());
        command.args(["run", "--http-listen", &http.to_string()]);
        if !args.contains(&"--lag-interval") {
            command.args(["--lag-interval", "2"]);
        }
        command
            .args(["--identity", identity])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &control_plane.kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("the operator's log"))
            .stderr(log.reopen().expect("the operator's log"));
        let child = command.spawn().expect("starting kafka-mirror-operator");
        let mut operator = Operator {
            child,
            log,
            http,
            identity: identity.to_string(),
        };
        operator.wait_for("its /healthz", Duration::from_secs(30), |o| {
            http_get(o.http, "/healthz").is_ok_and(|(status, _)| status == 200)
        });
        operator
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// A sample of its `/metrics` by series name (`kafka_mirror_operator_reconciliations_total`, ...); none
    /// while it does not answer.
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric_at(self.http, series)
    }

    /// Reconciles started so far.
    pub fn reconciliations(&self) -> f64 {
        self.metric("kafka_mirror_operator_reconciliations_total")
            .unwrap_or(0.0)
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// How it exited, when it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for `condition`; fails the test naming `what` and showing the operator's log.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Operator) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !condition(self) {
            if let Some(status) = self.exit_status() {
                panic!(
                    "waiting for {what}: the operator {} exited with {status}; its log:\n{}",
                    self.identity,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; the operator {}'s log:\n{}",
                self.identity,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn stop(mut self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator {} did not exit within {timeout:?} of SIGTERM; its log:\n{}",
                self.identity,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
