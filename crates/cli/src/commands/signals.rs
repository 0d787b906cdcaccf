//! Termination signals for `tune`, `agent` and `run`: what SIGINT (Ctrl-C), SIGTERM and
//! SIGHUP do to the training processes of this process.
//!
//! The first of these signals raises the shutdown level to 2: no further run is claimed and
//! every training process gets SIGTERM on its whole process group, then SIGKILL once the grace
//! period has passed; each interrupted run ends `cancelled` with the reason in its `error`
//! ("agent received SIGTERM: …"). A second signal raises the level to 3: SIGKILL at once.
//! Whatever happens, the process does not exit before every run it started has been reported
//! to the server, so nothing it started is left behind and no run stays `running`; a server
//! that does not answer gets [`hyperdial_agent::supervise::SHUTDOWN_REPORT_TIME`] once a run's
//! process has ended, then the run's end is kept in its spill file for `hyperdial sync`.
//!
//! Why the first signal already stops the runs (instead of letting them finish): SIGTERM comes
//! from `kill`, systemd, `docker stop` or a batch scheduler's time limit, which all give a few
//! seconds before SIGKILL; and a training process lives in its own process group, so a
//! terminal's Ctrl-C never reaches it. Letting runs finish and starting no more is what
//! `hyperdial stop SWEEP` is for.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Set once no run can be in flight any more (`tune` serving its dashboard after the sweep):
/// a signal then only stops the process, and says so.
static RUNS_OVER: AtomicBool = AtomicBool::new(false);

/// The number of the first stop signal this process received while runs could be in flight
/// (0 before any): the exit status of an interrupted `tune` is 128 + it, as a shell reports a
/// process that signal ended.
static FIRST_SIGNAL: AtomicU8 = AtomicU8::new(0);

/// The first stop signal received while runs could still be in flight, as its number (2 for
/// SIGINT, 15 for SIGTERM, 1 for SIGHUP); `None` when there was none.
pub fn interrupted_by() -> Option<u8> {
    match FIRST_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// Say that this process starts no more runs and has none in flight, so the next signal's
/// message does not speak of stopping runs.
pub fn runs_over() {
    RUNS_OVER.store(true, Ordering::SeqCst);
}

/// A shutdown level that rises with every SIGINT, SIGTERM or SIGHUP: 2 on the first (terminate
/// the runs: SIGTERM, grace, SIGKILL), 3 on the next ones (kill them at once). `what` names the
/// process in the messages (`agent`, `tune`, `run`).
///
/// The reason of the first signal is recorded with
/// [`hyperdial_agent::supervise::set_shutdown_reason`], so the interrupted runs say why they
/// ended. If a handler cannot be installed (which only happens when the process is out of file
/// descriptors), that signal keeps its default action.
pub fn shutdown_levels(what: &'static str) -> watch::Receiver<u8> {
    let (tx, rx) = watch::channel(0u8);
    let mut streams = stop_signals();
    tokio::spawn(async move {
        let mut level = 0u8;
        loop {
            let name = next_signal(&mut streams).await;
            level = if level < 2 { 2 } else { 3 };
            if RUNS_OVER.load(Ordering::SeqCst) {
                eprintln!("\n{name}: stopping");
            } else if level == 2 {
                let number = match name {
                    "SIGINT" => 2,
                    "SIGTERM" => 15,
                    _ => 1,
                };
                let _ =
                    FIRST_SIGNAL.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
                hyperdial_agent::supervise::set_shutdown_reason(format!("{what} received {name}"));
                eprintln!(
                    "\n{name}: stopping the runs in flight (SIGTERM to their process groups, \
                     SIGKILL after the grace period); send it again to kill them at once"
                );
            } else {
                eprintln!("\n{name} again: killing the runs in flight");
            }
            if tx.send(level).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for the next of the signals and return its name.
async fn next_signal(streams: &mut [(tokio::signal::unix::Signal, &'static str)]) -> &'static str {
    if streams.is_empty() {
        return std::future::pending().await;
    }
    let polled = std::future::poll_fn(|cx| {
        for (stream, name) in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(*name);
            }
        }
        std::task::Poll::Pending
    });
    polled.await
}

/// The reaper every run of this binary starts under (see `hyperdial_agent::reaper`): this very
/// executable, as `/proc/self/exe` (Linux), which still names it after the file was replaced.
pub fn reaper() -> Option<std::path::PathBuf> {
    cfg!(target_os = "linux").then(|| std::path::PathBuf::from("/proc/self/exe"))
}

/// Handlers for SIGINT, SIGTERM and SIGHUP, each with its name; a signal whose handler cannot
/// be installed (only when the process is out of file descriptors) is left out with a warning
/// and keeps its default action.
fn stop_signals() -> Vec<(tokio::signal::unix::Signal, &'static str)> {
    let mut streams = Vec::new();
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ] {
        match signal(kind) {
            Ok(stream) => streams.push((stream, name)),
            Err(e) => eprintln!("warning: cannot handle {name}: {e}"),
        }
    }
    streams
}

/// Wait for the first SIGINT (Ctrl-C), SIGTERM or SIGHUP and return its name: how `ui` and a
/// `tune` that keeps its dashboard up are stopped. A signal whose handler cannot be installed
/// keeps its default action.
pub async fn until_signal() -> &'static str {
    let mut streams = stop_signals();
    next_signal(&mut streams).await
}
