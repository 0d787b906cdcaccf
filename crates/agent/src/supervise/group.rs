//! Process groups: signalling, killing and reaping the training process's group, and the
//! Linux guarantees that tie it to its agent (parent-death signal, child subreaper).

use super::*;

/// Send `sig` to process group `pgid`. Refuses the groups 0 and 1 (the caller's own group and
/// "every process").
pub(super) fn signal_group(pgid: i32, sig: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process group 0 or 1",
        ));
    }
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether any process (zombies included) is still in group `pgid`.
pub(super) fn group_exists(pgid: i32) -> bool {
    match signal_group(pgid, 0) {
        Ok(()) => true,
        Err(err) => err.raw_os_error() != Some(libc::ESRCH),
    }
}

/// Reap every exited child of this process that belongs to group `pgid` (orphans re-parented
/// to us as subreaper). The group's leader has been reaped by tokio already.
pub(super) fn reap_group(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let rc = unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            break;
        }
    }
}

/// SIGKILL what is left of group `pgid` and wait until it is gone; `false` if it is still
/// there after [`GROUP_GONE_TIMEOUT`].
pub(super) async fn kill_group(pgid: i32) -> bool {
    if pgid <= 1 {
        return true;
    }
    let _ = signal_group(pgid, libc::SIGKILL);
    let deadline = Instant::now() + GROUP_GONE_TIMEOUT;
    loop {
        reap_group(pgid);
        if !group_exists(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills the process group if [`supervise()`] is dropped before the process ended.
pub(super) struct GroupGuard {
    pub(super) pgid: i32,
    pub(super) armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = signal_group(self.pgid, libc::SIGKILL);
        }
    }
}

/// Arm the parent-death signal (SIGKILL) of the process `cmd` starts (Linux; a no-op elsewhere).
/// If this process is already gone when the child arms it, the child exits at once.
pub(super) fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let arm = move || -> io::Result<()> {
            // SAFETY: PR_SET_PDEATHSIG takes one integer argument; the rest are ignored.
            // prctl, getppid and _exit are async-signal-safe, as required between fork and exec.
            unsafe {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe calls and allocates nothing.
        unsafe {
            cmd.pre_exec(arm);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Make this process the reaper of its orphaned descendants (Linux), once.
pub(super) fn ensure_subreaper() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument; the rest are ignored.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_SET_CHILD_SUBREAPER,
                    1 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if rc != 0 {
                tracing::debug!(
                    "could not become a child subreaper: {}",
                    io::Error::last_os_error()
                );
            }
        });
    }
}
