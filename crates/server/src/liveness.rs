//! Whether an agent on this machine is gone, known for certain (Linux).
//!
//! Agents register with a process key (`hyperdial_agent::identity`):
//! `linux:BOOT_ID:PID_NAMESPACE:PID:START_TIME`. When the server runs under the same boot and
//! in the same pid namespace, `/proc` tells whether that process still exists (same pid, same
//! start time); [`agent_gone`] says so, and the janitor then marks the agent's runs `crashed`
//! at once (a `tune` killed with SIGKILL and started again finds its old runs crashed and
//! retried, instead of idling a minute). In every other case (another machine or container, a
//! key missing or unreadable, not Linux) the answer is "not known", and only the silence limit
//! applies.

/// Whether the process named by `key` is known to be gone: its boot id and pid namespace are
/// this server's, and `/proc` has no process with its pid and start time.
pub fn agent_gone(key: &str) -> bool {
    let mut parts = key.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let Some(ours) = key_of(std::process::id()) else {
        return false;
    };
    // Our own key with its pid and start time cut off: boot id and namespace.
    let mut own = ours.rsplitn(3, ':');
    let (Some(_), Some(_), Some(own_prefix)) = (own.next(), own.next(), own.next()) else {
        return false;
    };
    if prefix != own_prefix {
        return false;
    }
    match key_of(pid) {
        None => true,
        Some(now) => !now.ends_with(&format!(":{pid}:{start}")),
    }
}

/// The process key of `pid` as this process sees it (the format of
/// `hyperdial_agent::identity::process_key_of`), or `None`.
fn key_of(pid: u32) -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!(
        "linux:{}:{}:{pid}:{start}",
        boot.trim(),
        namespace.to_string_lossy()
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_gone_and_a_dead_one_is() {
        let own = key_of(std::process::id()).unwrap();
        assert!(!agent_gone(&own));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let key = key_of(child.id()).unwrap();
        assert!(!agent_gone(&key));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(agent_gone(&key));
        // The same pid with another start time is another process: gone.
        let reused = format!("{}:1", own.rsplit_once(':').unwrap().0);
        assert!(agent_gone(&reused));
        // Another machine or namespace, or no key format at all: not known, so not gone.
        assert!(!agent_gone("linux:other-boot:pid:[1]:1:1"));
        assert!(!agent_gone("garbage"));
    }
}
