//! A worker's HTTP endpoint from the outside: a free loopback address to serve it on, a plain `GET`, and a
//! Prometheus sample read by name from `/metrics`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A loopback address with a port nothing listens on, for a child process's endpoint or a test's own broker.
pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    free_address().port()
}

/// `GET path` on a worker's (or any plain HTTP/1.0) endpoint at `addr`: the status code and the body. An error
/// while nothing listens there yet, or when the connection breaks; a server that stops answering is given up on
/// after 10 s. What the tests and the benchmark use to read `/metrics`, `/healthz` and `/readyz`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_string()))
}

/// The value of the sample `series` (name with labels, as `/metrics` prints it) in Prometheus text.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// The sample `series` of the `/metrics` served at `http`; `None` while the endpoint does not answer or lacks
/// it.
pub fn metric_at(http: SocketAddr, series: &str) -> Option<f64> {
    http_get(http, "/metrics")
        .ok()
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| metric(&body, series))
}

/// `kafka_mirror_assigned_partitions` of the worker serving at `http` (-1 while its endpoint does not answer
/// yet). By address, so a condition of `Worker::wait_for` can ask the worker it waits on.
pub fn assigned_partitions_at(http: SocketAddr) -> i64 {
    metric_at(http, "kafka_mirror_assigned_partitions").map_or(-1, |v| v as i64)
}
