//! Spill files: metric points that could not be delivered within the retry window, kept on
//! disk until they are uploaded. The agent says where they are when it starts spilling; when
//! the run's process has ended it uploads the run's files itself if the server answers again
//! by then (all but a file holding the run's end, a `finish` record); what is left it reports
//! missing in the run's delivery record, naming the files, and `hyperdial sync` uploads them
//! later and reports them recovered.
//!
//! A spill file uses the format of the Python client's offline files (`docs/python.md`), so
//! one `hyperdial sync` handles both: JSON lines, an `init` record first, then `log` records
//! (`{"type": "log", "step": S, "time_ms": T, "values": {...}}`), optionally a `finish`
//! record. What makes it a spill file is the `run` field of its `init` record: the points
//! belong to that existing run on the server (`server` says which one it was) instead of a
//! new run. Every `log` record carries an explicit step, so uploading a file twice, or a file
//! whose points partly arrived before, stores each point once (the server keeps one value per
//! run, metric and step).
//!
//! Files are named `<run id>.<writer>.jsonl` in the spill directory (`.hyperdial/offline`
//! under the agent's state directory, the default of `hyperdial sync`): the agent writes
//! `<run>.agent.jsonl`, the Python client of a run started by an agent
//! `<run>.py<pid>.jsonl` (it learns the directory from `HYPERDIAL_SPILL_DIR`). Each append
//! opens, writes whole lines and closes the file, so an upload that renames it (to
//! `*.jsonl.synced`) never loses a later append: the next one starts a new file.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::client::{Client, ClientError, MetricPoint};

/// The environment variable that tells a run's Python client where to spill.
pub const SPILL_DIR_ENV: &str = "HYPERDIAL_SPILL_DIR";

/// Most spill files named in one delivery report (the server keeps at most 16 per run).
pub const MAX_REPORTED_FILES: usize = 16;

/// Points per upload request at most (each request is also kept below the size limit).
const UPLOAD_BATCH: usize = 1000;

/// Why a spill file could not be written or uploaded.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a spill or offline file.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The server refused or could not be reached.
    #[error("{path}: {source}")]
    Server {
        /// The file.
        path: PathBuf,
        /// The request's error.
        source: ClientError,
    },
}

/// The spill file of one writer for one run.
#[derive(Debug, Clone)]
pub struct SpillFile {
    path: PathBuf,
    run: String,
    server: String,
}

impl SpillFile {
    /// The file `<dir>/<run>.<writer>.jsonl` for points of `run` on `server`. Nothing is
    /// written before [`SpillFile::append`].
    pub fn new(dir: &Path, run: &str, writer: &str, server: &str) -> SpillFile {
        SpillFile {
            path: dir.join(format!("{run}.{writer}.jsonl")),
            run: run.to_string(),
            server: server.to_string(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `points` as `log` records (after an `init` record when the file is new).
    /// Points without a step cannot be uploaded idempotently and must be given one first.
    pub fn append(&self, points: &[MetricPoint]) -> Result<(), SpillError> {
        let records: Vec<Value> = points
            .iter()
            .map(|p| {
                json!({
                    "type": "log",
                    "step": p.step,
                    "time_ms": p.time_ms,
                    "values": p.values,
                })
            })
            .collect();
        self.append_records(&records)
    }

    fn append_records(&self, records: &[Value]) -> Result<(), SpillError> {
        let io = |source| SpillError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let mut text = String::new();
        if file.metadata().map_err(io)?.len() == 0 {
            let init = json!({
                "type": "init",
                "run": self.run,
                "server": self.server,
                "host": crate::hostname(),
                "time_ms": crate::now_ms(),
            });
            text.push_str(&init.to_string());
            text.push('\n');
        }
        for record in records {
            text.push_str(&record.to_string());
            text.push('\n');
        }
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
    }

    /// Append output of the run that the server did not take (`stream`, `text` as the
    /// process wrote it, with any note of lines lost): an `output` record, posted to the run
    /// ahead of its end when the file is uploaded ([`Spilled::upload`]).
    pub fn append_output(
        &self,
        stream: crate::client::Stream,
        text: &str,
    ) -> Result<(), SpillError> {
        let record = json!({
            "type": "output",
            "stream": stream,
            "text": text,
            "time_ms": crate::now_ms(),
        });
        self.append_records(&[record])
    }

    /// Append a `finish` record: the end of the run, for `hyperdial sync` to report. Its
    /// `time_ms` is the finish's `ended_ms` (when the process ended) when set, else now.
    pub fn append_finish(&self, finish: &crate::client::Finish) -> Result<(), SpillError> {
        let mut record = serde_json::to_value(finish).unwrap_or_else(|_| json!({}));
        record["type"] = json!("finish");
        record["time_ms"] = json!(finish.ended_ms.unwrap_or_else(crate::now_ms));
        self.append_records(&[record])
    }

    /// `host:path`, as reported to the server.
    pub fn label(&self) -> String {
        label(&self.path)
    }
}

/// `host:path` of a local file, as named in a run's delivery record.
pub fn label(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{}:{}", crate::hostname(), absolute.display())
}

/// The records of an offline or spill file: JSON lines; a torn last line (the writer died
/// mid-write) is skipped.
pub fn read_records(path: &Path) -> Result<Vec<Value>, SpillError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpillError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => records.push(v),
            Err(_) if i + 1 == lines.len() => {
                tracing::warn!("{}: skipping a truncated last line", path.display())
            }
            Err(e) => {
                return Err(SpillError::Format {
                    path: path.to_path_buf(),
                    message: format!("line {}: not JSON: {e}", i + 1),
                })
            }
        }
    }
    Ok(records)
}

/// The metric points of the `log` records among `records`.
pub fn log_points(records: &[Value]) -> Vec<MetricPoint> {
    records
        .iter()
        .filter(|r| r["type"] == "log")
        .map(|r| MetricPoint {
            step: r["step"].as_i64(),
            time_ms: r["time_ms"].as_i64(),
            values: r["values"].as_object().cloned().unwrap_or_default(),
        })
        .collect()
}

/// The run a spill file belongs to (`run` of its `init` record); `None` for an offline file
/// of a run that is still to be created.
pub fn spill_run(records: &[Value]) -> Option<&str> {
    records
        .first()
        .filter(|r| r["type"] == "init")
        .and_then(|r| r["run"].as_str())
        .filter(|r| !r.is_empty())
}

/// Post `points` to `run`, in batches below the request-size limit.
pub async fn upload_points(
    client: &Client,
    run: &str,
    points: &[MetricPoint],
) -> Result<(), ClientError> {
    for chunk in points.chunks(UPLOAD_BATCH) {
        client.post_metrics(run, chunk).await?;
    }
    Ok(())
}

/// What uploading a spill file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The run the points went to.
    pub run: String,
    /// Metric points uploaded.
    pub points: u64,
    /// Output records (a stream's text held while the server was away) uploaded.
    pub output: u64,
    /// Metric points not uploaded because the server had marked the run `crashed` and does
    /// not take them (`409 run_crashed`: its retry is the attempt that counts). The file is
    /// marked synced all the same, its points kept in the renamed file.
    pub refused: u64,
    /// Why the server refused the file (its answer), when it did.
    pub why_refused: Option<String>,
    /// Whether the file held the run's end (a `finish` record), now delivered.
    pub ended: bool,
    /// Where the file is now (renamed to `*.jsonl.synced`).
    pub synced: PathBuf,
}

/// An offline or spill file, read once: what [`Spilled::upload`] uploads.
#[derive(Debug, Clone)]
pub struct Spilled {
    path: PathBuf,
    records: Vec<Value>,
    points: Vec<MetricPoint>,
}

impl Spilled {
    /// Read the file at `path` ([`read_records`]).
    pub fn read(path: &Path) -> Result<Spilled, SpillError> {
        let records = read_records(path)?;
        let points = log_points(&records);
        Ok(Spilled {
            path: path.to_path_buf(),
            records,
            points,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record of the file.
    pub fn records(&self) -> &[Value] {
        &self.records
    }

    /// The existing run the file belongs to ([`spill_run`]); `None` for an offline file of a
    /// run still to be created.
    pub fn run(&self) -> Option<&str> {
        spill_run(&self.records)
    }

    /// How many metric points (`log` records) it holds.
    pub fn points(&self) -> u64 {
        self.points.len() as u64
    }

    /// How many `output` records (a stream's text the server did not take) it holds.
    pub fn output(&self) -> u64 {
        self.records
            .iter()
            .filter(|r| r["type"] == "output")
            .count() as u64
    }

    /// Whether it holds anything to upload: any record but its `init` (points, output,
    /// config, a name, summary values, the run's end).
    pub fn holds_anything(&self) -> bool {
        self.records.iter().any(|r| r["type"] != "init")
    }

    /// The run's end (its last `finish` record), if the file holds one.
    pub fn finish(&self) -> Option<&Value> {
        self.records.iter().rev().find(|r| r["type"] == "finish")
    }

    /// Upload a spill file (one whose `init` record names a [`Spilled::run`]) to that run:
    /// its points, its `summary` values, `{"recovered": N}` to the run's delivery record
    /// (when `report_recovered`), and its `finish` record if it has one, with the time it was
    /// written as the run's end (a run already ended keeps its state). Then rename it to
    /// `*.jsonl.synced`.
    ///
    /// A file holding the run's end first asks the server to take the run back
    /// ([`Client::late_end`]): a run it marked `crashed` while its agent was away takes the
    /// end after all, and its retry gives way (withdrawn if queued, superseded if claimed).
    /// A run the server does not take back, or a file without an end for a crashed run, takes
    /// none of it: the file is marked synced and its points counted in
    /// [`Uploaded::refused`], with the server's reason.
    pub async fn upload(
        &self,
        client: &Client,
        report_recovered: bool,
    ) -> Result<Uploaded, SpillError> {
        let path = self.path.as_path();
        let Some(run) = self.run().map(str::to_string) else {
            return Err(SpillError::Format {
                path: path.to_path_buf(),
                message: "its `init` record names no run: an offline file, not a spill file".into(),
            });
        };
        let server = |source| SpillError::Server {
            path: path.to_path_buf(),
            source,
        };
        let points = &self.points;
        if let Some(i) = points.iter().position(|p| p.step.is_none()) {
            return Err(SpillError::Format {
                path: path.to_path_buf(),
                message: format!("log record {} has no step", i + 1),
            });
        }
        let refused = |err: ClientError| -> Result<Uploaded, SpillError> {
            let why = match &err {
                ClientError::Status { message, .. } => message.clone(),
                other => other.to_string(),
            };
            Ok(Uploaded {
                run: run.clone(),
                points: 0,
                output: 0,
                refused: points.len() as u64,
                why_refused: Some(why),
                ended: false,
                synced: mark_synced(path)?,
            })
        };
        let finish = self.finish();
        if finish.is_some() {
            match client.late_end(&run).await {
                Ok(_) => {}
                Err(e) if e.is_run_crashed() => return refused(e),
                // A server older than late ends: the reports below are taken or refused as
                // they always were.
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(server(e)),
            }
        }
        match upload_points(client, &run, points).await {
            Ok(()) => {}
            Err(e) if e.is_run_crashed() => return refused(e),
            Err(e) => return Err(server(e)),
        }
        // Output held while the server was away, in the order it was written (each record
        // is below the request limit: the agent holds at most 1 MiB a stream).
        for r in self.records.iter().filter(|r| r["type"] == "output") {
            let (Some(text), Ok(stream)) = (
                r["text"].as_str(),
                serde_json::from_value::<crate::client::Stream>(r["stream"].clone()),
            ) else {
                continue;
            };
            match client.post_output(&run, stream, text).await {
                Ok(()) => {}
                Err(e) if e.is_run_crashed() => return refused(e),
                Err(e) => return Err(server(e)),
            }
        }
        match put_config_and_name(client, &run, &self.records).await {
            Ok(()) => {}
            Err(e) if e.is_run_crashed() => return refused(e),
            Err(e) => return Err(server(e)),
        }
        let mut summary = Map::new();
        for r in self.records.iter().filter(|r| r["type"] == "summary") {
            if let Some(values) = r["values"].as_object() {
                summary.extend(values.clone());
            }
        }
        if !summary.is_empty() {
            client
                .put_summary(&run, Value::Object(summary))
                .await
                .map_err(server)?;
        }
        if report_recovered && !points.is_empty() {
            client
                .post_delivery(&run, 0, points.len() as u64, &[])
                .await
                .map_err(server)?;
        }
        if let Some(finish) = finish {
            let body = crate::client::Finish {
                exit_code: finish["exit_code"]
                    .as_i64()
                    .and_then(|c| i32::try_from(c).ok()),
                // A state word this build does not know is left to the server's rule (the
                // exit code decides), rather than failing the whole upload.
                state: finish["state"]
                    .as_str()
                    .and_then(|word| word.parse::<hyperdial_wire::RunState>().ok()),
                error: finish["error"].as_str().map(str::to_string),
                ended_ms: finish["ended_ms"]
                    .as_i64()
                    .or_else(|| finish["time_ms"].as_i64()),
                ..crate::client::Finish::default()
            };
            client.finish(&run, &body).await.map_err(server)?;
        }
        Ok(Uploaded {
            run,
            points: points.len() as u64,
            output: self.output(),
            refused: 0,
            why_refused: None,
            ended: finish.is_some(),
            synced: mark_synced(path)?,
        })
    }
}

/// Send run `run` the `config` records of `records` in order (each merged into its config by
/// the server) and the last of its `name` records: what a Python client could not store on the
/// server while it was away or refused the token, or recorded offline.
pub async fn put_config_and_name(
    client: &Client,
    run: &str,
    records: &[Value],
) -> Result<(), ClientError> {
    for r in records.iter().filter(|r| r["type"] == "config") {
        if r["values"].is_object() {
            client.put_config(run, &r["values"]).await?;
        }
    }
    let name = records
        .iter()
        .rev()
        .find(|r| r["type"] == "name")
        .and_then(|r| r["name"].as_str());
    if let Some(name) = name {
        client.put_name(run, name).await?;
    }
    Ok(())
}

/// Read a spill file and upload it ([`Spilled::upload`]). Returns `Ok(None)` for an offline
/// file of a run still to be created, which the caller handles.
pub async fn upload_spill_file(
    client: &Client,
    path: &Path,
    report_recovered: bool,
) -> Result<Option<Uploaded>, SpillError> {
    let file = Spilled::read(path)?;
    if file.run().is_none() {
        return Ok(None);
    }
    file.upload(client, report_recovered).await.map(Some)
}

/// Rename an uploaded file to `*.jsonl.synced`, so it is never uploaded twice; returns the
/// new path.
pub fn mark_synced(path: &Path) -> Result<PathBuf, SpillError> {
    let done = path.with_extension("jsonl.synced");
    std::fs::rename(path, &done).map_err(|source| SpillError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(done)
}

/// The spill files of `run` in `dir` (`<run>.*.jsonl`), sorted.
pub fn files_of_run(dir: &Path, run: &str) -> Vec<PathBuf> {
    let prefix = format!("{run}.");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: i64) -> MetricPoint {
        let mut values = Map::new();
        values.insert("loss".into(), json!(step as f64 / 10.0));
        values.insert("bad".into(), Value::Null);
        MetricPoint {
            step: Some(step),
            time_ms: Some(1000 + step),
            values,
        }
    }

    #[test]
    fn appends_are_readable_and_survive_a_rename() {
        let dir = std::env::temp_dir().join(format!("hyperdial-spill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = SpillFile::new(&dir, "r1", "agent", "http://127.0.0.1:1");
        file.append(&[point(0), point(1)]).unwrap();
        file.append(&[point(2)]).unwrap();
        let records = read_records(file.path()).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(spill_run(&records), Some("r1"));
        assert_eq!(records[0]["server"], "http://127.0.0.1:1");
        assert_eq!(log_points(&records), vec![point(0), point(1), point(2)]);
        assert_eq!(files_of_run(&dir, "r1"), vec![file.path().to_path_buf()]);
        assert!(files_of_run(&dir, "r").is_empty());
        assert_eq!(Spilled::read(file.path()).unwrap().points(), 3);
        // After an upload renamed it, the next append starts a new file with its own init.
        mark_synced(file.path()).unwrap();
        assert!(files_of_run(&dir, "r1").is_empty());
        file.append(&[point(3)]).unwrap();
        let records = read_records(file.path()).unwrap();
        assert_eq!(spill_run(&records), Some("r1"));
        assert_eq!(log_points(&records), vec![point(3)]);
        // A torn last line is skipped; a broken line before it is an error.
        let mut text = std::fs::read_to_string(file.path()).unwrap();
        text.push_str("{\"type\":\"log\",\"st");
        std::fs::write(file.path(), &text).unwrap();
        assert_eq!(read_records(file.path()).unwrap().len(), 2);
        text.push_str("\n{}\n");
        std::fs::write(file.path(), &text).unwrap();
        assert!(read_records(file.path()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn offline_files_are_not_spill_files() {
        let records = vec![json!({"type": "init", "project": "p"})];
        assert_eq!(spill_run(&records), None);
        assert_eq!(spill_run(&[]), None);
    }
}
