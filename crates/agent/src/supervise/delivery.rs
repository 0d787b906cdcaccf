//! After the process has ended: the run's spill files uploaded when the server answers
//! again, the points still missing reported in the run's delivery record, and a kept end
//! delivered when the server comes back within the wait.

use super::*;

/// After the process ended and every batch was tried: upload the run's spill files (the
/// agent's and its Python client's) when the server answers again, then count the points that
/// still did not reach it (the files left, plus points dropped) and report them in the run's
/// delivery record, naming the files that `hyperdial sync` uploads. Returns the number of
/// points missing, and whether spill files with anything in them were left (the server was
/// still away): only then is another upload worth trying once the run's end gets through.
pub(super) async fn settle_delivery(
    client: &Client,
    run: &str,
    opts: &SuperviseOptions,
    sent: &SendReport,
    overflowed: u64,
    events: &mpsc::UnboundedSender<Event>,
) -> (u64, bool) {
    if sent.given_up {
        return (0, false);
    }
    let mut missing = sent.dropped + overflowed;
    let mut files = Vec::new();
    // Files of output or config alone, left because the server is still away: no points are
    // missing, but what they hold is not on the server either.
    let mut other = Vec::new();
    if let Some(dir) = &opts.spill_dir {
        for left in upload_spilled(client, run, dir, false, events).await.left {
            if left.points() > 0 {
                missing += left.points();
                files.push(spill::label(left.path()));
            } else if left.finish().is_none() && left.holds_anything() {
                other.push(spill::label(left.path()));
            }
        }
    }
    if !other.is_empty() {
        let _ = events.send(Event::Message(format!(
            "run {run}: output or config kept in {} did not reach the server; upload it with `{}`",
            other.join(", "),
            sync_command(opts.spill_dir.as_deref(), &opts.sync_options)
        )));
    }
    let files_left = !files.is_empty() || !other.is_empty();
    if missing == 0 {
        return (0, files_left);
    }
    let where_ = if files.is_empty() {
        String::new()
    } else {
        format!(
            " (kept in {}; upload them with `{}`)",
            files.join(", "),
            sync_command(opts.spill_dir.as_deref(), &opts.sync_options)
        )
    };
    let _ = events.send(Event::Message(format!(
        "run {run}: {missing} metric points did not reach the server{where_}"
    )));
    files.truncate(spill::MAX_REPORTED_FILES);
    if let Err(err) = client.post_delivery(run, missing, 0, &files).await {
        tracing::warn!("run {run}: could not report the missing points: {err}");
    }
    (missing, files_left)
}

/// Upload the spill files of `run` in `dir` whose points the server now takes (the outage
/// that filled them is over), each read once and marked synced once its points are stored;
/// a file that holds a `finish` record (the run's end, written while the server was away) is
/// uploaded only `with_end` (else left to `hyperdial sync` or [`deliver_kept_end`], which end
/// the run with it), and after the files without one. Says how many points arrived this way.
/// Returns the files left (the server still does not take them, or they hold the end), as
/// read, and how many points the server refused.
pub(super) async fn upload_spilled(
    client: &Client,
    run: &str,
    dir: &std::path::Path,
    with_end: bool,
    events: &mpsc::UnboundedSender<Event>,
) -> SpillUploads {
    let (mut uploaded, mut output, mut refused) = (0, 0, 0);
    let mut left = Vec::new();
    let mut files: Vec<spill::Spilled> = Vec::new();
    for path in spill::files_of_run(dir, run) {
        match spill::Spilled::read(&path) {
            Ok(file) => files.push(file),
            Err(err) => tracing::warn!("run {run}: {err}"),
        }
    }
    // The points first, the end last: the run's end is judged with all its points.
    files.sort_by_key(|f| f.finish().is_some());
    let mut away = false;
    for file in files {
        let ends_the_run = file.finish().is_some();
        // A file of output, config or summary alone is uploaded like one of points: only an
        // empty one (its `init` alone) is left.
        if away || (ends_the_run && !with_end) || !file.holds_anything() {
            left.push(file);
            continue;
        }
        match file.upload(client, false).await {
            Ok(done) => {
                uploaded += done.points;
                output += done.output;
                refused += done.refused;
                if let Some(why) = done.why_refused {
                    let _ = events.send(Event::Message(format!(
                        "run {run}: the server refuses what was kept of it while it was away \
                         ({why}); its {} metric points stay in {}",
                        done.refused,
                        spill::label(&done.synced)
                    )));
                }
            }
            Err(err) => {
                tracing::debug!("run {run}: spilled points not uploaded yet: {err}");
                // The server is still away: the other files would fail the same way.
                away = true;
                left.push(file);
            }
        }
    }
    if uploaded > 0 || output > 0 {
        let pieces = |o: u64| match o {
            1 => "1 piece of output".to_string(),
            o => format!("{o} pieces of output"),
        };
        let what = match (uploaded, output) {
            (p, 0) => format!("{p} metric points"),
            (0, o) => pieces(o),
            (p, o) => format!("{p} metric points and {}", pieces(o)),
        };
        let _ = events.send(Event::Message(format!(
            "run {run}: {what} kept on disk while the server was away were uploaded to it"
        )));
    }
    SpillUploads {
        left,
        uploaded,
        refused,
    }
}

/// What [`upload_spilled`] did.
pub(super) struct SpillUploads {
    /// The files left, as read.
    pub(super) left: Vec<spill::Spilled>,
    /// Metric points uploaded.
    pub(super) uploaded: u64,
    /// Metric points the server refused (their files are marked synced).
    pub(super) refused: u64,
}

/// The run's end could not be reported and is kept in its spill file in `dir`: wait up to
/// [`SuperviseOptions::end_wait`] for the server, retrying the upload of the run's spill
/// files (points first, the end last) with backoff, saying so. Any shutdown signal ends the
/// wait at once (the files stay). When the wait ends without the server, says which command
/// uploads the files later. Returns the run as the server has it once its end was delivered.
pub(super) async fn deliver_kept_end(
    client: &Client,
    run: &str,
    dir: &std::path::Path,
    opts: &SuperviseOptions,
    events: &mpsc::UnboundedSender<Event>,
    shutdown: &watch::Receiver<u8>,
) -> Option<Value> {
    let mut shutdown = shutdown.clone();
    let stopping = *shutdown.borrow_and_update() >= 2;
    let sync = sync_command(Some(dir), &opts.sync_options);
    let kept = || {
        spill::files_of_run(dir, run)
            .iter()
            .map(|p| spill::label(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if opts.end_wait.is_zero() || stopping {
        let _ = events.send(Event::Message(format!(
            "run {run}: its end is kept in {}; upload it with `{sync}`",
            kept()
        )));
        return None;
    }
    let _ = events.send(Event::Message(format!(
        "run {run}: the server does not answer; its end is kept in {}; waiting up to {} s for \
         the server to upload it (HYPERDIAL_END_WAIT; Ctrl-C stops waiting and keeps the file)",
        kept(),
        opts.end_wait.as_secs_f64()
    )));
    let quick = client.clone().with_retry_budget(END_WAIT_ATTEMPT);
    let deadline = tokio::time::Instant::now() + opts.end_wait;
    let mut pause = END_WAIT_FIRST_PAUSE;
    let mut open = true;
    loop {
        let done = upload_spilled(&quick, run, dir, true, events).await;
        if done.left.iter().all(|f| f.finish().is_none()) {
            if done.refused == 0 {
                let _ = events.send(Event::Message(format!(
                    "run {run}: the server answers again; its end was uploaded"
                )));
            }
            return quick.get_run(run).await.ok();
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        let nap = pause.min(deadline - now);
        pause = (pause * 2).min(END_WAIT_MAX_PAUSE);
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            changed = shutdown.changed(), if open => {
                open = changed.is_ok();
                if open && *shutdown.borrow_and_update() >= 2 {
                    let _ = events.send(Event::Message(format!(
                        "run {run}: stopped waiting for the server; its end stays in {}: upload \
                         it with `{sync}`",
                        kept()
                    )));
                    return None;
                }
            }
        }
    }
    let _ = events.send(Event::Message(format!(
        "run {run}: the server did not answer within {} s; its end stays in {}: upload it with \
         `{sync}` once the server is back",
        opts.end_wait.as_secs_f64(),
        kept()
    )));
    None
}
