//! What a measured process cost: CPU seconds and peak resident memory from the kernel's own accounting
//! (`wait4`'s rusage), and the timings a role process reports about itself.

use std::process::Child;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// CPU time (user + system) and peak RSS of one exited process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

impl Usage {
    /// The cost of two processes that ran side by side (a pipeline): CPU adds up, and so does memory, since
    /// both peaks are held at the same time in a steady pipeline.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            cpu: self.cpu + other.cpu,
            peak_rss_kib: self.peak_rss_kib + other.peak_rss_kib,
        }
    }
}

/// Waits for `child` to exit and returns what the kernel accounted to it. Panics if it failed: a benchmark
/// figure from a process that did not finish its work would be a lie.
pub fn reap(child: Child, what: &str) -> Usage {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unreaped child; std's Child is not waited on afterwards.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 on {what} failed");
    let clean = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(clean, "{what} did not exit cleanly (wait status {status})");
    std::mem::forget(child);
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss as u64,
    }
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill has no memory effects; the pid is our unreaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// What a role process (consume alone, produce alone) reports on its last stdout line.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RoleReport {
    pub records: u64,
    pub bytes: u64,
    /// From the first record consumed or handed to the producer to the last one consumed or acknowledged.
    pub seconds: f64,
}

pub const REPORT_PREFIX: &str = "BENCH-REPORT ";

impl RoleReport {
    pub fn print(&self) {
        println!("{REPORT_PREFIX}{}", serde_json::to_string(self).unwrap());
    }

    pub fn parse(stdout: &str) -> RoleReport {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(REPORT_PREFIX))
            .unwrap_or_else(|| panic!("the role process printed no report:\n{stdout}"));
        serde_json::from_str(line).unwrap()
    }
}

/// CPU time and peak RSS of a process that is still running, from /proc (for a phase of a longer run).
pub fn so_far(pid: u32) -> Usage {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/<pid>/stat");
    // Fields after the command name (which may hold spaces) start at the state, field 3; utime and stime are
    // fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu_ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_rss_kib = kib_field(&status, "VmHWM").unwrap_or(0);
    Usage {
        cpu: Duration::from_secs_f64(cpu_ticks as f64 / ticks),
        peak_rss_kib,
    }
}

/// The resident set of `pid` now (`VmRSS` from /proc), or None when it has exited.
pub fn rss_now(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status.contains("State:\tZ") {
        return None;
    }
    kib_field(&status, "VmRSS")
}

/// The value of a `Name:   1234 kB` line of a /proc file (`status`, `meminfo`), in KiB.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
