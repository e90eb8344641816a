//! Process facts and signals every tool of the system shares (embed-server's benchmark,
//! batch-client and its workers, the tests): the one peak-RSS reader and a safe signal
//! helper. They live here because embed-api is the one crate all of those depend on.

use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Peak resident memory (VmHWM) of process `pid` in KiB, from `/proc/<pid>/status` (Linux;
/// `None` elsewhere or when the process is gone).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory (VmRSS) of process `pid` in KiB, now.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident memory of this process in KiB.
pub fn own_peak_rss_kib() -> Option<u64> {
    peak_rss_kib(std::process::id())
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    nix::sys::signal::kill(Pid::from_raw(pid), signal).map_err(std::io::Error::from)
}

/// Asks a child to stop (SIGTERM) and waits up to `grace` for it; then SIGKILL. Returns the
/// exit status when the child could be reaped.
pub fn terminate(
    child: &mut std::process::Child,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = signal(child.id(), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_of_this_process_is_known() {
        assert!(own_peak_rss_kib().is_some_and(|kb| kb > 0));
        assert_eq!(peak_rss_kib(u32::MAX), None);
    }

    #[test]
    fn terminate_stops_a_child_with_sigterm() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let status = terminate(&mut child, Duration::from_secs(5)).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15));
    }
}
