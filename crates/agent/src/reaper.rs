//! The run reaper (Linux): a tiny process between the agent and the training command, so that
//! *every* process of a run dies with its agent, not only the one the agent started.
//!
//! A parent-death signal reaches only the direct child of the dying process. A training script
//! that starts workers of its own (data loaders, `torchrun` ranks, a `sleep &`) would leave
//! them running when its agent is SIGKILLed. So when [`SuperviseOptions::reaper`] names an
//! executable that calls [`main`] for the argument [`ARG`] (the `hyperdial` binary does), the
//! supervisor starts `EXE __hyperdial-reaper AGENT_PID -- ARGV...` instead of `ARGV...`:
//!
//! - The reaper leads the run's process group and runs the training command as its child, in
//!   that group, with the same standard streams, directory and environment.
//! - It is a child subreaper: orphaned workers of the run are re-parented to it and reaped.
//! - Its own parent-death signal is SIGUSR1. When the agent dies (for any reason, SIGKILL
//!   included) the reaper sends SIGTERM to its whole process group, waits until every process
//!   of the run has ended or [`AGENT_GONE_GRACE`] has passed, then SIGKILLs the group, itself
//!   included. The grace lets a script that reports through hyperdial's Python client send
//!   its last points straight to the server (its SIGTERM handler flushes them), instead of
//!   losing the ones logged since its last send; nothing outlives it. The training command
//!   also gets SIGKILL as its own parent-death signal, should the reaper be killed.
//! - SIGTERM, SIGINT and SIGHUP sent to the group reach the training command directly; the
//!   reaper ignores them (it does not forward them, which would deliver them twice).
//! - It exits as the command did: the same exit code, or killed by the same signal, so the
//!   supervisor reports the run exactly as without it. A command that cannot be started exits
//!   127 after saying why on standard error.
//!
//! It is plain `libc` and blocking: no threads, no runtime, so signals are taken synchronously
//! with `sigwaitinfo`.
//!
//! [`SuperviseOptions::reaper`]: crate::SuperviseOptions::reaper

use std::ffi::OsString;

/// The first argument that makes the `hyperdial` binary run [`main`].
pub const ARG: &str = "__hyperdial-reaper";

/// How long the processes of a run whose agent died have, after SIGTERM, before SIGKILL.
pub const AGENT_GONE_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The reaper's argv for running `argv` under an agent of process id `agent_pid`.
pub fn wrap(exe: &std::path::Path, agent_pid: u32, argv: &[String]) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![
        exe.as_os_str().to_owned(),
        ARG.into(),
        agent_pid.to_string().into(),
        "--".into(),
    ];
    out.extend(argv.iter().map(OsString::from));
    out
}

/// Run as the reaper: `args` are the arguments after [`ARG`] (`AGENT_PID -- ARGV...`).
/// Returns the exit code when the command exited normally; does not return when it was killed
/// by a signal (the reaper then dies of the same signal).
#[cfg(target_os = "linux")]
pub fn main(args: &[OsString]) -> i32 {
    use std::os::unix::process::{CommandExt, ExitStatusExt};

    let (agent, argv) = match args {
        [pid, dashes, argv @ ..] if dashes == "--" && !argv.is_empty() => {
            match pid.to_str().and_then(|p| p.parse::<libc::pid_t>().ok()) {
                Some(pid) => (pid, argv),
                None => return usage(),
            }
        }
        _ => return usage(),
    };
    // SAFETY: plain libc calls on valid, initialized arguments; this process is
    // single-threaded here, so the signal mask applies to everything.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGUSR1,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGUSR1 as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != agent {
            kill_group();
        }
    }

    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => {
            let text = err.to_string();
            let text = match text.rfind(" (os error ") {
                Some(i) => &text[..i],
                None => &text,
            };
            eprintln!(
                "[hyperdial agent] cannot start `{}`: {text}",
                argv[0].to_string_lossy()
            );
            return 127;
        }
    };
    let main_pid = child.id() as libc::pid_t;
    // The child is reaped below with waitpid; `Child` is not waited on (dropping it is fine).
    drop(child);

    loop {
        // SAFETY: `set` and `info` are valid for the call.
        let sig = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [
                libc::SIGCHLD,
                libc::SIGUSR1,
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGHUP,
            ] {
                libc::sigaddset(&mut set, sig);
            }
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        match sig {
            libc::SIGUSR1 => end_group(),
            libc::SIGCHLD => loop {
                let mut status = 0;
                // SAFETY: `status` is a valid out-pointer.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == main_pid {
                    let status = std::process::ExitStatus::from_raw(status);
                    if let Some(code) = status.code() {
                        return code;
                    }
                    if let Some(sig) = status.signal() {
                        die_of(sig);
                    }
                    return 1;
                }
            },
            // SIGTERM, SIGINT, SIGHUP: the command got them too; EINTR: wait again.
            _ => {}
        }
    }
}

/// Not Linux: no reaper; run the command as is (the supervisor does not use the reaper there).
#[cfg(not(target_os = "linux"))]
pub fn main(_args: &[OsString]) -> i32 {
    usage()
}

fn usage() -> i32 {
    eprintln!(
        "usage: hyperdial {ARG} AGENT_PID -- COMMAND [ARGS...] (started by the agent, not by hand)"
    );
    2
}

/// The agent is gone: SIGTERM this process's group, reap its processes until none is left or
/// [`AGENT_GONE_GRACE`] has passed, then SIGKILL the group, this process included.
#[cfg(target_os = "linux")]
fn end_group() -> ! {
    let deadline = std::time::Instant::now() + AGENT_GONE_GRACE;
    // SAFETY: killpg(0) signals the caller's own group (this process has SIGTERM blocked, so
    // it is not ended by it); waitpid and sigtimedwait get valid pointers.
    unsafe {
        libc::killpg(0, libc::SIGTERM);
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
            if pid > 0 {
                continue;
            }
            if pid < 0 {
                // ECHILD: every process of the run has ended.
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let wait = libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &wait);
        }
    }
    kill_group()
}

/// SIGKILL this process's group, this process included.
#[cfg(target_os = "linux")]
fn kill_group() -> ! {
    // SAFETY: killpg(0) signals the caller's own process group, which this process leads.
    unsafe {
        libc::killpg(0, libc::SIGKILL);
        libc::_exit(137)
    }
}

/// End this process by signal `sig`, as the command ended.
#[cfg(target_os = "linux")]
fn die_of(sig: i32) -> ! {
    // SAFETY: resetting a disposition, unblocking and raising a signal in this single-threaded
    // process; `_exit` if the signal does not end it.
    unsafe {
        // No core file of the reaper: the command's own was written already, if any.
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        libc::_exit(128 + sig)
    }
}
