//! Printing commands whose reader has gone (`hyperdial runs | head -1`) end quietly, with the
//! real binary: no panic, no "Broken pipe" message, status 0 or SIGPIPE as other Unix tools;
//! `tune` goes on with its sweep and drops its output.

#![cfg(unix)]

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use common::*;

const GRID: &str = "program: train.py
method: grid
name: pipes
metric: {name: loss, goal: minimize}
parameters:
  a: {values: [1.0, 2.0, 3.0]}
  steps: {value: 2}
";

/// The write end of a pipe whose read end is already closed: every write to it fails with
/// EPIPE, whatever the timing.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

#[test]
fn read_commands_end_quietly_when_the_reader_closes_the_pipe() {
    use std::os::unix::process::ExitStatusExt;
    let s = Scratch::new("pipes");
    s.write("sweep.yaml", GRID);
    // `tune` supervises runs: a closed stdout drops its output, the sweep goes on to its end.
    let out = s
        .cmd(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"])
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tune ended with {:?}: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let runs = json_of(&s, &["runs", "--json"]);
    let finished = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "finished")
        .count();
    assert_eq!(finished, 3, "{runs:#}");
    let sweep = json_of(&s, &["sweeps", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for args in [
        vec!["runs"],
        vec!["runs", &sweep],
        vec!["sweeps"],
        vec!["best", &sweep],
        vec!["export", &sweep, "--format", "csv"],
        vec!["validate", "sweep.yaml"],
    ] {
        let out = s
            .cmd(&args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "hyperdial {args:?} ended with {:?}: {stderr}",
            out.status
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "hyperdial {args:?}: {stderr}"
        );
    }
}
