//! Who this agent process is, in a form its server can check (Linux).
//!
//! An agent registers with its host name and pid, and on Linux also with a *process key*:
//! `linux:BOOT_ID:PID_NAMESPACE:PID:START_TIME`. A server that runs on the same machine and in
//! the same pid namespace (same boot id, same namespace inode) can tell for certain whether
//! that very process still exists: `/proc/PID/stat` must exist with the same start time (so a
//! reused pid does not pass for the agent). When the agent is gone, the server marks its runs
//! `crashed` at once instead of waiting out the silence limit; on another machine, in another
//! container, or off Linux the key simply does not match and the silence limit applies.
//!
//! The server's side of the check is `hyperdial_server`'s `liveness` module; both build the
//! key the same way (`process_key_of`).

/// This process's key (see the module docs), or `None` off Linux or when `/proc` is missing.
pub fn process_key() -> Option<String> {
    process_key_of(std::process::id())
}

/// The key of process `pid` as this process sees it, or `None` if it cannot be read (no such
/// process, no `/proc`, not Linux).
pub fn process_key_of(pid: u32) -> Option<String> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (start time, in clock ticks since boot) comes after the command name, which is
    // in parentheses and may itself hold spaces or parentheses: count from the last `)`.
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
    fn own_key_names_this_process_and_a_dead_pid_has_none() {
        let key = process_key().unwrap();
        assert!(key.starts_with("linux:"), "{key}");
        assert!(key.contains(&format!(":{}:", std::process::id())), "{key}");
        assert_eq!(process_key(), Some(key));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process_key_of(pid), None);
    }
}
