//! A real Kubernetes API server for the tests: a fixture over `tests/control-plane/up.sh` (the same script a
//! person uses), which starts etcd, kube-apiserver and kube-controller-manager on free loopback ports from the
//! binaries `tests/control-plane/install.sh` built through the Go module proxy. The control plane stops on
//! drop; the script's watchdog stops it too when the test process dies without dropping it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::kafka::stdout_of;

/// A running control plane and the admin kubeconfig that reaches it.
pub struct ControlPlane {
    dir: PathBuf,
    /// The admin kubeconfig (`system:masters`) up.sh wrote.
    pub kubeconfig: PathBuf,
    /// Where install.sh put kube-apiserver, kube-controller-manager, etcd and kubectl.
    pub bin: PathBuf,
}

/// A script of `tests/control-plane/`.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("control-plane")
        .join(name)
}

/// The directory of the control plane's binaries, built on first use (install.sh is idempotent and cached).
pub fn control_plane_bin() -> PathBuf {
    let install = script("install.sh");
    let out = stdout_of(
        Command::new("bash").arg(&install),
        "tests/control-plane/install.sh",
    );
    PathBuf::from(
        out.lines()
            .last()
            .expect("install.sh prints its bin directory"),
    )
}

impl ControlPlane {
    /// One control plane for every test of this test binary: started on first use, stopped by the script's
    /// watchdog when the test process exits (statics are never dropped).
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("control-plane-{}", std::process::id()));
            ControlPlane::start_in(dir)
        })
    }

    fn start_in(dir: PathBuf) -> ControlPlane {
        let bin = control_plane_bin();
        let owner = std::process::id().to_string();
        let out = stdout_of(
            Command::new("bash")
                .arg(script("up.sh"))
                .arg("--dir")
                .arg(&dir)
                .args(["--owner-pid", &owner]),
            "tests/control-plane/up.sh",
        );
        let kubeconfig = PathBuf::from(
            out.lines()
                .last()
                .expect("up.sh prints the kubeconfig's path"),
        );
        assert!(
            kubeconfig.is_file(),
            "up.sh's last line is no kubeconfig: {out}"
        );
        ControlPlane {
            dir,
            kubeconfig,
            bin,
        }
    }

    /// `kubectl` of the same release as the API server, pointed at it.
    pub fn kubectl(&self) -> Command {
        let mut kubectl = Command::new(self.bin.join("kubectl"));
        kubectl.env("KUBECONFIG", &self.kubeconfig);
        kubectl
    }

    /// Runs `kubectl args` and returns how it ended, for tests that expect a refusal as well as success.
    pub fn try_kubectl(&self, args: &[&str]) -> Output {
        self.kubectl()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running kubectl {}: {e}", args.join(" ")))
    }

    /// Installs `crds/kafkamirror.yaml`, the CRD the chart ships, with server-side apply (the API server checks
    /// its schema and estimates its CEL rules' cost here), and waits until it is served.
    pub fn install_crd(&self) {
        let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/kafkamirror.yaml");
        let crd = crd.to_str().expect("a UTF-8 path");
        self.run_kubectl(&["apply", "--server-side", "-f", crd]);
        // Polled rather than `kubectl wait --for=condition=Established`: the API server first stores the CRD
        // with `status.conditions: null`, and kubectl wait fails on that ("accessor error: <nil> is of the
        // type <nil>") instead of waiting, which failed a CI run.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let crd = self.get_json(&["crd", "kafkamirrors.kafkamirror.io"]);
            let established = crd["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True");
            if established {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the CRD kafkamirrors.kafkamirror.io is not Established after 60 s: {:#}",
                crd["status"]
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates namespace `name` (applied, so it may exist already).
    pub fn create_namespace(&self, name: &str) {
        let namespace = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        });
        self.run_kubectl_with(&["apply", "-f", "-"], &namespace.to_string());
    }

    /// `kubectl get args -o json`, parsed; fails the test unless kubectl succeeds.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.run_kubectl(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kubectl {}: {e}: {out}", all.join(" ")))
    }

    /// `kubectl get args -o json`, parsed, or `None` when kubectl fails (the object does not exist).
    pub fn try_get_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let run = self.try_kubectl(&all);
        run.status
            .success()
            .then(|| serde_json::from_slice(&run.stdout).expect("kubectl prints JSON"))
    }

    /// Runs `kubectl args` with `input` on its standard input (`-f -`) and returns how it ended, for tests
    /// that expect a refusal as well as success.
    pub fn try_kubectl_with(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child
            .stdin
            .take()
            .expect("kubectl's standard input")
            .write_all(input.as_bytes())
            .expect("writing to kubectl");
        child.wait_with_output().expect("waiting for kubectl")
    }

    /// Runs `kubectl args` with `input` on its standard input (`-f -`), fails the test unless it succeeds, and
    /// returns its standard output.
    pub fn run_kubectl_with(&self, args: &[&str], input: &str) -> String {
        let output = self.try_kubectl_with(args, input);
        assert!(
            output.status.success(),
            "kubectl {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `kubectl args`, fails the test unless it succeeds, and returns its standard output.
    pub fn run_kubectl(&self, args: &[&str]) -> String {
        stdout_of(
            self.kubectl().args(args),
            &format!("kubectl {}", args.join(" ")),
        )
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("down.sh"))
            .arg("--dir")
            .arg(&self.dir)
            .output();
    }
}
