//! One test's corner of the control plane: a namespace of its own, a pod runner for it ([`PodRunner`]) and an
//! operator watching only it ([`Operator`]), with `kubectl` scoped to it and waits that show the operator's
//! log and the pods when they time out.

use std::time::{Duration, Instant};

use crate::document::MirrorDocument;
use crate::{ControlPlane, Operator, PodRunner};

/// The namespace label that makes the API server's PodSecurity admission enforce a Pod Security Standard.
pub const RESTRICTED_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The shared control plane with the `KafkaMirror` CRD installed (once per test binary).
pub fn control_plane() -> &'static ControlPlane {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let control_plane = ControlPlane::shared();
    READY.get_or_init(|| control_plane.install_crd());
    control_plane
}

/// A namespace of its own, where the restricted Pod Security Standard is enforced, with a pod runner and an
/// operator watching only it.
pub struct Scene {
    pub namespace: String,
    pub control_plane: &'static ControlPlane,
    pub runner: PodRunner,
    pub operator: Operator,
}

impl Scene {
    /// Namespace `namespace` with a pod runner and an operator (`--namespace namespace`, `operator_args`
    /// added) of its own.
    pub fn new(namespace: &str) -> Scene {
        Scene::with_operator_args(namespace, &[])
    }

    /// As [`Scene::new`], the operator started with `operator_args` added.
    pub fn with_operator_args(namespace: &str, operator_args: &[&str]) -> Scene {
        let control_plane = control_plane();
        control_plane.create_namespace(namespace);
        // The API server's PodSecurity admission refuses any pod of this namespace that breaks the restricted
        // standard, so a worker pod the operator made that broke it would never be created.
        control_plane.run_kubectl(&[
            "label",
            "namespace",
            namespace,
            &format!("{RESTRICTED_LABEL}=restricted"),
            "--overwrite",
        ]);
        let runner = PodRunner::start(control_plane, namespace);
        let mut args = vec!["--namespace", namespace];
        args.extend_from_slice(operator_args);
        let operator = Operator::start(control_plane, &format!("operator-{namespace}"), &args);
        Scene {
            namespace: namespace.to_string(),
            control_plane,
            runner,
            operator,
        }
    }

    /// `kubectl args -n <namespace>`, which must succeed; its standard output.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-n", &self.namespace]);
        self.control_plane.run_kubectl(&all)
    }

    /// `kubectl apply -f -` of `mirror` into the namespace; kubectl's answer.
    pub fn apply(&self, mirror: &MirrorDocument) -> String {
        self.control_plane.run_kubectl_with(
            &["apply", "-n", &self.namespace, "-f", "-"],
            &mirror.to_yaml(),
        )
    }

    /// `kubectl get args -n <namespace> -o json`.
    pub fn get(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-n", &self.namespace]);
        self.control_plane.get_json(&all)
    }

    /// Whether `kubectl get args` finds the object.
    pub fn exists(&self, args: &[&str]) -> bool {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-n", &self.namespace]);
        self.control_plane.try_get_json(&all).is_some()
    }

    /// Waits up to `timeout` for `condition`; fails showing the operator's log and the pods.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; the pods: {:#?}\nthe operator's log:\n{}",
                self.runner.pods(),
                self.operator.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `kubectl wait --for=condition=Ready kmirror/<name>`, as a user or a CI pipeline waits.
    pub fn wait_ready(&self, name: &str, timeout: Duration) {
        self.wait_condition(name, "Ready", timeout);
    }

    /// `kubectl wait --for=condition=<condition> kmirror/<name>` (`condition` may say the status wanted,
    /// e.g. `FailoverReady=False`); fails showing the mirror, the pods and the operator's log.
    pub fn wait_condition(&self, name: &str, condition: &str, timeout: Duration) {
        let run = self.control_plane.try_kubectl(&[
            "wait",
            &format!("--for=condition={condition}"),
            &format!("kmirror/{name}"),
            "-n",
            &self.namespace,
            &format!("--timeout={}s", timeout.as_secs()),
        ]);
        assert!(
            run.status.success(),
            "kubectl wait --for=condition={condition} kmirror/{name}: {}\nthe mirror: {:#}\nthe pods: {:#?}\nthe operator's log:\n{}",
            String::from_utf8_lossy(&run.stderr),
            self.get(&["kmirror", name]),
            self.runner.pods(),
            self.operator.log()
        );
    }

    /// `kubectl get kmirror <name>` (with `-o wide` when `wide`): each column's value by its title.
    pub fn columns(&self, name: &str, wide: bool) -> std::collections::BTreeMap<String, String> {
        let mut args = vec!["get", "kmirror", name];
        if wide {
            args.extend(["-o", "wide"]);
        }
        let table = self.kubectl(&args);
        eprintln!("{table}");
        let mut lines = table.lines();
        let header = lines.next().unwrap_or("").split_whitespace();
        let row = lines.next().unwrap_or("").split_whitespace();
        header
            .zip(row)
            .map(|(title, value)| (title.to_string(), value.to_string()))
            .collect()
    }
}
