//! # hyperdial-procid
//!
//! Who a process is, in a form another process on the same machine can check (Linux).
//!
//! An agent registers with its server under a *process key*:
//! `linux:BOOT_ID:PID_NAMESPACE:PID:START_TIME` ([`process_key_of`]). A server that runs under
//! the same boot and in the same pid namespace (same boot id, same namespace inode) can tell
//! for certain whether that very process still exists ([`gone`]): `/proc/PID/stat` must exist
//! with the same start time, so a reused pid does not pass for the agent. The server then marks
//! a dead agent's runs `crashed` at once instead of waiting out its silence limit. On another
//! machine, in another container, or off Linux, the key does not match and the answer is
//! "not known", never "gone".
//!
//! The agent and the server share this crate so both build and read the key the same way.

/// This process's key (see the crate docs), or `None` off Linux or without `/proc`.
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

/// `(boot id and namespace, pid, start time)` of a key; the first part may hold colons.
fn split(key: &str) -> Option<(&str, &str, &str)> {
    let mut parts = key.rsplitn(3, ':');
    let start = parts.next()?;
    let pid = parts.next()?;
    Some((parts.next()?, pid, start))
}

/// Whether the process named by `key` is known to be gone: its boot id and pid namespace are
/// this process's, and no process has its pid with its start time. `false` whenever that
/// cannot be known (another machine or namespace, a key of another form, not Linux).
pub fn gone(key: &str) -> bool {
    let Some((prefix, pid, start)) = split(key) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let Some(ours) = process_key() else {
        return false;
    };
    if split(&ours).map(|(own, _, _)| own) != Some(prefix) {
        return false;
    }
    match process_key_of(pid) {
        None => true,
        Some(now) => split(&now).map(|(_, _, s)| s) != Some(start),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn own_key_names_this_process() {
        let key = process_key().unwrap();
        assert!(key.starts_with("linux:"), "{key}");
        assert!(key.contains(&format!(":{}:", std::process::id())), "{key}");
        assert_eq!(process_key(), Some(key.clone()));
        assert!(!gone(&key));
    }

    #[test]
    fn a_dead_process_is_gone_and_a_foreign_key_is_not_known() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let key = process_key_of(child.id()).unwrap();
        assert!(!gone(&key));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(process_key_of(child.id()), None);
        assert!(gone(&key));
        // The same pid with another start time is another process: gone.
        let own = process_key().unwrap();
        let reused = format!("{}:1", own.rsplit_once(':').unwrap().0);
        assert!(gone(&reused));
        // Another machine or namespace, or no key at all: not known, so not gone.
        assert!(!gone("linux:other-boot:pid:[1]:1:1"));
        assert!(!gone("garbage"));
    }
}
