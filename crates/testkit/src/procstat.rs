//! What a process has used so far, read from Linux's `/proc/<pid>`: CPU time (user and system)
//! and resident memory. Benches divide the CPU by the work done (CPU per payment does not move
//! with the other load on a shared machine the way a rate does) and the soak samples memory.
//! Owns the parsing of those two files, nothing else.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// User plus system CPU time, all threads, since the process started.
    pub cpu: Duration,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
}

/// Why a reading failed: the process is gone, or this is not Linux.
#[derive(Debug, thiserror::Error)]
pub enum ProcStatError {
    /// `/proc/<pid>/…` could not be read.
    #[error("reading /proc/{pid}")]
    Read {
        /// The process.
        pid: u32,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// The file did not have the expected shape.
    #[error("unexpected /proc/{pid}/{file}")]
    Shape {
        /// The process.
        pid: u32,
        /// `stat` or `status`.
        file: &'static str,
    },
}

/// The kernel's clock ticks per second for `utime`/`stime`: 100 on every Linux configuration
/// that sets `USER_HZ` (all of them since 2.6; `getconf CLK_TCK`).
const TICKS_PER_SECOND: u64 = 100;

/// Reads process `pid` now.
pub fn usage(pid: u32) -> Result<Usage, ProcStatError> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|source| ProcStatError::Read { pid, source })
    };
    let cpu = cpu_ticks(&read("stat")?).ok_or(ProcStatError::Shape { pid, file: "stat" })?;
    let rss_kib = rss_kib(&read("status")?).ok_or(ProcStatError::Shape {
        pid,
        file: "status",
    })?;
    Ok(Usage {
        cpu: Duration::from_millis(cpu * 1000 / TICKS_PER_SECOND),
        rss_kib,
    })
}

/// `utime + stime` from `/proc/<pid>/stat`: fields 14 and 15, counted after the command name,
/// which is in parentheses and may itself hold spaces and parentheses.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: utime is the 12th from there, stime the 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` from `/proc/<pid>/status`, in KiB.
fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 3 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(267));
    }

    #[test]
    fn reads_the_resident_set() {
        let status = "Name:\tvault\nVmPeak:\t  90000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(rss_kib(status), Some(12345));
    }

    #[test]
    fn reads_this_process() {
        let now = usage(std::process::id()).unwrap();
        assert!(now.rss_kib > 0);
    }
}
