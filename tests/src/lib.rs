//! Harness for tests that need real, separate processes: an independent Kafka-compatible broker (`nisshi`,
//! installed by `tests/run-all.sh`) and the `mirror-worker` binary.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `tests/run-all.sh` installs the broker when `NISSHI_BIN` is not set.
pub const NISSHI_VERSION: &str = "0.8.1";

/// The broker binary: `NISSHI_BIN`, else the run-all.sh cache. Panics with the install command when missing,
/// so a missing broker fails the suite instead of skipping it.
pub fn nisshi_binary() -> PathBuf {
    let path = std::env::var_os("NISSHI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(format!(
                ".cache/kafka-mirror/nisshi-{NISSHI_VERSION}/bin/nisshi"
            ))
        });
    assert!(
        path.is_file(),
        "the nisshi broker is not installed at {}: run `bash tests/run-all.sh`, which installs it",
        path.display()
    );
    path
}

/// The `mirror-worker` binary of this build (next to the test executable's `deps/` folder).
pub fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("mirror-worker");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p mirror-worker` first (tests/run-all.sh does)",
        path.display()
    );
    path
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One nisshi broker process with in-memory storage, killed on drop.
pub struct Broker {
    child: Child,
    pub bootstrap: String,
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(nisshi_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args([
                "--storage-engine",
                &format!("memory://{name}/"),
                "--cluster-id",
                name,
            ])
            .args(["--group-initial-rebalance-delay", "0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nisshi");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nisshi {name} did not listen on {addr} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Broker {
            child,
            bootstrap: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
