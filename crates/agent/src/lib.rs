//! # hyperdial-agent
//!
//! The part of hyperdial that runs training code. A server decides *which* configuration runs
//! next; an agent asks for it, starts the training command, watches it, relays what it prints,
//! and tells the server how it ended. The `hyperdial` binary uses this crate for
//! `hyperdial agent SWEEP` ([`run_agent`]), `hyperdial tune` (several [`run_agent`] loops in one
//! process) and `hyperdial run -- CMD` ([`Client::create_run`] followed by [`supervise()`]).
//!
//! The crate is split by responsibility:
//!
//! - [`client`]: the HTTP API of `docs/api.md`, with retries. Every other part talks to the
//!   server only through [`Client`].
//! - [`lines`]: the one-line metric format a script prints on standard output
//!   (`hyperdial: loss=0.4`), so that a script in any language can report metrics without a
//!   client library.
//! - [`supervise`](mod@supervise): starts one process (never through a shell) in its own
//!   process group, forwards its output and metrics, heartbeats, obeys stop requests and
//!   shutdown levels, kills what is left of the process group, and finishes the run.
//! - [`spill`]: metric points the server did not take within the retry window, kept on disk
//!   in the offline-file format until they are uploaded.
//! - [`agent`]: the claim → build argv → supervise loop, with the crash-loop guard.
//! - [`reaper`]: the tiny process a run can be started under (Linux), so that everything the
//!   training command starts dies with the agent, even when the agent is SIGKILLed.
//!
//! Why this shape: the supervisor is the piece with the hard guarantees (no shell, no stray
//! processes, no lost exit status, no unbounded memory, no panic on a bad server answer), and
//! `hyperdial run` needs exactly those guarantees without a sweep, so it is a function of its
//! own rather than a step hidden inside the agent loop.
//!
//! The crate is Unix-only: it relies on process groups and signals.

pub mod agent;
pub mod client;
pub mod lines;
pub mod reaper;
pub mod spill;
pub mod supervise;

use std::io;
use std::path::{Path, PathBuf};

pub use agent::{
    run_agent, AgentError, AgentOptions, AgentReport, CrashGuard, Event, Hints, MAX_FAILURES_ENV,
    PROJECT_ENV,
};
pub use client::{
    Claim, Client, ClientError, Finish, Heartbeat, MetricPoint, NewRun, Stream,
    DEFAULT_RETRY_BUDGET, MAX_REQUEST_BYTES,
};
pub use hyperdial_wire::{RunState, SweepState};
pub use supervise::{supervise, EndReport, Outcome, SuperviseOptions};

/// The Python client package (`python/hyperdial/`), embedded so that an agent can put
/// `import hyperdial` within reach of every training script without a `pip install`: each
/// module's file name and content. `_states.py` holds the run and sweep state words generated
/// from `hyperdial_wire`; `__init__.py`, which imports the others, comes last, so it is
/// written after them.
pub const PYTHON_CLIENT: &[(&str, &str)] = &[
    (
        "_states.py",
        include_str!("../../../python/hyperdial/_states.py"),
    ),
    (
        "_settings.py",
        include_str!("../../../python/hyperdial/_settings.py"),
    ),
    (
        "_errors.py",
        include_str!("../../../python/hyperdial/_errors.py"),
    ),
    (
        "_values.py",
        include_str!("../../../python/hyperdial/_values.py"),
    ),
    (
        "_transport.py",
        include_str!("../../../python/hyperdial/_transport.py"),
    ),
    (
        "_sinks.py",
        include_str!("../../../python/hyperdial/_sinks.py"),
    ),
    (
        "_history.py",
        include_str!("../../../python/hyperdial/_history.py"),
    ),
    (
        "_local_server.py",
        include_str!("../../../python/hyperdial/_local_server.py"),
    ),
    (
        "_query.py",
        include_str!("../../../python/hyperdial/_query.py"),
    ),
    (
        "_sweep.py",
        include_str!("../../../python/hyperdial/_sweep.py"),
    ),
    ("_api.py", include_str!("../../../python/hyperdial/_api.py")),
    (
        "_lr_range.py",
        include_str!("../../../python/hyperdial/_lr_range.py"),
    ),
    ("_run.py", include_str!("../../../python/hyperdial/_run.py")),
    (
        "__init__.py",
        include_str!("../../../python/hyperdial/__init__.py"),
    ),
];

/// The `wandb`-compatible module (`python/hyperdial_wandb/wandb/__init__.py`), embedded so
/// that a script written for W&B runs unchanged when the user asks for it (`--wandb`, or
/// `wandb: true` in the sweep file). It imports the package of [`PYTHON_CLIENT`].
pub const WANDB_MODULE: &str = include_str!("../../../python/hyperdial_wandb/wandb/__init__.py");

/// Write the files of [`PYTHON_CLIENT`] to `<state_dir>/python/hyperdial/` and return
/// `<state_dir>/python`, the directory to put in front of `PYTHONPATH`.
///
/// A file is rewritten only when its content differs, and then through a temporary file and
/// a rename, so several agents of one `hyperdial tune` sharing a state directory never see a
/// half-written module.
pub fn install_python_client(state_dir: &Path) -> io::Result<PathBuf> {
    install_package(&state_dir.join("python"), "hyperdial", PYTHON_CLIENT)
}

/// The W&B client API level [`WANDB_MODULE`] follows: its `__version__`, and the version its
/// distribution metadata ([`WANDB_METADATA`]) declares.
pub const WANDB_VERSION: &str = "0.19.0";

/// The distribution metadata installed beside [`WANDB_MODULE`]
/// (`python/hyperdial_wandb/wandb-<version>.dist-info/METADATA`): libraries that check for an
/// installed `wandb` distribution before using it (PyTorch Lightning's `WandbLogger` asks for
/// `wandb>=0.12.10` through `importlib.metadata`) find this one, of [`WANDB_VERSION`].
pub const WANDB_METADATA: &str =
    include_str!("../../../python/hyperdial_wandb/wandb-0.19.0.dist-info/METADATA");

/// Write [`WANDB_MODULE`] to `<state_dir>/python-wandb/wandb/__init__.py`, and
/// [`WANDB_METADATA`] to `<state_dir>/python-wandb/wandb-<version>.dist-info/METADATA`, and
/// return `<state_dir>/python-wandb`, the directory to put first on `PYTHONPATH` (before the
/// one of [`install_python_client`], which the module imports). It is a directory of its own
/// so that runs that did not ask for it still import the real `wandb` package. Written as
/// [`install_python_client`] writes its file.
pub fn install_wandb_module(state_dir: &Path) -> io::Result<PathBuf> {
    let root = state_dir.join("python-wandb");
    install_package(
        &root,
        &format!("wandb-{WANDB_VERSION}.dist-info"),
        &[("METADATA", WANDB_METADATA)],
    )?;
    install_package(&root, "wandb", &[("__init__.py", WANDB_MODULE)])
}

/// Write each `(file name, content)` of `files` to `<root>/<package>/` unless it is there
/// already (atomically: a temporary file, then a rename), in order; return `root`.
fn install_package(root: &Path, package: &str, files: &[(&str, &str)]) -> io::Result<PathBuf> {
    let package = root.join(package);
    for (name, content) in files {
        let target = package.join(name);
        if let Ok(existing) = std::fs::read(&target) {
            if existing == content.as_bytes() {
                continue;
            }
        }
        std::fs::create_dir_all(&package)?;
        let tmp = package.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            unique_suffix()
        ));
        std::fs::write(&tmp, content)?;
        if let Err(err) = std::fs::rename(&tmp, &target) {
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
    }
    Ok(root.to_path_buf())
}

/// The git state of the directory a run starts in, recorded with the run as W&B records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// The commit checked out (`git rev-parse HEAD`): 40 hex digits.
    pub commit: String,
    /// Whether tracked files have uncommitted changes (`git status --porcelain
    /// --untracked-files=no` prints anything); `None` when that could not be told.
    pub dirty: Option<bool>,
}

/// Longest time one git command may take before [`git_state`] gives up.
const GIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The [`GitState`] of the work tree holding `dir`; `None` when `dir` is in no git work tree
/// (or has no commit yet), git is not installed, or git takes longer than 2 s. git runs with an
/// argument list, never through a shell, with standard input from `/dev/null`.
pub async fn git_state(dir: &Path) -> Option<GitState> {
    let commit = git_output(dir, &["rev-parse", "--verify", "HEAD"]).await?;
    let dirty = git_output(dir, &["status", "--porcelain", "--untracked-files=no"])
        .await
        .map(|out| !out.is_empty());
    Some(GitState { commit, dirty })
}

/// The trimmed standard output of a successful `git ARGS` in `dir`.
async fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .ok()?
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A number that differs between calls in one process, for temporary file names.
fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// This machine's host name, as reported to the server (`"unknown"` if it cannot be read).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "unknown".to_string()
    } else {
        name
    }
}

/// Milliseconds since the Unix epoch, the time unit of the API.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content of the embedded file `name` of the Python client.
    fn embedded(name: &str) -> &'static str {
        PYTHON_CLIENT.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn python_client_embeds_every_module_of_the_package() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/hyperdial");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".py"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = PYTHON_CLIENT.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "a module of python/hyperdial is not embedded"
        );
        assert_eq!(PYTHON_CLIENT.last().unwrap().0, "__init__.py");
    }

    #[test]
    fn python_client_is_installed_once_and_repaired() {
        let dir = std::env::temp_dir().join(format!("hyperdial-agent-py-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = install_python_client(&dir).unwrap();
        assert_eq!(root, dir.join("python"));
        for (name, content) in PYTHON_CLIENT {
            let file = root.join("hyperdial").join(name);
            assert_eq!(std::fs::read_to_string(&file).unwrap(), *content, "{name}");
        }
        let file = root.join("hyperdial").join("__init__.py");
        let states = root.join("hyperdial").join("_states.py");
        assert!(embedded("__init__.py").contains("from ._states import"));
        // Unchanged content: not rewritten.
        let before = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        install_python_client(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            before
        );
        // A modified copy is replaced, a missing one written again.
        std::fs::write(&file, "stale").unwrap();
        std::fs::remove_file(&states).unwrap();
        install_python_client(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            embedded("__init__.py")
        );
        assert_eq!(
            std::fs::read_to_string(&states).unwrap(),
            embedded("_states.py")
        );
        let leftovers: Vec<_> = std::fs::read_dir(root.join("hyperdial"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wandb_module_has_a_directory_of_its_own() {
        let dir = std::env::temp_dir().join(format!("hyperdial-agent-wb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = install_wandb_module(&dir).unwrap();
        assert_eq!(root, dir.join("python-wandb"));
        let file = root.join("wandb").join("__init__.py");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), WANDB_MODULE);
        assert!(WANDB_MODULE.contains("import hyperdial as _hd"));
        let metadata = root
            .join(format!("wandb-{WANDB_VERSION}.dist-info"))
            .join("METADATA");
        assert_eq!(std::fs::read_to_string(&metadata).unwrap(), WANDB_METADATA);
        // The client's directory holds no `wandb`: runs that did not ask keep the real one.
        let client = install_python_client(&dir).unwrap();
        assert!(!client.join("wandb").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The module's `__version__`, its metadata's `Version` and [`WANDB_VERSION`] (which names
    /// the metadata's directory) are one version.
    #[test]
    fn wandb_module_version_is_its_metadata_version() {
        assert!(
            WANDB_MODULE.contains(&format!("\n__version__ = \"{WANDB_VERSION}\"\n")),
            "the module's __version__ is not {WANDB_VERSION}"
        );
        assert!(WANDB_METADATA.lines().any(|l| l == "Name: wandb"));
        assert!(WANDB_METADATA
            .lines()
            .any(|l| l == format!("Version: {WANDB_VERSION}")));
    }

    #[tokio::test]
    async fn git_state_of_a_work_tree() {
        let dir = std::env::temp_dir().join(format!("hyperdial-agent-git-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(&dir)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !git(&["init", "-q"]) {
            eprintln!("git is not installed; skipping");
            return;
        }
        // No commit yet: nothing to record.
        assert_eq!(git_state(&dir).await, None);
        std::fs::write(dir.join("train.py"), "print(1)\n").unwrap();
        assert!(git(&["add", "train.py"]));
        assert!(git(&["commit", "-qm", "first"]));
        let clean = git_state(&dir.join("sub")).await.unwrap();
        assert_eq!(clean.commit.len(), 40, "{clean:?}");
        assert_eq!(clean.dirty, Some(false));
        // Untracked files do not make it dirty; a changed tracked file does.
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        assert_eq!(git_state(&dir).await.unwrap().dirty, Some(false));
        std::fs::write(dir.join("train.py"), "print(2)\n").unwrap();
        let dirty = git_state(&dir).await.unwrap();
        assert_eq!((dirty.commit, dirty.dirty), (clean.commit, Some(true)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The CLI spawns agents and supervisors as tasks: their futures must be `Send`.
    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
        let (_tx, shutdown) = tokio::sync::watch::channel(0u8);
        let agent = run_agent(
            AgentOptions::new("http://127.0.0.1:1", "s"),
            events.clone(),
            shutdown.clone(),
        );
        assert_send(&agent);
        let client = Client::new("http://127.0.0.1:1", None);
        let options = SuperviseOptions::default();
        let cwd = std::env::temp_dir();
        let sup = supervise(&client, "r", &[], &[], &cwd, &options, &events, shutdown);
        assert_send(&sup);
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
